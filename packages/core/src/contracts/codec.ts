/** A decoded message: a registered type name and its payload in canonical form. */
export interface Message<P = unknown> {
  /** Fully qualified protobuf name, e.g. `kvmesh.core.Error`. */
  readonly type: string;
  /**
   * The payload as a plain object in canonical form: every field present
   * (defaults filled), 64-bit integers as numbers, enums as their names,
   * bytes as `Uint8Array`, repeated fields as arrays, maps as objects.
   */
  readonly payload: P;
}

/**
 * Turns registered messages into bytes and back. Built with the node's
 * MessageRegistry, which holds the schema of every type.
 *
 * Codecs are stateless after construction: both methods may be called
 * concurrently and must not keep references to their arguments.
 * A codec never frames: the Rpc layer prepends a header with `tag`, so a
 * receiver picks the right codec for each frame (nodes with different codecs
 * can talk during a migration).
 */
export interface Codec {
  /** Strategy name as configured, e.g. `msgpack`. */
  readonly name: string;
  /** 1..255, unique among codecs; written in every frame header. Never change it once released. */
  readonly tag: number;
  /** MIME type of the encoded bytes, e.g. `application/msgpack`. */
  readonly contentType: string;
  /**
   * Encodes `payload` as message `type`.
   * @throws KvError KVMESH_ERR_MESSAGE_UNKNOWN for an unregistered type,
   *   KVMESH_ERR_MESSAGE_INVALID when the payload does not match the schema.
   */
  encode(type: string, payload: unknown): Uint8Array;
  /**
   * Decodes bytes made by `encode` of a codec with the same name, returning
   * the payload in canonical form. Any other input — random bytes, truncated
   * frames, wrong field types, absurd lengths — throws KvError
   * KVMESH_ERR_CODEC_DECODE (or KVMESH_ERR_MESSAGE_UNKNOWN); it never crashes
   * the process and never allocates much more than the input's size.
   */
  decode(bytes: Uint8Array): Message;
}
