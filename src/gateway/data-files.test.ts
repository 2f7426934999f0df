import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureAdmin } from '../auth/index.js';
import { openStateStore } from '../state/index.js';
import { gatewayMigrations, startGateway } from './index.js';

/** Files the state store and the gateway create in the data dir are the owner's alone. */

const dir = mkdtempSync(join(tmpdir(), 'tightloop-files-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function walk(d: string): string[] {
  return readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? [join(d, e.name), ...walk(join(d, e.name))] : [join(d, e.name)]));
}

describe('data file permissions', () => {
  it('nothing in the data dir is readable by group or others (but the public certificate)', async () => {
    const state = await openStateStore({ dialect: 'sqlite', path: join(dir, 'state.db'), migrations: gatewayMigrations });
    await ensureAdmin(state.db, dir);
    const gateway = await startGateway({ db: state.db, dataDir: dir, log: pino({ level: 'silent' }), port: 0 });
    gateway.audit.append({ kind: 'test.event' });
    await gateway.audit.flush();
    const files = walk(dir);
    expect(files.map((f) => f.slice(dir.length + 1))).toEqual(expect.arrayContaining(['state.db', 'state.db-wal', 'gateway-audit.key', 'gateway-audit.anchor', 'gateway-mask.key', 'credentials']));
    const open = files.filter((f) => !f.endsWith('gateway-cert.pem') && (statSync(f).mode & 0o077) !== 0).map((f) => `${f.slice(dir.length + 1)} ${(statSync(f).mode & 0o777).toString(8)}`);
    await gateway.close();
    await state.close();
    expect(open).toEqual([]);
  });
});
