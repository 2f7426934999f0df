import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ulid } from 'ulid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createToken } from '../auth/index.js';
import { openStateStore, toTimestamp, type StateStore } from '../state/index.js';
import { ClientAuthenticator } from './client-auth.js';
import { gatewayMigrations } from './index.js';
import { ScramClientExchange } from './scram.js';

/**
 * The login method must not tell who exists or who enrolled a credential (an independent attack
 * enumerated users: unknown names were asked for a password, enrolled users got SCRAM with
 * their real salt). Names that are no user get a fixed, per-name answer of either kind.
 */

let dir: string;
let state: StateStore;
const secret = Buffer.alloc(32, 7);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tightloop-login-'));
  state = await openStateStore({ dialect: 'sqlite', path: join(dir, 'state.db'), migrations: gatewayMigrations });
  const id = ulid();
  await state.db.insertInto('users').values({ id, name: 'alice', role: 'member', created_at: toTimestamp(Date.now()) }).execute();
  const { token } = await createToken(state.db, { userId: id, name: 'alice token' });
  await new ClientAuthenticator(state.db, secret).verifyPassword('alice', token); // enrols
});
afterAll(async () => {
  await state?.close();
  rmSync(dir, { recursive: true, force: true });
});

function saltOf(exchange: { first(c: string): string }): string {
  return /,s=([^,]+),i=(\d+)/.exec(exchange.first('n,,n=,r=abcdef'))?.slice(1).join('/') ?? '';
}

describe('login method for names that are no user', () => {
  it('unknown names get SCRAM or a password message, fixed per name, with a stable per-name salt', async () => {
    const auth = new ClientAuthenticator(state.db, secret);
    const again = new ClientAuthenticator(state.db, secret); // a restart: same data dir key
    const kinds = new Set<string>();
    const salts = new Set<string>();
    for (let i = 0; i < 64; i++) {
      const name = `nosuch${i}`;
      const m = await auth.methodFor(name);
      const n = await again.methodFor(name);
      expect(n.kind).toBe(m.kind);
      kinds.add(m.kind);
      if (m.kind === 'scram' && n.kind === 'scram') {
        const s = saltOf(m.exchange);
        expect(saltOf(n.exchange)).toBe(s);
        expect(s).toMatch(/^[A-Za-z0-9+/]{22}==\/4096$/); // 16 bytes, the real iteration count
        salts.add(s);
      }
    }
    expect([...kinds].sort()).toEqual(['password', 'scram']);
    expect(salts.size).toBeGreaterThan(10);
    // An enrolled user's answer has the same shape.
    const real = await auth.methodFor('alice');
    expect(real.kind).toBe('scram');
    if (real.kind === 'scram') expect(saltOf(real.exchange)).toMatch(/^[A-Za-z0-9+/]{22}==\/4096$/);
  });

  it('no proof passes a mock exchange', async () => {
    const auth = new ClientAuthenticator(state.db, secret);
    let name = '';
    for (let i = 0; name === '' && i < 64; i++) if ((await auth.methodFor(`ghost${i}`)).kind === 'scram') name = `ghost${i}`;
    expect(name).not.toBe('');
    const m = await auth.methodFor(name);
    if (m.kind !== 'scram') throw new Error('scram expected');
    const client = new ScramClientExchange('any-token');
    const serverFirst = m.exchange.first(client.first());
    expect(m.exchange.final(client.final(serverFirst))).toBeNull();
  });
});
