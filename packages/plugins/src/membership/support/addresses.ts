import { isIP } from 'node:net';
import { KvError } from '@kvmesh/core';
import { formatHostPort, parseHostPort, type HostPort } from '../../transport/host-port.js';

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

/**
 * True when a message that the transport saw come from `fromUri` may have
 * been sent by the node at `hostPort` (a `host:port` or a transport URI):
 * the same port, and the same host unless exactly one of the two is an IP
 * and the other a name (a datagram's source is an IP, where a config may
 * name the host; they cannot be compared here).
 */
export function sameEndpoint(fromUri: string, hostPort: string): boolean {
  const strip = (value: string): string => {
    const at = value.indexOf('://');
    return at < 0 ? value : value.slice(at + 3);
  };
  let a: HostPort;
  let b: HostPort;
  try {
    a = parseHostPort(strip(fromUri).trim());
    b = parseHostPort(strip(hostPort).trim());
  } catch {
    return false;
  }
  if (a.port !== b.port) return false;
  if (a.host.toLowerCase() === b.host.toLowerCase()) return true;
  return (isIP(a.host) === 0) !== (isIP(b.host) === 0);
}
