import { STRATEGY_FAMILIES } from '../plugin.js';
import type { PluginCatalog } from './catalog.js';
import { FACADES_SECTION } from './schema.js';
import type { ConfigProblem } from './problems.js';

const HOST_PORT = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$/;
const MAX_PORT = 65_535;

/**
 * What a config that passed every schema must still satisfy, each problem
 * with its JSON path: ports in range (the schema allows five digits), then
 * every chosen plugin's own checks of the sections it depends on
 * (`PluginManifest.checkConfig`, in family order, then the facades).
 * `config` is defaulted and complete.
 */
export function crossCheckProblems(config: Readonly<Record<string, any>>, registry: PluginCatalog): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const node = config['node'] as { address?: unknown } | undefined;
  problems.push(...portProblem(node?.address, '/node/address'));
  const join = config['join'];
  if (Array.isArray(join)) join.forEach((seed, i) => problems.push(...portProblem(seed, `/join/${i}`)));
  const chosen: { family: string; name: string; options: unknown; path: string }[] = [];
  for (const family of STRATEGY_FAMILIES) {
    const section = config[family] as { name?: unknown; options?: unknown } | undefined;
    if (typeof section?.name === 'string') {
      chosen.push({ family, name: section.name, options: section.options ?? {}, path: `/${family}` });
    }
  }
  const facades = config[FACADES_SECTION];
  if (Array.isArray(facades)) {
    facades.forEach((entry: { name?: unknown; options?: unknown }, i) => {
      if (typeof entry?.name === 'string') {
        chosen.push({
          family: 'facade',
          name: entry.name,
          options: entry.options ?? {},
          path: `/${FACADES_SECTION}/${i}`,
        });
      }
    });
  }
  for (const { family, name, options, path } of chosen) {
    if (!registry.has(family as never, name)) continue;
    const check = registry.get(family as never, name).checkConfig;
    if (check === undefined) continue;
    try {
      for (const problem of check(options, config)) problems.push({ path: problem.path, message: problem.message });
    } catch (err) {
      problems.push({
        path,
        message: `${family} '${name}' failed to check the config: ${err instanceof Error ? err.message : String(err)}`,
      });
    }
  }
  return problems;
}

function portProblem(value: unknown, path: string): ConfigProblem[] {
  if (typeof value !== 'string') return [];
  const match = HOST_PORT.exec(value);
  if (match === null) return [];
  const port = Number(match[2]);
  return port > MAX_PORT
    ? [{ path, message: `port ${port} is out of range; a port is 0 to ${MAX_PORT} (found "${value}")` }]
    : [];
}
