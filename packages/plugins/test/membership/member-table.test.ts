import test from 'ava';
import type { Logger, Member } from '@kvmesh/core';
import { MemberEvents } from '../../src/membership/support/member-events.js';
import { MemberTable } from '../../src/membership/support/member-table.js';

const silent: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => silent,
};

const member = (id: string, state: Member['state'] = 'alive'): Member => ({
  id,
  address: `sim://${id}`,
  state,
  incarnation: 1,
  meta: { role: 'storage' },
});

test('a batch emits its events after the whole change, so every listener sees the whole list', (t) => {
  const events = new MemberEvents(silent);
  const table = new MemberTable(events);
  table.set(member('self'));
  const seen: string[] = [];
  events.on(({ member: m, previous }) =>
    seen.push(
      `${m.id}:${previous ?? 'new'}->${m.state} sees ${table
        .sorted()
        .map((x) => x.id)
        .join(',')}`,
    ),
  );
  table.batch(() => {
    table.set(member('a'));
    table.set(member('b'));
    table.set(member('self'));
    table.remove('gone');
    t.deepEqual(seen, [], 'nothing is emitted while the batch runs');
  });
  t.deepEqual(seen, ['a:new->alive sees a,b,self', 'b:new->alive sees a,b,self']);
  seen.length = 0;
  table.batch(() => {
    table.remove('a');
    table.set(member('b', 'dead'));
  });
  t.deepEqual(seen, ['a:alive->left sees b,self', 'b:alive->dead sees b,self']);
  seen.length = 0;
  table.set(member('c'));
  t.deepEqual(seen, ['c:new->alive sees b,c,self'], 'outside a batch an event is emitted at once');
});
