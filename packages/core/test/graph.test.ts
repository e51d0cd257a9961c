import test from 'ava';
import { dependencyOrder } from '../src/index.js';
import type { ComponentDefinition } from '../src/index.js';

const def = (name: string, needs: string[] = [], optionalNeeds?: string[]): ComponentDefinition => ({
  name,
  token: Symbol(name),
  label: name,
  needs,
  ...(optionalNeeds ? { optionalNeeds } : {}),
  build: () => name,
});

test('an optional need that exists is ordered before the component that uses it', (t) => {
  const order = dependencyOrder([def('kv', ['storage'], ['membership']), def('storage'), def('membership')]);
  t.deepEqual(
    order.map((d) => d.name),
    ['storage', 'membership', 'kv'],
  );
});

test('an optional need that nothing provides is left out, where a required one fails', (t) => {
  t.deepEqual(
    dependencyOrder([def('kv', ['storage'], ['membership']), def('storage')]).map((d) => d.name),
    ['storage', 'kv'],
  );
  const err = t.throws(() => dependencyOrder([def('kv', ['membership'])]));
  t.regex(err.message, /needs 'membership', which nothing provides/);
});
