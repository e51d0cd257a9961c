import { KvError, definePlugin } from '../../src/index.js';
import type { AnyPluginManifest, Codec, MessageRegistry } from '../../src/index.js';

/** A JSON codec for core's own tests (the real ones live in @kvmesh/plugins). */
export function testCodec(name = 'json', tag = 1): AnyPluginManifest {
  return definePlugin({
    family: 'codec',
    name,
    description: 'JSON codec for core tests.',
    optionsSchema: { type: 'object', additionalProperties: false, properties: {} },
    needs: ['messages'],
    create:
      () =>
      ({ messages }: { messages: MessageRegistry }): Codec => ({
        name,
        tag,
        contentType: 'application/json',
        encode: (type, payload) =>
          new TextEncoder().encode(JSON.stringify({ type, payload: messages.get(type).toJson(payload) })),
        decode: (bytes) => {
          let parsed: { type: string; payload: unknown };
          try {
            parsed = JSON.parse(new TextDecoder().decode(bytes)) as { type: string; payload: unknown };
          } catch (err) {
            throw new KvError('KVMESH_ERR_CODEC_DECODE', 'not JSON', { cause: err });
          }
          return { type: parsed.type, payload: messages.get(parsed.type).fromJson(parsed.payload) };
        },
      }),
  });
}
