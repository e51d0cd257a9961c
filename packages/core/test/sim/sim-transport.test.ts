import test from 'ava';
import { runTransportConformance } from '../../src/conformance/transport.js';
import { LINK_PROFILES } from '../../src/sim/link-profile.js';
import { SeededRandom } from '../../src/sim/seeded-random.js';
import { SimNetwork } from '../../src/sim/sim-network.js';
import { VirtualClock } from '../../src/sim/virtual-clock.js';

let seed = 1000;

runTransportConformance(test, {
  title: 'sim transport',
  duplicates: true,
  setup: () => {
    const clock = new VirtualClock();
    const network = new SimNetwork({ clock, random: new SeededRandom(seed++), defaults: LINK_PROFILES.lan });
    let next = 0;
    return {
      create: (address) => network.endpoint(address ?? `sim://n${++next}`, { maxFrameBytes: 1 << 20 }),
      unreachableAddress: 'sim://nobody',
      clock,
      duplicating: (target) => {
        network.setDefaults({ duplicate: 1 });
        return target.address;
      },
    };
  },
});
