import { KvError } from '../errors.js';

/** A component the kernel builds: a plugin, a core service or a host service. */
export interface ComponentDefinition<T = unknown> {
  /** Name other components use in `needs` (`membership`, `rpc`, `kv`...). */
  readonly name: string;
  /** DI token it is registered under. */
  readonly token: symbol;
  /** Context for errors and logs: `membership '<name>'`. */
  readonly label: string;
  readonly needs: readonly string[];
  /** Components used when the node has them (e.g. membership), built first then; absent ones are left out. */
  readonly optionalNeeds?: readonly string[];
  readonly build: (components: Readonly<Record<string, unknown>>) => T | Promise<T>;
}

/**
 * Orders definitions so that every component comes after what it needs.
 * Ties keep the given order, so the result is deterministic.
 * @throws KvError KVMESH_ERR_KERNEL_DEPENDENCY for a missing need or a cycle, naming the chain.
 */
export function dependencyOrder(definitions: readonly ComponentDefinition[]): ComponentDefinition[] {
  const byName = new Map(definitions.map((d) => [d.name, d]));
  const done = new Set<string>();
  const order: ComponentDefinition[] = [];
  const visit = (def: ComponentDefinition, chain: string[]): void => {
    if (done.has(def.name)) return;
    if (chain.includes(def.name)) {
      throw new KvError('KVMESH_ERR_KERNEL_DEPENDENCY', `dependency cycle: ${[...chain, def.name].join(' -> ')}`);
    }
    for (const need of def.needs) {
      const dep = byName.get(need);
      if (!dep) {
        throw new KvError(
          'KVMESH_ERR_KERNEL_DEPENDENCY',
          `${def.label} needs '${need}', which nothing provides (add a "${need}" section to the config?)`,
        );
      }
      visit(dep, [...chain, def.name]);
    }
    for (const need of def.optionalNeeds ?? []) {
      const dep = byName.get(need);
      if (dep) visit(dep, [...chain, def.name]);
    }
    done.add(def.name);
    order.push(def);
  };
  for (const def of definitions) visit(def, []);
  return order;
}
