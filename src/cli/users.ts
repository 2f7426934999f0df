import type { Command } from 'commander';
import { apiCall, type ClientOpts, withClientOptions as withClient } from './api-client.js';
import { clientUrl } from '../config/client.js';

/**
 * `tightloop user add|list|rm` and `tightloop token create|list|revoke` over the REST API
 * (`/api/users`, `/api/tokens`). A token is printed once, when it is created; the server keeps
 * only its hash. Exit codes: 0 ok, 1 refused by the server (e.g. name taken, not found),
 * 2 usage, permission or connection error.
 */

interface UserOut { id: string; name: string; role: string; createdAt: string }
interface CreatedUserOut extends UserOut { token: string; tokenId: string; gatewayPort?: number | null }
interface TokenOut {
  id: string; userId: string; name: string; prefix: string; createdAt: string;
  expiresAt: string | null; lastUsedAt: string | null; revokedAt: string | null;
}
interface CreatedTokenOut extends TokenOut { userName: string; token: string }

const userLine = (u: UserOut): string => `${u.id}  ${u.name.padEnd(20)}  ${u.role.padEnd(6)}  created ${u.createdAt}`;
const tokenLine = (t: TokenOut): string =>
  `${t.id}  ${`${t.prefix}…`.padEnd(11)}  ${t.name.padEnd(20)}  created ${t.createdAt}  expires ${t.expiresAt ?? 'never'}` +
  `  last used ${t.lastUsedAt ?? 'never'}${t.revokedAt === null ? '' : `  revoked ${t.revokedAt}`}`;

/** Where the gateway most likely listens: the API's host, the default gateway port. */
function gatewayHost(opts: ClientOpts): string {
  try {
    return new URL(clientUrl(opts.url)).hostname;
  } catch { // an unparsable --url is reported by the API call itself; the hint falls back to loopback
    return '127.0.0.1';
  }
}

/** Adds `user …` and `token …`; `setCode` receives the exit code. */
export function registerUserCommands(program: Command, setCode: (code: number) => void): void {
  const print = (opts: ClientOpts, data: unknown, text: () => string): void => {
    process.stdout.write(opts.json === true ? JSON.stringify(data) + '\n' : text());
  };

  const user = program.command('user').description('users: add (with a first API token), list, set-role, remove (admin)');

  withClient(user.command('add <name>')
    .description('create a user and print their first API token (once); the name is also their gateway (PostgreSQL) user name')
    .option('--role <role>', 'admin, member or viewer', 'member'))
    .action(async (name: string, opts: ClientOpts & { role: string }) => {
      const r = await apiCall<CreatedUserOut>('user add', opts, 'POST', '/api/users', { name, role: opts.role });
      if (r.code === 0 && r.data !== undefined) {
        const u = r.data;
        print(opts, u, () => [
          `user ${u.name} created (${u.role}), id ${u.id}`,
          `  token (shown once, only its hash is stored): ${u.token}`,
          `  CLI:      TIGHTLOOP_TOKEN=${u.token} tightloop ...`,
          `  gateway:  psql "postgres://${u.name}:${u.token}@${gatewayHost(opts)}:${u.gatewayPort ?? 15432}/<resource>"  (after a grant: access grant ${u.name} <resource> ...)`,
          '',
        ].join('\n'));
      }
      setCode(r.code);
    });

  withClient(user.command('list').description('list users'))
    .action(async (opts: ClientOpts) => {
      const r = await apiCall<{ users: UserOut[] }>('user list', opts, 'GET', '/api/users');
      if (r.code === 0 && r.data !== undefined) {
        const list = r.data.users;
        print(opts, list, () => (list.length === 0 ? 'no users\n' : list.map(userLine).join('\n') + '\n'));
      }
      setCode(r.code);
    });

  withClient(user.command('set-role <name-or-id> <role>')
    .description("change a user's role: admin, member or viewer; their tokens carry it from the next request (admin)"))
    .action(async (who: string, role: string, opts: ClientOpts) => {
      const r = await apiCall<UserOut>('user set-role', opts, 'PATCH', `/api/users/${encodeURIComponent(who)}`, { role });
      if (r.code === 0 && r.data !== undefined) { const u = r.data; print(opts, u, () => `user ${u.name} is now ${u.role}\n`); }
      setCode(r.code);
    });

  withClient(user.command('rm <name-or-id>').description('delete a user; their tokens stop working at once (admin)'))
    .action(async (who: string, opts: ClientOpts) => {
      const r = await apiCall<UserOut>('user rm', opts, 'DELETE', `/api/users/${encodeURIComponent(who)}`);
      if (r.code === 0 && r.data !== undefined) { const u = r.data; print(opts, u, () => `user ${u.name} deleted (${u.id}); their tokens are revoked\n`); }
      setCode(r.code);
    });

  const token = program.command('token').description('API tokens: create (shown once), list, revoke');

  withClient(token.command('create')
    .description('issue an API token and print it once')
    .option('--name <name>', 'label to tell it apart', 'cli token')
    .option('--for-user <name>', 'issue it for another user (admin)')
    .option('--expires-in <duration>', 'lifetime: seconds, or 12h, 30d, 4w (default never)'))
    .action(async (opts: ClientOpts & { name: string; forUser?: string; expiresIn?: string }) => {
      const body = { name: opts.name, ...(opts.forUser === undefined ? {} : { userId: opts.forUser }), ...(opts.expiresIn === undefined ? {} : { expiresIn: opts.expiresIn }) };
      const r = await apiCall<CreatedTokenOut>('token create', opts, 'POST', '/api/tokens', body);
      if (r.code === 0 && r.data !== undefined) {
        const t = r.data;
        print(opts, t, () => `token ${t.id} for ${t.userName} (${t.name}), expires ${t.expiresAt ?? 'never'}\n  ${t.token}\n  (shown once; only its hash is stored)\n`);
      }
      setCode(r.code);
    });

  withClient(token.command('list')
    .description('list your tokens (never the tokens themselves)')
    .option('--for-user <name>', "another user's tokens (admin)")
    .option('--all', 'include revoked tokens'))
    .action(async (opts: ClientOpts & { forUser?: string; all?: boolean }) => {
      const q = new URLSearchParams({ ...(opts.forUser === undefined ? {} : { userId: opts.forUser }), ...(opts.all === true ? { all: 'true' } : {}) });
      const r = await apiCall<{ tokens: TokenOut[] }>('token list', opts, 'GET', `/api/tokens${q.size === 0 ? '' : `?${q.toString()}`}`);
      if (r.code === 0 && r.data !== undefined) {
        const list = r.data.tokens;
        print(opts, list, () => (list.length === 0 ? 'no tokens\n' : list.map(tokenLine).join('\n') + '\n'));
      }
      setCode(r.code);
    });

  withClient(token.command('revoke <id>').description('revoke a token (your own; any for admins); it stops working at once'))
    .action(async (id: string, opts: ClientOpts) => {
      const r = await apiCall<TokenOut>('token revoke', opts, 'DELETE', `/api/tokens/${encodeURIComponent(id)}`);
      if (r.code === 0 && r.data !== undefined) { const t = r.data; print(opts, t, () => `token ${t.id} (${t.name}) revoked\n`); }
      setCode(r.code);
    });
}
