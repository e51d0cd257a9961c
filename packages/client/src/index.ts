/** @kvmesh/client: a client for kvmesh's native API. */
export const CLIENT_VERSION = '0.1.0';
