export interface UdpTransportOptions {
  /** Largest datagram sent, header included: one-way frames and the requests and responses that fit go in one. */
  readonly maxDatagramBytes: number;
  /** Largest request or response frame; those over one datagram go over the stream lane. */
  readonly maxFrameBytes: number;
  /** Stream lane connections kept open to each peer; also the most large frames in flight to one peer. */
  readonly streamConnectionsPerPeer: number;
  /** How long an idle stream lane connection stays open, on both sides. */
  readonly streamIdleTimeoutMs: number;
  /** How long a served request id is remembered, so that a duplicated datagram of it does not run the handler again. */
  readonly dedupWindowMs: number;
  /** Memory for remembered request ids and the responses kept to answer duplicates with. */
  readonly dedupMaxBytes: number;
}

/**
 * maxDatagramBytes 1200: the IPv6 minimum MTU (1280, RFC 8200 §5) minus the
 * 40-byte IPv6 and 8-byte UDP headers leaves 1232, and QUIC (RFC 9000 §14)
 * settles on 1200 as the datagram size every path must carry. Below it no
 * datagram is fragmented on any standard path, so one lost fragment never
 * loses a frame.
 *
 * maxFrameBytes 4 MiB: the default value limit (1 MiB) needs 1.4 MB frames
 * in the widest codec (value-limits.ts), so this leaves room for values up
 * to about 3 MiB before the setting must be raised.
 *
 * dedupWindowMs 60 s: far longer than a network holds a duplicate (it
 * arrives within milliseconds of the original) and than the deadlines
 * requests get (rpc.timeoutMs 2 s, kv.batchTimeoutMs 10 s by default).
 * dedupMaxBytes 4 MiB: about 32,000 remembered requests with empty
 * responses (128 bytes each), 18,000 with 100-byte ones, so the whole window
 * up to 300-500 requests per second served; past that the oldest are
 * forgotten first, and a window of seconds still outlasts any duplicate.
 */
export const UDP_TRANSPORT_DEFAULTS: UdpTransportOptions = Object.freeze({
  maxDatagramBytes: 1200,
  maxFrameBytes: 4 * 1024 * 1024,
  streamConnectionsPerPeer: 2,
  streamIdleTimeoutMs: 10_000,
  dedupWindowMs: 60_000,
  dedupMaxBytes: 4 * 1024 * 1024,
});

/** Largest UDP payload over IPv4 (65535 - 20 IP - 8 UDP). */
export const UDP_MAX_PAYLOAD_BYTES = 65_507;
