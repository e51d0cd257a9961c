import { KvError } from '@kvmesh/core';
import { formatHostPort, parseHostPort } from '../../transport/host-port.js';

/** The scheme of a transport URI: `udp` for `udp://127.0.0.2:7946`. */
export function schemeOf(uri: string): string {
  const at = uri.indexOf('://');
  if (at <= 0) throw new KvError('KVMESH_ERR_TRANSPORT_ADDRESS', `'${uri}' is not a transport URI`);
  return uri.slice(0, at);
}

/**
 * The transport URI of `hostPort` on the transport that `ownUri` belongs to:
 * configs name peers by `host:port`, the wire needs `scheme://host:port`.
 * A value that already is a URI is returned unchanged.
 */
export function peerUri(ownUri: string, hostPort: string): string {
  if (hostPort.includes('://')) return hostPort;
  return `${schemeOf(ownUri)}://${hostPort}`;
}

/** `host:port` in its canonical spelling, or undefined when it is not one. */
export function canonicalHostPort(value: string): string | undefined {
  try {
    return formatHostPort(parseHostPort(value.trim()));
  } catch {
    return undefined;
  }
}

/** The `api` meta of a node: the HTTP base URL of its `host:port`. */
export function apiUrl(hostPort: string): string {
  return `http://${hostPort}`;
}
