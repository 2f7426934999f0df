import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { cliEntry } from './paths.js';
import type { DemoReporter } from './reporter.js';

/**
 * Runs the real `tightloop` command (bin/tightloop in a child process), exactly as the README
 * shows it, so every documented command the demo uses is exercised end to end. The URL and
 * token come from TIGHTLOOP_URL / TIGHTLOOP_TOKEN, which keeps tokens off the printed line.
 */

/** Child processes the demo started and that still run (the CLI, psql): ended when it stops. */
const running = new Set<ChildProcess>();

export function track<C extends ChildProcess>(child: C): C {
  running.add(child);
  child.once('exit', () => running.delete(child));
  return child;
}

/** Ends every command the demo still runs (a stopped demo leaves no process behind). */
export function stopCommands(): void {
  for (const c of running) c.kill('SIGTERM');
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliRunner {
  (args: string[], opts?: { token?: string; quiet?: boolean }): Promise<CliResult>;
  /** Every command run, in order, as typed (without the leading `tightloop`). */
  readonly history: string[][];
}

/** `historyFile`: each command and its exit code as JSON lines (the end-to-end test reads it). */
export function cliRunner(url: string, adminToken: string, reporter: DemoReporter, historyFile?: string): CliRunner {
  const history: string[][] = [];
  const run = (async (args: string[], opts: { token?: string; quiet?: boolean } = {}): Promise<CliResult> => {
    history.push(args);
    if (opts.quiet !== true) reporter.command(['tightloop', ...args]);
    const env = { ...process.env, TIGHTLOOP_URL: url, TIGHTLOOP_TOKEN: opts.token ?? adminToken };
    return new Promise<CliResult>((resolve) => {
      const child = track(spawn(process.execPath, [cliEntry(), ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] }));
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
      child.once('error', (err) => resolve({ code: 2, stdout, stderr: stderr + err.message }));
      child.once('close', (code) => {
        if (opts.quiet !== true) reporter.detail(stdout + (stderr === '' ? '' : stderr));
        if (historyFile !== undefined) appendFileSync(historyFile, JSON.stringify({ args, code }) + '\n');
        resolve({ code: code ?? 2, stdout, stderr });
      });
    });
  }) as CliRunner;
  Object.defineProperty(run, 'history', { value: history });
  return run;
}
