import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { clientToken, clientUrl } from '../config/client.js';

/**
 * The REST client every CLI command other than `up` uses: `--url` (default $TIGHTLOOP_URL, else
 * http://127.0.0.1:4318) and `--token` (default $TIGHTLOOP_TOKEN, else <data-dir>/admin.token).
 * Failures are reported on stderr as `tightloop <command>: ...` and mapped to exit codes:
 * 2 for usage, auth and connection errors, 1 for a refusal on the merits (e.g. 404, 409).
 */

export interface ClientOpts {
  url?: string;
  token?: string;
  dataDir: string;
  json?: boolean;
}

export function withClientOptions(cmd: Command): Command {
  return cmd
    .option('--url <url>', 'server URL (default $TIGHTLOOP_URL, else http://127.0.0.1:4318)')
    .option('--token <token>', 'API token (default $TIGHTLOOP_TOKEN, else <data-dir>/admin.token)')
    .option('--data-dir <dir>', 'data directory holding admin.token', './.tightloop')
    .option('--json', 'print machine-readable JSON');
}

function tokenOf(opts: ClientOpts): string | undefined {
  const t = clientToken(opts.token);
  if (t !== undefined && t !== '') return t;
  try {
    return readFileSync(resolve(opts.dataDir, 'admin.token'), 'utf8').trim();
  } catch { // no token file (not this data directory, or not readable): the call goes without a token and the server says 401
    return undefined;
  }
}

/** The server's base URL: --url, else $TIGHTLOOP_URL, else http://127.0.0.1:4318 (no trailing slash). */
export function serverUrl(opts: { url?: string }): string {
  return clientUrl(opts.url).replace(/\/+$/, '');
}

/** Calls the API; `code` is 0 with the parsed body on success, else the exit code to use. */
export async function apiCall<T = unknown>(
  command: string, opts: ClientOpts, method: string, path: string, body?: unknown,
): Promise<{ code: number; data?: T }> {
  const url = serverUrl(opts);
  const token = tokenOf(opts);
  if (token === undefined) {
    process.stderr.write(`tightloop ${command}: no token (use --token, $TIGHTLOOP_TOKEN or ${resolve(opts.dataDir, 'admin.token')})\n`);
    return { code: 2 };
  }
  let res: Response;
  try {
    res = await fetch(url + path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    process.stderr.write(`tightloop ${command}: cannot reach ${url}: ${(err as Error).message}\n`);
    return { code: 2 };
  }
  // A body that is not JSON (a proxy's error page): the status below still tells what happened.
  const data = (await res.json().catch(() => ({}))) as T & { error?: { message?: string } };
  if (!res.ok) {
    process.stderr.write(`tightloop ${command}: ${res.status} ${data.error?.message ?? res.statusText}\n`);
    return { code: res.status === 401 || res.status === 403 || res.status === 400 ? 2 : 1 };
  }
  return { code: 0, data };
}
