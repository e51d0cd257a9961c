import { definePlugin } from '@kvmesh/core';
import { UDP_HEADER_BYTES } from './udp-frame.js';
import {
  UDP_MAX_PAYLOAD_BYTES,
  UDP_TRANSPORT_DEFAULTS,
  UdpTransport,
  type UdpTransportOptions,
} from './udp-transport.js';

export {
  UdpTransport,
  UDP_TRANSPORT_DEFAULTS,
  UDP_MAX_PAYLOAD_BYTES,
  type UdpTransportComponents,
  type UdpTransportOptions,
  type UdpTransportStats,
} from './udp-transport.js';
export { UDP_HEADER_BYTES } from './udp-frame.js';

/** Every frame, request or one-way, is one datagram less the request id header. */
const DEFAULT_FRAME_BYTES = UDP_TRANSPORT_DEFAULTS.maxDatagramBytes - UDP_HEADER_BYTES;

/** Request/response and one-way frames in single UDP datagrams: for gossip and small control messages. */
export const udpTransport = definePlugin({
  family: 'transport',
  name: 'udp',
  description: 'Frames in single UDP datagrams with a request id header; no retransmission, losses become timeouts.',
  version: '0.1.0',
  optionsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      maxDatagramBytes: {
        type: 'integer',
        minimum: 64,
        maximum: UDP_MAX_PAYLOAD_BYTES,
        default: UDP_TRANSPORT_DEFAULTS.maxDatagramBytes,
        description:
          'Largest datagram sent, 8-byte header included; larger frames are refused. 1200 never fragments on any standard path (IPv6 minimum MTU 1280).',
      },
    },
  },
  needs: ['node', 'clock', 'random', 'logger'],
  create: (options: UdpTransportOptions) => (components) => new UdpTransport(components, options),
  frameLimits: { maxMessageBytes: DEFAULT_FRAME_BYTES, maxFrameBytes: DEFAULT_FRAME_BYTES },
});
