import { readFileSync } from 'node:fs';
import test from 'ava';
import { ERROR_CODES, KvError, isKvError, wrapError } from '../src/index.js';

const docs = readFileSync(new URL('../../../../docs/errors.md', import.meta.url), 'utf8');
const documented = [...docs.matchAll(/^\| `(KVMESH_ERR_[A-Z_]+)` \|/gm)].map((m) => m[1]);

test('every error code is documented in docs/errors.md, and only those', (t) => {
  t.deepEqual([...documented].sort(), Object.keys(ERROR_CODES).sort());
});

test('codes follow KVMESH_ERR_<AREA>_<WHAT>', (t) => {
  for (const code of Object.keys(ERROR_CODES)) t.regex(code, /^KVMESH_ERR_[A-Z]+_[A-Z_]+$/);
});

test('isKvError compares by code, so a copy from another core still matches', (t) => {
  const foreign = Object.assign(new Error('x'), { code: 'KVMESH_ERR_RPC_TIMEOUT' });
  t.true(isKvError(foreign));
  t.true(isKvError(foreign, 'KVMESH_ERR_RPC_TIMEOUT'));
  t.false(isKvError(foreign, 'KVMESH_ERR_RPC_ABORTED'));
  t.false(isKvError(Object.assign(new Error('x'), { code: 'ENOENT' })));
  t.false(isKvError(null));
});

test('wrapError keeps the code and prefixes the context', (t) => {
  const inner = new KvError('KVMESH_ERR_RPC_TIMEOUT', 'no answer');
  const wrapped = wrapError("membership 'swim'", inner);
  t.is(wrapped.code, 'KVMESH_ERR_RPC_TIMEOUT');
  t.is(wrapped.message, "membership 'swim': no answer");
  t.is(wrapped.cause, inner);
  t.is(wrapError('x', new Error('boom')).code, 'KVMESH_ERR_PLUGIN_FAILED');
});
