// How a third-party facade proves itself: the suite every built-in facade runs,
// on a port of its own and beside the native API. Run with `npx ava` in this folder.
import test from 'ava';
import { runFacadeConformance } from '@kvmesh/core';
import { facadeConformanceHost } from '@kvmesh/server';
import { table } from '../conformance.js';
import { plugin } from '../index.js';

runFacadeConformance(test, {
  title: 'plaintext on its own port',
  facade: plugin,
  options: { port: 0 },
  host: facadeConformanceHost,
  ...table,
});

runFacadeConformance(test, {
  title: 'plaintext on the node port',
  facade: plugin,
  options: { port: null },
  host: facadeConformanceHost,
  ...table,
});
