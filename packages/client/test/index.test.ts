import test from 'ava';
import { CLIENT_VERSION } from '../src/index.js';

test('the package exports its version', (t) => {
  t.is(CLIENT_VERSION, '0.1.0');
});
