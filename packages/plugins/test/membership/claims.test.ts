import test from 'ava';
import { sameEndpoint } from '../../src/membership/support/addresses.js';
import { MAX_INCARNATION_LEAD_MS, incarnationRefusal } from '../../src/membership/support/claims.js';

test('an incarnation is refused when it is no safe integer or far ahead of the known one and of the clock', (t) => {
  const now = 1_700_000_000_000;
  t.is(incarnationRefusal(now, undefined, now), undefined);
  t.is(incarnationRefusal(now + MAX_INCARNATION_LEAD_MS, undefined, now), undefined, 'a clock ahead by the lead');
  t.is(incarnationRefusal(now + 2 * MAX_INCARNATION_LEAD_MS, now + MAX_INCARNATION_LEAD_MS, now), undefined);
  t.regex(incarnationRefusal(now + MAX_INCARNATION_LEAD_MS + 1, now - 5, now)!, /ahead/);
  t.regex(incarnationRefusal(Number.MAX_SAFE_INTEGER, now, now)!, /ahead/);
  t.regex(incarnationRefusal(2 ** 53, now, now)!, /safe integer/);
  t.regex(incarnationRefusal(-1, undefined, now)!, /safe integer/);
  t.regex(incarnationRefusal(1.5, undefined, now)!, /safe integer/);
  t.regex(incarnationRefusal('7', undefined, now)!, /safe integer/);
});

test('a sender matches the address it is known at: same port, same host unless one is a name and one an IP', (t) => {
  t.true(sameEndpoint('sim://n4:7946', 'n4:7946'));
  t.true(sameEndpoint('http://n4:7946', 'http://N4:7946'));
  t.false(sameEndpoint('sim://n1:7946', 'n4:7946'), 'another name');
  t.false(sameEndpoint('udp://10.0.0.1:7946', '10.0.0.2:7946'), 'another IP');
  t.false(sameEndpoint('udp://10.0.0.1:7947', '10.0.0.1:7946'), 'another port');
  t.true(sameEndpoint('udp://10.0.0.1:7946', 'node1:7946'), 'a datagram source IP against a configured name');
  t.true(sameEndpoint('udp://[::1]:7946', '[::1]:7946'));
  t.false(sameEndpoint('not an address', 'n4:7946'));
});
