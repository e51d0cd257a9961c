import { definePlugin } from '@kvmesh/core';
import { UDP_HEADER_BYTES } from './udp-frame.js';
import { UDP_MAX_PAYLOAD_BYTES, UDP_TRANSPORT_DEFAULTS, type UdpTransportOptions } from './options.js';
import { UdpTransport } from './udp-transport.js';
import { frameLimitProblems } from '../value-limits.js';

export { UdpTransport, type UdpTransportComponents, type UdpTransportStats } from './udp-transport.js';
export { UDP_TRANSPORT_DEFAULTS, UDP_MAX_PAYLOAD_BYTES, type UdpTransportOptions } from './options.js';
export { UDP_HEADER_BYTES } from './udp-frame.js';
export { STREAM_PATH as UDP_STREAM_PATH } from './stream-lane.js';
export { REQUEST_HEADROOM_BYTES, requestBytesFor, type ValueLimits } from '../value-limits.js';

const d = UDP_TRANSPORT_DEFAULTS;

/** Requests that fit in one datagram, and every one-way frame, travel in one datagram less the header. */
const DATAGRAM_FRAME_BYTES = d.maxDatagramBytes - UDP_HEADER_BYTES;

/** Request/response and one-way frames in UDP datagrams, with a stream lane for frames over one datagram. */
export const udpTransport = definePlugin({
  family: 'transport',
  name: 'udp',
  description:
    'Frames in UDP datagrams with a request id header (duplicates served once, losses become timeouts); frames over one datagram go over a TCP stream lane on the same port.',
  version: '0.2.0',
  optionsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      maxDatagramBytes: {
        type: 'integer',
        minimum: 64,
        maximum: UDP_MAX_PAYLOAD_BYTES,
        default: d.maxDatagramBytes,
        description:
          'Largest datagram sent, 8-byte header included: every one-way frame, and the requests and responses that fit. 1200 never fragments on any standard path (IPv6 minimum MTU 1280).',
      },
      maxFrameBytes: {
        type: 'integer',
        minimum: UDP_MAX_PAYLOAD_BYTES,
        maximum: 1024 * 1024 * 1024,
        default: d.maxFrameBytes,
        description:
          'Largest request or response frame in bytes; those over one datagram travel over the stream lane. Must carry limits.maxValueBytes: 1 MiB values need about 1.4 MB (checked when the node is built).',
      },
      streamConnectionsPerPeer: {
        type: 'integer',
        minimum: 1,
        maximum: 64,
        default: d.streamConnectionsPerPeer,
        description:
          'Stream lane (TCP) connections kept open to each peer; also the most frames over one datagram in flight to one peer.',
      },
      streamIdleTimeoutMs: {
        type: 'integer',
        minimum: 100,
        default: d.streamIdleTimeoutMs,
        description: 'How long an idle stream lane connection stays open before it is closed, on both sides.',
      },
      dedupWindowMs: {
        type: 'integer',
        minimum: 1000,
        default: d.dedupWindowMs,
        description:
          'How long a served request id is remembered per sender, so that a duplicated datagram does not run the request again.',
      },
      dedupMaxBytes: {
        type: 'integer',
        minimum: 64 * 1024,
        default: d.dedupMaxBytes,
        description:
          'Memory for remembered request ids (about 128 bytes each) and the datagram-sized responses kept to answer duplicates; the oldest are forgotten first.',
      },
    },
  },
  needs: ['node', 'clock', 'random', 'logger', 'config'],
  create: (options: UdpTransportOptions) => (components) => new UdpTransport(components, options),
  checkConfig: (options: UdpTransportOptions, config) => frameLimitProblems(config, options.maxFrameBytes, 'udp'),
  frameLimits: { maxMessageBytes: DATAGRAM_FRAME_BYTES, maxFrameBytes: d.maxFrameBytes },
});
