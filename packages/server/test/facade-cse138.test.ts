import test from 'ava';
import { runFacadeConformance } from '@kvmesh/core';
import { cse138Conformance, cse138Facade } from '@kvmesh/plugins';
import { facadeConformanceHost } from '../src/facade-conformance-host.js';

// The facade conformance suite, beside the node's own API and on a port of its own.
runFacadeConformance(test, {
  title: 'cse138 on the node port',
  facade: cse138Facade,
  host: facadeConformanceHost,
  ...cse138Conformance,
});

runFacadeConformance(test, {
  title: 'cse138 on its own port',
  facade: cse138Facade,
  options: { port: 0 },
  host: facadeConformanceHost,
  ...cse138Conformance,
});
