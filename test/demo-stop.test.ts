import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { DemoStep } from '../src/demo/index.js';
import { repoRoot } from '../src/demo/paths.js';

/**
 * Ctrl-C in the middle of `npm start`: the demo's loop is waiting on a phase (a verdict, a
 * rollout) when SIGINT arrives. The server flushes and closes, the demo stops waiting, PostgreSQL
 * is stopped, and the process exits 0. (It used to stay alive until every remaining wait of the
 * demo had timed out, minutes later.)
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
  it('exits 0 soon after SIGINT while the demo is still waiting on its loop', async () => {
    if (!existsSync(join(ROOT, 'dist', 'src', 'demo', 'shop', 'main.js'))) throw new Error('dist/ is missing: run `npm run build` first (npm test does)');
    const child = spawn(process.execPath, [join(ROOT, 'bin', 'tightloop'), 'up', '--demo', '--data-dir', dataDir, '--port', '0', '--gateway-port', '0'],
      { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TIGHTLOOP_DEMO_SHOP_PORT: '0' } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (out += d.toString('utf8')));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      // Steady traffic is reported after the warm-up; the bad deploy and its verdicts follow.
      for (const deadline = Date.now() + 240_000; !readSteps().some((s) => s.id === 'traffic.steady');) {
        if (child.exitCode !== null) throw new Error(`tightloop up --demo exited ${child.exitCode}:\n${out}`);
        if (Date.now() > deadline) throw new Error(`the demo did not reach steady traffic:\n${out}`);
        await new Promise((r) => setTimeout(r, 250));
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
