import { createSocket } from 'node:dgram';
import type { Socket } from 'node:dgram';
import { isIPv4 } from 'node:net';
import { KvError } from '@kvmesh/core';
import type { Clock, Logger, MessageRegistry, Timer } from '@kvmesh/core';
import { fromWire, toWire } from './contact.js';
import type { Contact, WireContact } from './contact.js';
import { KADEMLIA_MESSAGES } from './messages.js';
import type { MulticastOptions } from './options.js';

/** First bytes of an announcement datagram: anything else on the group is ignored. */
const MAGIC = Buffer.from('kvmK', 'latin1');

export interface MulticastComponents {
  readonly self: Contact;
  readonly messages: MessageRegistry;
  readonly clock: Clock;
  readonly logger: Logger;
  /** This node's host (from node.address): the interface to use when the options name none. */
  readonly host: string;
  /** Whether announcing is still useful (fewer than k contacts known). */
  readonly wanted: () => boolean;
  /** Another node of the cluster announced itself. */
  readonly heard: (contact: Contact) => void;
}

/**
 * UDP multicast discovery on the local network, as Alethic.Kademlia offers
 * it (seed 000): a node announces itself (`Announce`: its contact and
 * cluster name, protobuf binary) on a multicast group every `intervalMs`
 * while it knows fewer than k nodes, and bootstraps through the nodes it
 * hears. A node that hears an announcement pings the announcer through the
 * configured transport, which is the answer the announcer bootstraps from.
 *
 * The group socket is the one socket the placement opens itself: no
 * transport contract carries multicast. It is opened in `start()` and
 * closed in `stop()`; the simulator never enables it.
 */
export class MulticastDiscovery {
  readonly #o: MulticastOptions;
  readonly #c: MulticastComponents;
  #socket: Socket | undefined;
  #timer: Timer | undefined;

  constructor(options: MulticastOptions, components: MulticastComponents) {
    this.#o = options;
    this.#c = components;
  }

  /**
   * Joins the group and announces once.
   * @throws KvError KVMESH_ERR_TRANSPORT_LISTEN when the group cannot be joined on the interface.
   */
  async start(): Promise<void> {
    const o = this.#o;
    const iface = o.interface !== '' ? o.interface : isIPv4(this.#c.host) ? this.#c.host : undefined;
    const socket = createSocket({ type: 'udp4', reuseAddr: true });
    socket.on('message', (datagram) => this.#onDatagram(datagram));
    socket.on('error', (err) => this.#c.logger.warn({ err: err.message }, 'multicast discovery socket failed'));
    await new Promise<void>((resolve, reject) => {
      const failed = (err: Error): void => reject(err);
      socket.once('error', failed);
      socket.bind(o.port, () => {
        socket.off('error', failed);
        resolve();
      });
    }).catch((err: unknown) => {
      socket.close();
      throw new KvError(
        'KVMESH_ERR_TRANSPORT_LISTEN',
        `multicast discovery could not bind port ${o.port}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    });
    try {
      socket.addMembership(o.group, iface);
      if (iface !== undefined) socket.setMulticastInterface(iface);
      socket.setMulticastTTL(o.ttl);
      socket.setMulticastLoopback(o.loopback);
    } catch (err) {
      socket.close();
      throw new KvError(
        'KVMESH_ERR_TRANSPORT_LISTEN',
        `multicast discovery could not join ${o.group} on ${iface ?? 'the default interface'}: ${(err as Error).message}`,
        { cause: err },
      );
    }
    this.#socket = socket;
    this.#announce();
    this.#timer = this.#c.clock.setInterval(() => {
      if (this.#c.wanted()) this.#announce();
    }, o.intervalMs);
  }

  stop(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    const socket = this.#socket;
    this.#socket = undefined;
    socket?.close();
  }

  #announce(): void {
    const socket = this.#socket;
    if (socket === undefined) return;
    const schema = this.#c.messages.get(KADEMLIA_MESSAGES.announce);
    const body = schema.toBinary(schema.normalize({ sender: toWire(this.#c.self), cluster: this.#o.cluster }));
    socket.send(Buffer.concat([MAGIC, body]), this.#o.port, this.#o.group, (err) => {
      if (err) this.#c.logger.debug({ err: err.message }, 'multicast announcement not sent');
    });
  }

  #onDatagram(datagram: Buffer): void {
    if (datagram.length <= MAGIC.length || !datagram.subarray(0, MAGIC.length).equals(MAGIC)) return;
    let announced: { sender: WireContact | null; cluster: string };
    try {
      const schema = this.#c.messages.get(KADEMLIA_MESSAGES.announce);
      announced = schema.fromBinary(datagram.subarray(MAGIC.length)) as typeof announced;
    } catch {
      return; // Not ours, or damaged: discovery is best effort.
    }
    if (announced.cluster !== this.#o.cluster) return;
    const contact = fromWire(announced.sender);
    if (contact === undefined || contact.id === this.#c.self.id) return;
    this.#c.heard(contact);
  }
}
