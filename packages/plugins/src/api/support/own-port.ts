/** The options of a facade that may answer on a port of its own instead of the node's. */
export interface OwnPortOptions {
  /** A port of the facade's own (0: any free one), or null for the node's API port. */
  readonly port: number | null;
  /** Interface of that port, or null for the API's (`api.host`). */
  readonly host: string | null;
}

/**
 * The `port` and `host` option schemas every such facade declares;
 * `portDescription` says what `null` means for this facade's clients.
 */
export function ownPortProperties(portDescription: string): Record<string, object> {
  return {
    port: {
      type: ['integer', 'null'],
      minimum: 0,
      maximum: 65535,
      default: null,
      description: portDescription,
    },
    host: {
      type: ['string', 'null'],
      minLength: 1,
      default: null,
      description: "Interface of the facade's own port. null: the API's (api.host). Ignored without port.",
    },
  };
}

/** The `Facade.port` and `Facade.host` of `options`: set only when not null. */
export function ownPort(options: OwnPortOptions): { port?: number; host?: string } {
  return {
    ...(options.port !== null ? { port: options.port } : {}),
    ...(options.host !== null ? { host: options.host } : {}),
  };
}
