import { KvError, isKvError } from '@kvmesh/core';

/**
 * The error a decode throws: decode and unknown-type errors pass through,
 * a payload that fails its schema and anything a parser threw become
 * KVMESH_ERR_CODEC_DECODE.
 */
export function decodeError(codec: string, err: unknown): KvError {
  if (isKvError(err, 'KVMESH_ERR_CODEC_DECODE') || isKvError(err, 'KVMESH_ERR_MESSAGE_UNKNOWN')) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new KvError('KVMESH_ERR_CODEC_DECODE', `cannot decode ${codec} frame: ${message}`, { cause: err });
}

/** Rejects input that is not bytes, or is larger than the codec accepts, before any parsing. */
export function checkDecodeInput(codec: string, bytes: unknown, maxMessageBytes: number): asserts bytes is Uint8Array {
  if (!(bytes instanceof Uint8Array)) {
    throw new KvError('KVMESH_ERR_CODEC_DECODE', `cannot decode ${codec} frame: input is not a Uint8Array`);
  }
  if (bytes.length === 0) throw new KvError('KVMESH_ERR_CODEC_DECODE', `cannot decode ${codec} frame: input is empty`);
  if (bytes.length > maxMessageBytes) {
    throw new KvError(
      'KVMESH_ERR_CODEC_DECODE',
      `cannot decode ${codec} frame: ${bytes.length} bytes exceed maxMessageBytes (${maxMessageBytes})`,
    );
  }
}

/** Rejects an encoded message larger than the codec accepts, so the receiver would not refuse it. */
export function checkEncodedSize(codec: string, type: string, bytes: Uint8Array, maxMessageBytes: number): Uint8Array {
  if (bytes.length > maxMessageBytes) {
    throw new KvError(
      'KVMESH_ERR_CODEC_ENCODE',
      `cannot encode ${type} as ${codec}: ${bytes.length} bytes exceed maxMessageBytes (${maxMessageBytes})`,
      { details: { type, bytes: bytes.length, maxMessageBytes } },
    );
  }
  return bytes;
}
