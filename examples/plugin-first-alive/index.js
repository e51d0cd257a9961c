// A complete third-party placement plugin in plain JavaScript: every key lives
// on the alive member with the smallest id (optionally preferring a role).
// List its path in a config's "plugins" array and select it by name.
import { KvError, definePlugin, viewEpoch } from '@kvmesh/core';

export const plugin = definePlugin({
  family: 'placement',
  name: 'first-alive',
  description: 'Every key on the alive member with the smallest id: a minimal example of a placement plugin.',
  version: '1.0.0',
  optionsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      preferRole: {
        type: 'string',
        default: '',
        description: 'When set, members whose meta.role equals it come first. Empty: any member.',
      },
    },
  },
  needs: ['membership', 'node'],
  create:
    ({ preferRole }) =>
    ({ membership, node }) => {
      const owner = () => {
        const alive = membership.members().filter((m) => m.state === 'alive');
        const preferred = preferRole ? alive.filter((m) => m.meta.role === preferRole) : [];
        return (preferred.length > 0 ? preferred : alive)[0];
      };
      // The view is the owner alone: every node that sees the same owner has the same epoch.
      const epochOf = (first) => viewEpoch(first ? [first.id] : []);
      let epoch = epochOf(owner());
      membership.on(() => (epoch = epochOf(owner())));
      return {
        name: 'first-alive',
        get epoch() {
          return epoch;
        },
        async locate() {
          const first = owner();
          if (!first) throw new KvError('KVMESH_ERR_PLACEMENT_EMPTY', 'no alive member can hold the key');
          return {
            replicas: [first],
            fallbacks: [],
            writeQuorum: 1,
            conditionalWriteQuorum: 1,
            readQuorum: 1,
            epoch,
            hops: 0,
          };
        },
        admit() {
          const first = owner();
          return first?.id === node.id ? { kind: 'own' } : { kind: 'not-owner', epoch, owners: first ? [first] : [] };
        },
        plan(before, after) {
          const first = (list) => list.filter((m) => m.state === 'alive')[0]?.id;
          const [from, to] = [first(before), first(after)];
          if (from === to) return [];
          return [{ range: 'all keys', contains: () => true, from: from ? [from] : [], to: to ? [to] : [] }];
        },
        describe: () => ({ strategy: 'first-alive', preferRole, epoch }),
      };
    },
});
