import { definePlugin } from '@kvmesh/core';
import { frameLimitProblems } from '../value-limits.js';
import { HTTP_TRANSPORT_DEFAULTS, HttpTransport, type HttpTransportOptions } from './http-transport.js';

export {
  HttpTransport,
  HTTP_TRANSPORT_DEFAULTS,
  FROM_HEADER,
  type HttpTransportComponents,
  type HttpTransportOptions,
} from './http-transport.js';

const d = HTTP_TRANSPORT_DEFAULTS;

/** Request/response and one-way frames as HTTP POSTs with keep-alive connections. */
export const httpTransport = definePlugin({
  family: 'transport',
  name: 'http',
  description:
    'Frames over HTTP/1.1: one multiplexed frame stream per peer (CONNECT), or POST bodies over keep-alive connections (undici client, node:http server).',
  version: '0.1.0',
  optionsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      connectionsPerPeer: {
        type: 'integer',
        minimum: 1,
        maximum: 1024,
        default: d.connectionsPerPeer,
        description: 'Keep-alive connections kept open to each peer; also the most requests in flight to one peer.',
      },
      keepAliveTimeoutMs: {
        type: 'integer',
        minimum: 1000,
        default: d.keepAliveTimeoutMs,
        description: 'How long an idle connection stays open before it is closed, on the client and the server side.',
      },
      maxFrameBytes: {
        type: 'integer',
        minimum: 1024,
        maximum: 1024 * 1024 * 1024,
        default: d.maxFrameBytes,
        description: 'Largest request or response body in bytes; larger ones are refused (413 on the server side).',
      },
      path: {
        type: 'string',
        pattern: '^/[A-Za-z0-9._~/-]*$',
        default: d.path,
        description: "URL path of internal requests (one-way messages use path + '/msg'); the same on every node.",
      },
      stream: {
        type: 'boolean',
        default: d.stream,
        description:
          'Carry frames to each peer over one multiplexed connection (a CONNECT to its port, then length-prefixed frames both ways; the frames of one event-loop turn leave in one write). false: one POST per frame. A peer that serves no stream gets POSTs either way.',
      },
    },
  },
  needs: ['node', 'clock', 'logger'],
  create: (options: HttpTransportOptions) => (components) => new HttpTransport(components, options),
  checkConfig: (options: HttpTransportOptions, config) => frameLimitProblems(config, options.maxFrameBytes, 'http'),
  // One-way messages are POSTs too, bounded like requests.
  frameLimits: { maxMessageBytes: d.maxFrameBytes, maxFrameBytes: d.maxFrameBytes },
});
