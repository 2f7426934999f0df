/**
 * How each kind of action runs. A runner never throws into its caller: it resolves with an
 * outcome (ok or not, exit code, captured output), like OpenTelemetry's ExportResult, so a
 * failing action is recorded as failed and nothing else.
 *
 * Parameters reach a command only as whole argv elements or environment values (never through a
 * shell), a webhook's URL only URL-encoded, its JSON body only JSON-encoded.
 */
import { spawn } from 'node:child_process';
import type { CommandAction, LocalAction, WebhookAction } from './definitions.js';
import type { ParamValues } from './params.js';

export interface RunOutcome {
  ok: boolean;
  /** Process exit code, HTTP status for webhooks, 0/1 for local operations; null when it never finished. */
  exitCode: number | null;
  output: string;
  outputTruncated: boolean;
  /** Why it failed, in one line (timeout, spawn error, HTTP status, …). */
  error: string | null;
}

/** What the `local` kind drives (implemented by the local actuator in ../rollout). */
export interface LocalDriver {
  deploy(service: string, version: string, weight: number, previousVersion: string | null): Promise<string>;
  rollback(service: string, version: string, previousVersion: string): Promise<string>;
  stop(service: string, version: string): Promise<string>;
}

const PLACEHOLDER_RE = /\$\{(env:)?([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** Replaces `${PARAM}` (and `${env:NAME}`, from tightloop's own environment) in one template. */
export function substitute(template: string, params: ParamValues, encode: (s: string) => string = (s) => s): string {
  return template.replace(PLACEHOLDER_RE, (_m, env: string | undefined, name: string) => {
    if (env !== undefined) return encode(process.env[name] ?? '');
    const v = params[name];
    return v === undefined ? '' : encode(String(v));
  });
}

/** Keeps the first `max` bytes of a stream of chunks and counts the rest. */
export class OutputBuffer {
  private chunks: Buffer[] = [];
  private kept = 0;
  dropped = 0;
  constructor(private readonly max: number) {}
  push(chunk: Buffer): void {
    const room = this.max - this.kept;
    if (room <= 0) {
      this.dropped += chunk.length;
      return;
    }
    const part = chunk.length <= room ? chunk : chunk.subarray(0, room);
    this.chunks.push(part);
    this.kept += part.length;
    this.dropped += chunk.length - part.length;
  }
  text(): string {
    const s = Buffer.concat(this.chunks).toString('utf8');
    return this.dropped > 0 ? `${s}\n… [${this.dropped} more bytes not kept]` : s;
  }
}

/** Variables a command inherits from tightloop; the rest of its environment (tokens!) stays out. */
const INHERITED_ENV = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR', 'USER', 'SHELL', 'NODE_OPTIONS'];

export function runCommand(def: CommandAction, params: ParamValues, signal?: AbortSignal): Promise<RunOutcome> {
  const argv = def.argv.map((a) => substitute(a, params));
  const env: NodeJS.ProcessEnv = {};
  for (const k of INHERITED_ENV) if (process.env[k] !== undefined) env[k] = process.env[k];
  for (const [k, v] of Object.entries(def.env)) env[k] = substitute(v, params);
  const out = new OutputBuffer(def.maxOutputBytes);
  return new Promise((resolve) => {
    let settled = false;
    let timedOut = false;
    let killTimer: NodeJS.Timeout | undefined;
    const finish = (o: Omit<RunOutcome, 'output' | 'outputTruncated'>): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(killTimer);
      signal?.removeEventListener('abort', onAbort);
      resolve({ ...o, output: out.text(), outputTruncated: out.dropped > 0 });
    };
    // Own process group, so a timeout also stops what the command started.
    const child = spawn(argv[0], argv.slice(1), {
      cwd: def.cwd === undefined ? undefined : substitute(def.cwd, params),
      env, shell: false, detached: true, stdio: ['ignore', 'pipe', 'pipe'],
    });
    const killGroup = (sig: NodeJS.Signals): void => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, sig);
      } catch {
        // already gone
      }
    };
    const stop = (): void => {
      killGroup('SIGTERM');
      killTimer = setTimeout(() => killGroup('SIGKILL'), 3_000);
      killTimer.unref();
    };
    const timer = setTimeout(() => {
      timedOut = true;
      stop();
    }, def.timeoutS * 1000);
    const onAbort = (): void => stop();
    signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => out.push(c));
    child.on('error', (err) => finish({ ok: false, exitCode: null, error: `cannot start ${argv[0]}: ${err.message}` }));
    child.on('close', (code, sig) => {
      if (timedOut) finish({ ok: false, exitCode: code, error: `timed out after ${def.timeoutS} s` });
      else if (signal?.aborted === true) finish({ ok: false, exitCode: code, error: 'stopped: tightloop is shutting down' });
      else if (code === 0) finish({ ok: true, exitCode: 0, error: null });
      else finish({ ok: false, exitCode: code, error: code === null ? `killed by ${sig ?? 'a signal'}` : `exited with code ${code}` });
    });
  });
}

