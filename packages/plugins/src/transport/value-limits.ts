import { KvError } from '@kvmesh/core';
import type { ConfigCheckProblem } from '@kvmesh/core';

/**
 * Everything but the key and the value in the largest request that carries
 * one value (a replica write): version, node ids, epoch, content type,
 * condition, field names or tags, and the rpc and udp headers. Generous:
 * those add up to well under 1 KiB with every built-in codec.
 */
export const REQUEST_HEADROOM_BYTES = 16 * 1024;

/**
 * JSON escapes a control character of a key as `\u00XX`: 6 bytes for 1.
 * The widest a key gets in any built-in codec.
 */
const KEY_ESCAPE_FACTOR = 6;

export interface ValueLimits {
  readonly maxValueBytes: number;
  readonly maxKeyBytes: number;
}

/**
 * The request frame a node needs to carry one value of `maxValueBytes` under
 * a key of `maxKeyBytes`, whatever codec it speaks: the widest built-in
 * encoding of bytes is base64 in JSON (RFC 4648 §4), 4 characters per 3
 * bytes; the binary codecs need about the value's own size.
 * 1 MiB values with 1 KiB keys need 1,420,632 bytes.
 */
export function requestBytesFor(limits: ValueLimits): number {
  return Math.ceil(limits.maxValueBytes / 3) * 4 + limits.maxKeyBytes * KEY_ESCAPE_FACTOR + REQUEST_HEADROOM_BYTES;
}

/** `limits` of a node config, when it has them (a config built by the kernel always does). */
export function valueLimitsOf(config: Readonly<Record<string, unknown>> | undefined): ValueLimits | undefined {
  const limits = config?.['limits'] as Record<string, unknown> | undefined;
  const maxValueBytes = limits?.['maxValueBytes'];
  const maxKeyBytes = limits?.['maxKeyBytes'];
  if (typeof maxValueBytes !== 'number' || typeof maxKeyBytes !== 'number') return undefined;
  return { maxValueBytes, maxKeyBytes };
}

/**
 * The transport's `checkConfig`: a node whose value limit needs larger
 * request frames than the transport carries would accept writes from
 * clients that it then cannot replicate or hand off.
 */
export function frameLimitProblems(
  config: Readonly<Record<string, unknown>>,
  maxFrameBytes: number,
  transport: string,
): ConfigCheckProblem[] {
  const limits = valueLimitsOf(config);
  if (limits === undefined) return [];
  const needed = requestBytesFor(limits);
  if (needed <= maxFrameBytes) return [];
  return [
    {
      path: '/limits/maxValueBytes',
      message:
        `${limits.maxValueBytes} (with limits.maxKeyBytes ${limits.maxKeyBytes}) needs request frames of up to ${needed} bytes, ` +
        `but the ${transport} transport carries at most ${maxFrameBytes} (/transport/options/maxFrameBytes): ` +
        `raise it to at least ${needed}, or lower limits.maxValueBytes`,
    },
  ];
}

/**
 * Refuses to build a transport for a config `frameLimitProblems` refuses
 * (a config validated by the kernel never is; a transport built by hand may be).
 * @throws KvError KVMESH_ERR_CONFIG_INVALID naming both settings and the size needed.
 */
export function checkValueLimits(
  config: Readonly<Record<string, unknown>> | undefined,
  maxFrameBytes: number,
  transport: string,
): void {
  const [problem] = frameLimitProblems(config ?? {}, maxFrameBytes, transport);
  if (problem === undefined) return;
  throw new KvError('KVMESH_ERR_CONFIG_INVALID', `limits.maxValueBytes ${problem.message}`, {
    details: { ...valueLimitsOf(config), maxFrameBytes },
  });
}
