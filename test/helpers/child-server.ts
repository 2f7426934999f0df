import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';

/** The built CLI (`npm run build`): tests that need the real process (worker threads, SIGKILL). */
export const BIN = join(import.meta.dirname, '..', '..', 'bin', 'tightloop');

/** A free loopback port (the OS picks; closed again before it is returned). */
export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * `tightloop up` in a child process on `port` with `dataDir`, resolved once /api/health answers
 * (30 s at most; its stderr is in the error if it exits or never gets healthy).
 */
export async function upChild(dataDir: string, port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [BIN, 'up', '--data-dir', dataDir, '--port', String(port), '--log-level', 'warn'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString(); });
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited ${child.exitCode}: ${stderr}`);
    try {
      if ((await fetch(`http://127.0.0.1:${port}/api/health`)).ok) return child;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) throw new Error(`server did not become healthy: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
