import type { Command } from 'commander';
import { apiCall, type ClientOpts, withClientOptions } from './api-client.js';

/**
 * `tightloop project create <name>`: creates an error-tracking project through the REST API and
 * prints its DSN (what a Sentry SDK's `dsn` option takes). Exit codes: 0 ok, 1 refused by the
 * server (e.g. name taken), 2 usage or connection error.
 */

async function createProject(name: string, opts: ClientOpts): Promise<number> {
  const r = await apiCall<{ id?: number; name?: string; dsn?: string }>('project create', opts, 'POST', '/api/projects', { name });
  if (r.code !== 0 || r.data === undefined) return r.code;
  const body = r.data;
  if (opts.json === true) process.stdout.write(JSON.stringify(body) + '\n');
  else process.stdout.write(`project ${body.name ?? name} (id ${body.id ?? '?'})\n  DSN: ${body.dsn ?? ''}\n`);
  return 0;
}

/** Adds `project create` to the program; `setCode` receives the exit code. */
export function registerErrorCommands(program: Command, setCode: (code: number) => void): void {
  const project = program.command('project').description('error-tracking projects (Sentry SDK DSNs)');
  withClientOptions(project
    .command('create <name>')
    .description('create a project and print its DSN'))
    .action(async (name: string, opts: ClientOpts) => {
      setCode(await createProject(name, opts));
    });
}
