import { definePlugin } from '@kvmesh/core';
import { ChordPlacement } from './chord-placement.js';
import { CHORD_OPTIONS_SCHEMA, type ChordOptions } from './options.js';

export { ChordPlacement, CHORD_EPOCH, type ChordComponents } from './chord-placement.js';
export { CHORD_DEFAULTS, CHORD_OPTIONS_SCHEMA, type ChordOptions } from './options.js';
export { CHORD_MESSAGES, CHORD_PROTO } from './messages.js';
export { METRIC_NAMES, metricNamed, type Metric, type MetricName } from './metric.js';
export { RoutingTable } from './routing-table.js';
export { RingWindow } from './window.js';
export { inHalfOpen, inOpen, fingerStart, type Ident } from './ring.js';

/** Chord (dyschord): a ring with finger tables, successor lists and successor backups, routed lookups. */
export const chordPlacement = definePlugin({
  family: 'placement',
  name: 'chord',
  description:
    'Chord (Stoica et al., SIGCOMM 2001; dyschord): keys live at their successor on an identifier circle and are backed up on the next nodes; lookups route through finger tables in O(log N) hops.',
  version: '0.1.0',
  optionsSchema: CHORD_OPTIONS_SCHEMA,
  needs: ['node', 'clock', 'random', 'logger', 'messages', 'rpc', 'config'],
  create: (options: ChordOptions) => (components) => new ChordPlacement(components, options),
  simulation: {
    // Each node joins through a node already in the ring, as an operator would point it at one.
    options: (_member, _members, options, contact) => ({ ...options, seeds: contact ? [contact.address] : [] }),
    periodMs: (options) => options['heartbeatMs'] as number,
  },
});
