import type { FrameLimits } from '@kvmesh/core';
import { HTTP_TRANSPORT_DEFAULTS } from '../../transport/http/http-transport.js';

/**
 * Frame limits for strategies that send a whole member list or counter table
 * in one frame (`simulation.frameLimits`): what the http transport they are
 * deployed on carries by default, for requests and one-way messages alike.
 * One datagram would cut those tables short past a couple of dozen members.
 */
export const WHOLE_LIST_FRAME_LIMITS: FrameLimits = Object.freeze({
  maxMessageBytes: HTTP_TRANSPORT_DEFAULTS.maxFrameBytes,
  maxFrameBytes: HTTP_TRANSPORT_DEFAULTS.maxFrameBytes,
});
