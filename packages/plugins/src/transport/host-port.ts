import { KvError } from '@kvmesh/core';

export interface HostPort {
  /** Host without brackets: `127.0.0.1`, `::1`, `localhost`. */
  readonly host: string;
  readonly port: number;
}

/**
 * Splits `host:port` or `[v6]:port` (a NodeInfo address, or the authority of
 * a transport URI).
 * @throws KvError KVMESH_ERR_TRANSPORT_ADDRESS
 */
export function parseHostPort(authority: string, label = 'address'): HostPort {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]/\s]+)):(\d{1,5})$/.exec(authority);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65535) {
    throw new KvError('KVMESH_ERR_TRANSPORT_ADDRESS', `${label} '${authority}' is not host:port`);
  }
  return { host: (match[1] ?? match[2])!, port };
}

/** `host:port`, bracketing IPv6 hosts. */
export function formatHostPort({ host, port }: HostPort): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * The host and port of `uri` when its scheme is `scheme`; anything after the
 * authority is ignored.
 * @throws KvError KVMESH_ERR_TRANSPORT_ADDRESS
 */
export function parseTransportUri(uri: string, scheme: string): HostPort {
  const prefix = `${scheme}://`;
  if (!uri.startsWith(prefix)) {
    throw new KvError('KVMESH_ERR_TRANSPORT_ADDRESS', `'${uri}' is not a ${scheme} address: use ${prefix}host:port`);
  }
  const authority = uri.slice(prefix.length).split('/')[0]!;
  return parseHostPort(authority, `${scheme} address`);
}
