import { CliError, EXIT } from './exit-codes.js';

/** Where client commands go when neither `--node` nor KVMESH_NODE says. */
export const DEFAULT_NODE_URL = 'http://127.0.0.1:7700';

export interface ClientResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Buffer;
}

/** A small HTTP client for the native API of one node. */
export class ApiClient {
  readonly base: string;

  constructor(nodeUrl: string) {
    let url: URL;
    try {
      url = new URL(nodeUrl);
    } catch {
      throw new CliError(`--node must be a URL like ${DEFAULT_NODE_URL} (found '${nodeUrl}')`, EXIT.usage);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new CliError(`--node must be an http:// or https:// URL (found '${nodeUrl}')`, EXIT.usage);
    }
    this.base = url.href.replace(/\/+$/, '');
  }

  keyUrl(key: string): string {
    return `${this.base}/v1/kv/${encodeURIComponent(key)}`;
  }

  async request(
    method: string,
    url: string,
    init: { headers?: Record<string, string>; body?: Buffer } = {},
  ): Promise<ClientResponse> {
    let res: Response;
    try {
      res = await fetch(url, { method, headers: init.headers ?? {}, ...(init.body ? { body: init.body } : {}) });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const reason = cause?.code ?? cause?.message ?? (err instanceof Error ? err.message : String(err));
      throw new CliError(`cannot reach ${this.base}: ${reason} (is the node running? set --node)`, EXIT.runtime);
    }
    return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
  }
}

/**
 * The failure a non-2xx answer means for a shell user: the server's error
 * code and message, exit 1 for 4xx (the request was wrong) and 2 for 5xx.
 */
export function responseError(res: ClientResponse): CliError {
  let text = res.body.toString('utf8');
  try {
    const parsed = JSON.parse(text) as { error?: { code?: string; message?: string } };
    if (parsed.error?.code !== undefined) text = `${parsed.error.code}: ${parsed.error.message ?? ''}`;
  } catch {
    // Not JSON: the raw text is the best there is.
  }
  return new CliError(`HTTP ${res.status}${text ? ` ${text}` : ''}`, res.status >= 500 ? EXIT.runtime : EXIT.usage);
}

/** Reads all of stdin. */
export async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
