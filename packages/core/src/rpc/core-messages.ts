import { readFileSync } from 'node:fs';
import type { MessageRegistry } from '../contracts/rpc.js';

/** Names of the message types in `proto/kvmesh.proto`, which every registry made by core holds. */
export const CORE_MESSAGES = {
  /** `{ code, message }`: a failure sent back to the caller of a request. */
  error: 'kvmesh.core.Error',
  /** `{}`: a request or response that carries nothing. */
  empty: 'kvmesh.core.Empty',
  /** `{ type, payload }`: the protobuf codec's wrapper around any message. */
  envelope: 'kvmesh.core.Envelope',
} as const;

// Relative to dist/src/rpc/, where this module runs from; the package ships proto/.
const CORE_PROTO_URL = new URL('../../../proto/kvmesh.proto', import.meta.url);

let coreProto: string | undefined;

/** The text of `proto/kvmesh.proto`. */
export function coreProtoSource(): string {
  coreProto ??= readFileSync(CORE_PROTO_URL, 'utf8');
  return coreProto;
}

/**
 * Defines the core message types in `registry` (harmless when they are
 * there already) and returns their names.
 */
export function defineCoreMessages(registry: MessageRegistry): string[] {
  return registry.define(coreProtoSource());
}
