import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { DemoStep } from '../src/demo/index.js';
import { repoRoot } from '../src/demo/paths.js';

/**
 * Ctrl-C in the middle of `npm start`: SIGINT arrives as the bad deploy starts, so its version
 * is still starting and the demo's loop is waiting on the rollout. The server flushes and closes,
 * the starting version is given up, the demo stops waiting, PostgreSQL is stopped, and the
 * process exits 0. (It used to stay alive until the remaining waits had timed out: those of the
 * demo, minutes, and the starting version's health wait, 120 s.)
 */
const ROOT = repoRoot();
const dir = mkdtempSync(join(tmpdir(), 'tightloop-demo-stop-'));
const dataDir = join(dir, 'data');

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function readSteps(): DemoStep[] {
  const f = join(dataDir, 'demo-steps.jsonl');
  if (!existsSync(f)) return [];
  return readFileSync(f, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as DemoStep);
}

describe('npm start, stopped mid-demo', () => {
  it('exits 0 soon after SIGINT while the bad version is starting and the demo waits on it', async () => {
    if (!existsSync(join(ROOT, 'dist', 'src', 'demo', 'shop', 'main.js'))) throw new Error('dist/ is missing: run `npm run build` first (npm test does)');
    const child = spawn(process.execPath, [join(ROOT, 'bin', 'tightloop'), 'up', '--demo', '--data-dir', dataDir, '--port', '0', '--gateway-port', '0'],
      { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TIGHTLOOP_DEMO_SHOP_PORT: '0' } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (out += d.toString('utf8')));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      // After the warm-up and steady traffic, the bad deploy starts; its canary and verdicts follow.
      for (const deadline = Date.now() + 240_000; !readSteps().some((s) => s.id === 'deploy.started');) {
        if (child.exitCode !== null) throw new Error(`tightloop up --demo exited ${child.exitCode}:\n${out}`);
        if (Date.now() > deadline) throw new Error(`the demo did not start the bad deploy:\n${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(readSteps().some((s) => s.id === 'demo.done')).toBe(false);
      child.kill('SIGINT');
      const code = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 60_000))]);
      expect(code, out).toBe(0);
      expect(out).toContain('SIGINT received, flushing and shutting down');
      expect(out).not.toContain('is not a function');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 330_000);
});
