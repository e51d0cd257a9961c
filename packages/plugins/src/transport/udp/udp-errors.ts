import { KvError, isKvError } from '@kvmesh/core';
import { UDP_FAILURE } from './udp-frame.js';

export function aborted(to: string): KvError {
  return new KvError('KVMESH_ERR_RPC_ABORTED', `request to ${to} was aborted by the caller`);
}

export function tooLargeResponse(bytes: number, max: number): KvError {
  return new KvError('KVMESH_ERR_TRANSPORT_FRAME_TOO_LARGE', `response of ${bytes} bytes exceeds maxFrameBytes ${max}`);
}

export function failureError(frame: Uint8Array, from: string): KvError {
  switch (frame[0]) {
    case UDP_FAILURE.responseTooLarge:
      return new KvError('KVMESH_ERR_TRANSPORT_FRAME_TOO_LARGE', `${from} has a response over maxFrameBytes`);
    case UDP_FAILURE.streamFailed:
      return new KvError('KVMESH_ERR_TRANSPORT_UNREACHABLE', `${from} could not deliver its response over the stream`);
    default:
      return new KvError('KVMESH_ERR_TRANSPORT_UNREACHABLE', `${from} failed to handle the request`);
  }
}

/** A stream lane failure, named by the udp address it was for; the code is the lane's. */
export function laneError(err: unknown, to: string): KvError {
  if (!isKvError(err)) {
    return new KvError('KVMESH_ERR_TRANSPORT_UNREACHABLE', `cannot reach ${to} over the stream: ${String(err)}`, {
      cause: err,
    });
  }
  return new KvError(err.code, `${to} over the stream: ${err.message}`, { cause: err });
}

export function errorCode(err: Error): string {
  return (err as NodeJS.ErrnoException).code ?? err.message;
}
