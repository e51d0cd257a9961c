import { KvError } from '../errors.js';

/**
 * Every Rpc frame starts with this 8-byte header, then the codec's bytes:
 *
 *   0  magic 0x4B ('K')      4-7  deadline in ms (requests), big-endian u32, else 0
 *   1  header version (1)
 *   2  codec tag (Codec.tag)
 *   3  kind (FrameKind)
 *
 * The codec tag lets a node answer each peer in the codec it spoke, so a
 * cluster can change codecs one node at a time.
 */
export const FRAME_MAGIC = 0x4b;
export const FRAME_VERSION = 1;
export const FRAME_HEADER_BYTES = 8;

export enum FrameKind {
  Request = 1,
  Response = 2,
  Error = 3,
  OneWay = 4,
}

export interface FrameHeader {
  readonly codecTag: number;
  readonly kind: FrameKind;
  readonly deadlineMs: number;
}

export function writeFrame(header: FrameHeader, body: Uint8Array): Uint8Array {
  const frame = new Uint8Array(FRAME_HEADER_BYTES + body.length);
  const view = new DataView(frame.buffer);
  frame[0] = FRAME_MAGIC;
  frame[1] = FRAME_VERSION;
  frame[2] = header.codecTag;
  frame[3] = header.kind;
  view.setUint32(4, Math.min(Math.max(0, Math.ceil(header.deadlineMs)), 0xffffffff));
  frame.set(body, FRAME_HEADER_BYTES);
  return frame;
}

/** @throws KvError KVMESH_ERR_CODEC_DECODE for anything that is not a kvmesh frame. */
export function readFrame(frame: Uint8Array): { header: FrameHeader; body: Uint8Array } {
  if (frame.length < FRAME_HEADER_BYTES || frame[0] !== FRAME_MAGIC) {
    throw new KvError('KVMESH_ERR_CODEC_DECODE', 'not a kvmesh frame');
  }
  if (frame[1] !== FRAME_VERSION) {
    if (isSealedFrame(frame)) {
      throw new KvError(
        'KVMESH_ERR_RPC_UNAUTHENTICATED',
        'the frame is sealed with a cluster secret, and this node has none (cluster.secrets)',
      );
    }
    throw new KvError('KVMESH_ERR_CODEC_DECODE', `unsupported frame version ${frame[1]}`);
  }
  const kind = frame[3]!;
  if (kind < FrameKind.Request || kind > FrameKind.OneWay) {
    throw new KvError('KVMESH_ERR_CODEC_DECODE', `unknown frame kind ${kind}`);
  }
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  return {
    header: { codecTag: frame[2]!, kind, deadlineMs: view.getUint32(4) },
    body: frame.subarray(FRAME_HEADER_BYTES),
  };
}

/** True for a frame sealed with a cluster secret (versions 2 and 3, see frame-auth.ts). */
export function isSealedFrame(frame: Uint8Array): boolean {
  return frame.length >= FRAME_HEADER_BYTES && frame[0] === FRAME_MAGIC && (frame[1] === 2 || frame[1] === 3);
}
