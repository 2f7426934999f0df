import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { DemoStep } from '../src/demo/index.js';
import { repoRoot } from '../src/demo/paths.js';

/**
 * Ctrl-C in a terminal at any point of `npm start` leaves nothing behind: no PostgreSQL directory
 * (with its data and the superuser's password file) in the temporary folder, and no process
 * (postgres, initdb, the shop's versions, the `tightloop` commands the demo runs). The demo runs
 * with its own TMPDIR, so the folder can be checked for being empty, and SIGINT goes to its whole
 * process group, as a terminal sends it: postgres and initdb receive it too and may end first.
 */
const ROOT = repoRoot();
const base = mkdtempSync(join(tmpdir(), 'tightloop-demo-ctrlc-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));

/** Processes whose environment names `tmp` as TMPDIR: everything the demo started, at any depth. */
function processesUsing(tmp: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${e}/environ`, 'latin1').split('\0').includes(`TMPDIR=${tmp}`)) out.push(Number(e));
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return out;
}

async function stopAt(name: string, ready: (steps: DemoStep[], tmp: string) => boolean): Promise<void> {
  const dir = join(base, name);
  const tmp = join(dir, 'tmp');
  const dataDir = join(dir, 'data');
  mkdirSync(tmp, { recursive: true });
  // Like /tmp: run as root, PostgreSQL's tools run as the `postgres` user and read files here.
  for (const d of [base, dir]) chmodSync(d, 0o755);
  chmodSync(tmp, 0o1777);
  const child = spawn(process.execPath, [join(ROOT, 'bin', 'tightloop'), 'up', '--demo', '--data-dir', dataDir, '--port', '0', '--gateway-port', '0'],
    { cwd: dir, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TMPDIR: tmp, TIGHTLOOP_DEMO_SHOP_PORT: '0' } });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
  child.stderr.on('data', (d: Buffer) => (out += d.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const steps = (): DemoStep[] => {
    const f = join(dataDir, 'demo-steps.jsonl');
    return existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as DemoStep) : [];
  };
  try {
    for (const deadline = Date.now() + 300_000; !ready(steps(), tmp);) {
      if (child.exitCode !== null) throw new Error(`tightloop up --demo exited ${child.exitCode} before the point to stop at:\n${out}`);
      if (Date.now() > deadline) throw new Error(`the demo did not reach the point to stop at:\n${out}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(processesUsing(tmp).length, 'the demo runs processes at this point').toBeGreaterThan(0);
    process.kill(-(child.pid ?? 0), 'SIGINT'); // the terminal's Ctrl-C: the whole foreground group
    const code = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 90_000))]);
    expect(code, out).toBe(0);
    // Orphans may take a moment to be reaped; nothing may still run after that.
    for (const deadline = Date.now() + 5_000; processesUsing(tmp).length > 0 && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 100));
    expect(processesUsing(tmp), out).toEqual([]);
    expect(readdirSync(tmp), out).toEqual([]);
  } finally {
    for (const pid of processesUsing(tmp)) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
  }
}

describe('npm start, Ctrl-C at any point', () => {
  it('while PostgreSQL initialises: its directory and password file are removed, no process is left', async () => {
    await stopAt('pg-init', (_s, tmp) => readdirSync(tmp).some((e) => e.startsWith('tightloop-demo-pg-')));
  }, 200_000);

  it('mid-loop, as the bad deploy starts: postgres, the shop versions and the running commands end, the directory is removed', async () => {
    await stopAt('mid-loop', (s) => s.some((x) => x.id === 'deploy.started'));
  }, 400_000);
});
