import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';

/**
 * `tightloop project create <name>`: creates an error-tracking project through the REST API and
 * prints its DSN (what a Sentry SDK's `dsn` option takes). Exit codes: 0 ok, 1 refused by the
 * server (e.g. name taken), 2 usage or connection error.
 */

interface ClientOpts {
  url?: string;
  token?: string;
  dataDir: string;
  json?: boolean;
}

function tokenOf(opts: ClientOpts): string | undefined {
  const t = opts.token ?? process.env.TIGHTLOOP_TOKEN;
  if (t !== undefined && t !== '') return t;
  try {
    return readFileSync(resolve(opts.dataDir, 'admin.token'), 'utf8').trim();
  } catch {
    return undefined;
  }
}

async function createProject(name: string, opts: ClientOpts): Promise<number> {
  const url = (opts.url ?? process.env.TIGHTLOOP_URL ?? 'http://127.0.0.1:4318').replace(/\/+$/, '');
  const token = tokenOf(opts);
  if (token === undefined) {
    process.stderr.write(`tightloop project create: no token (use --token, $TIGHTLOOP_TOKEN or ${resolve(opts.dataDir, 'admin.token')})\n`);
    return 2;
  }
  let res: Response;
  try {
    res = await fetch(`${url}/api/projects`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name }),
    });
  } catch (err) {
    process.stderr.write(`tightloop project create: cannot reach ${url}: ${(err as Error).message}\n`);
    return 2;
  }
  const body = (await res.json().catch(() => ({}))) as { id?: number; name?: string; dsn?: string; error?: { message?: string } };
  if (!res.ok) {
    process.stderr.write(`tightloop project create: ${res.status} ${body.error?.message ?? res.statusText}\n`);
    // Auth and malformed-request failures are usage errors; a refusal on the merits (409) is a failed check.
    return res.status === 401 || res.status === 403 || res.status === 400 ? 2 : 1;
  }
  if (opts.json === true) process.stdout.write(JSON.stringify(body) + '\n');
  else process.stdout.write(`project ${body.name ?? name} (id ${body.id ?? '?'})\n  DSN: ${body.dsn ?? ''}\n`);
  return 0;
}

/** Adds `project create` to the program; `setCode` receives the exit code. */
export function registerErrorCommands(program: Command, setCode: (code: number) => void): void {
  const project = program.command('project').description('error-tracking projects (Sentry SDK DSNs)');
  project
    .command('create <name>')
    .description('create a project and print its DSN')
    .option('--url <url>', 'server URL (default $TIGHTLOOP_URL, else http://127.0.0.1:4318)')
    .option('--token <token>', 'API token (default $TIGHTLOOP_TOKEN, else <data-dir>/admin.token)')
    .option('--data-dir <dir>', 'data directory holding admin.token', './.tightloop')
    .option('--json', 'print machine-readable JSON')
    .action(async (name: string, opts: ClientOpts) => {
      setCode(await createProject(name, opts));
    });
}