export async function runWebhook(def: WebhookAction, params: ParamValues, signal?: AbortSignal): Promise<RunOutcome> {
  const url = substitute(def.url, params, encodeURIComponent);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(def.headers)) {
    const value = substitute(v, params);
    if (/[\r\n]/.test(value)) return { ok: false, exitCode: null, output: '', outputTruncated: false, error: `header ${k}: value contains a line break` };
    headers[k.toLowerCase()] = value;
  }
  let body: string | undefined;
  if (typeof def.body === 'string') body = substitute(def.body, params);
  else if (def.body !== undefined) {
    body = JSON.stringify(jsonTemplate(def.body, params));
    headers['content-type'] ??= 'application/json';
  }
  const out = new OutputBuffer(def.maxOutputBytes);
  const timeout = AbortSignal.timeout(def.timeoutS * 1000);
  try {
    const res = await fetch(url, { method: def.method, headers, body, redirect: 'manual', signal: signal === undefined ? timeout : AbortSignal.any([signal, timeout]) });
    if (res.body !== null) for await (const chunk of res.body) out.push(Buffer.from(chunk as Uint8Array));
    const ok = res.status >= 200 && res.status < 300;
    return { ok, exitCode: res.status, output: out.text(), outputTruncated: out.dropped > 0, error: ok ? null : `HTTP ${res.status} ${res.statusText}` };
  } catch (err) {
    const e = err as Error & { cause?: { message?: string } };
    const why = timeout.aborted ? `timed out after ${def.timeoutS} s` : `${e.message}${e.cause?.message === undefined ? '' : `: ${e.cause.message}`}`;
    return { ok: false, exitCode: null, output: out.text(), outputTruncated: out.dropped > 0, error: `${def.method} ${new URL(url).origin}: ${why}` };
  }
}

/** A JSON body template: string leaves substituted; a leaf that is exactly `${P}` keeps P's type. */
function jsonTemplate(v: unknown, params: ParamValues): unknown {
  if (typeof v === 'string') {
    const whole = /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$/.exec(v);
    if (whole !== null && params[whole[1]] !== undefined) return params[whole[1]];
    return substitute(v, params);
  }
  if (Array.isArray(v)) return v.map((x) => jsonTemplate(x, params));
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, jsonTemplate(x, params)]));
  return v;
}

export async function runLocal(def: LocalAction, params: ParamValues, driver: LocalDriver | undefined): Promise<RunOutcome> {
  const fail = (error: string): RunOutcome => ({ ok: false, exitCode: 1, output: error, outputTruncated: false, error });
  if (driver === undefined) return fail('the local actuator is not running');
  const service = String(params.SERVICE);
  const version = String(params.VERSION);
  const previous = params.PREVIOUS_VERSION === undefined ? null : String(params.PREVIOUS_VERSION);
  try {
    let output: string;
    if (def.operation === 'deploy') output = await driver.deploy(service, version, Number(params.WEIGHT ?? 100), previous);
    else if (def.operation === 'rollback') {
      if (previous === null) return fail('PREVIOUS_VERSION is required to roll back');
      output = await driver.rollback(service, version, previous);
    } else output = await driver.stop(service, version);
    return { ok: true, exitCode: 0, output, outputTruncated: false, error: null };
  } catch (err) {
    return fail((err as Error).message);
  }
}
