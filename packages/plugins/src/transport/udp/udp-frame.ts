/**
 * The 8-byte header in front of every udp transport datagram, and of every
 * body on its stream lane (stream-lane.ts):
 *
 *   0-1  magic 0x4b 0x56 ("KV")
 *   2    version (1)
 *   3    kind: 1 request, 2 response, 3 one-way message, 4 failure
 *   4-7  request id, unsigned 32-bit big-endian (0 for one-way messages)
 *
 * then the frame. A failure's frame is one byte saying why (UDP_FAILURE).
 * The receiver of a request keeps the ids it served recently, per sender,
 * so a duplicated datagram does not run the handler again.
 */
export const UDP_HEADER_BYTES = 8;
const MAGIC_0 = 0x4b;
const MAGIC_1 = 0x56;
const VERSION = 1;

export const UDP_KIND = { request: 1, response: 2, message: 3, failure: 4 } as const;
export type UdpKind = (typeof UDP_KIND)[keyof typeof UDP_KIND];

export const UDP_FAILURE = {
  /** The handler rejected. */
  handlerFailed: 1,
  /** The response was over the responder's maxFrameBytes, or the requester's. */
  responseTooLarge: 2,
  /** The response was too large for a datagram and could not be delivered over the stream lane. */
  streamFailed: 3,
} as const;

export interface UdpDatagram {
  readonly kind: UdpKind;
  readonly id: number;
  readonly frame: Uint8Array;
}

export function encodeDatagram(kind: UdpKind, id: number, frame: Uint8Array): Uint8Array {
  const out = new Uint8Array(UDP_HEADER_BYTES + frame.length);
  out[0] = MAGIC_0;
  out[1] = MAGIC_1;
  out[2] = VERSION;
  out[3] = kind;
  new DataView(out.buffer).setUint32(4, id >>> 0);
  out.set(frame, UDP_HEADER_BYTES);
  return out;
}

/** The datagram, or undefined when it is not one of ours (short, wrong magic or version, unknown kind). */
export function decodeDatagram(bytes: Uint8Array): UdpDatagram | undefined {
  if (bytes.length < UDP_HEADER_BYTES || bytes[0] !== MAGIC_0 || bytes[1] !== MAGIC_1 || bytes[2] !== VERSION) {
    return undefined;
  }
  const kind = bytes[3]!;
  if (kind < UDP_KIND.request || kind > UDP_KIND.failure) return undefined;
  const id = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(4);
  // A plain view, not a Buffer subarray: receivers get the same type from every transport.
  const frame = new Uint8Array(bytes.buffer, bytes.byteOffset + UDP_HEADER_BYTES, bytes.length - UDP_HEADER_BYTES);
  return { kind: kind as UdpKind, id, frame };
}
