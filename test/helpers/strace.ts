import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

/**
 * Runs a process under `strace -f` (Debian's strace; `.ci/run` installs it) and checks, from the
 * recorded system calls, that a record was synced to its file before the process acknowledged
 * it. A SIGKILL test cannot see a missing fsync (the page cache survives the kill); the order of
 * write → fsync/fdatasync → acknowledgement can.
 *
 * Only the calls that matter are stopped on (`--seccomp-bpf`): reads and writes of every kind,
 * fsync and fdatasync. `-yy` names every descriptor (file path, or TCP endpoints), `-s` keeps
 * enough of each buffer to find a request's marker in it. Ordering: a call's entry and its
 * return are separate lines when another thread ran in between (`<unfinished ...>` then
 * `<... name resumed>`); the line order is the order strace saw them, and a thread is stopped at
 * each traced call's return until strace has recorded it, so a sync's return is always recorded
 * before anything that learned of its completion (the libuv pool thread wakes the event loop
 * only after fdatasync returned).
 */

export const TRACED = 'read,readv,recvfrom,recvmsg,write,writev,pwrite64,pwritev,pwritev2,sendto,sendmsg,fsync,fdatasync,sync_file_range';

export function haveStrace(): boolean {
  try {
    execFileSync('strace', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export interface Traced {
  /** strace itself; exits when the traced process does. */
  strace: ChildProcess;
  /** The traced process (strace's child). */
  pid: number;
  stdout(): string;
  stderr(): string;
}

/** Starts `command args` under strace, recording into `out`; resolves once it runs. */
export async function spawnTraced(out: string, command: string, args: string[], env?: NodeJS.ProcessEnv): Promise<Traced> {
  const strace = spawn('strace', ['-f', '--seccomp-bpf', '-qq', '-yy', '-s', '4096', '-e', 'signal=none', '-e', `trace=${TRACED}`, '-o', out, command, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env,
  });
  let stdout = '';
  let stderr = '';
  strace.stdout?.on('data', (d: Buffer) => { stdout += d.toString(); });
  strace.stderr?.on('data', (d: Buffer) => { stderr += d.toString(); });
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (strace.exitCode !== null) throw new Error(`strace exited ${strace.exitCode}: ${stderr}`);
    // strace first forks short-lived probes of itself (same command line as strace): the child
    // wanted is the one that runs `command`.
    const pid = childRunning(strace.pid!, command, args[0]);
    if (pid !== undefined) return { strace, pid, stdout: () => stdout, stderr: () => stderr };
    if (Date.now() > deadline) throw new Error(`strace did not start its child: ${stderr}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function childRunning(parent: number, command: string, arg: string): number | undefined {
  let children: string[] = [];
  try { children = readFileSync(`/proc/${parent}/task/${parent}/children`, 'utf8').trim().split(' ').filter((c) => c !== ''); } catch { /* not yet */ }
  for (const c of children) {
    try {
      const argv = readFileSync(`/proc/${c}/cmdline`, 'utf8').split('\0');
      if (argv[0] === command && argv.includes(arg)) return Number(c);
    } catch { /* gone */ }
  }
  return undefined;
}

/** Ends the traced process with `signal` and waits until strace has written everything. */
export async function stopTraced(t: Traced, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (t.strace.exitCode !== null) return;
  const exited = new Promise((r) => t.strace.once('exit', r));
  try { process.kill(t.pid, signal); } catch { /* already gone */ }
  await exited;
}

export interface Call {
  pid: number;
  name: string;
  /** What `-yy` says the first argument's descriptor is: a path, or `TCP:[a:p->b:q]`. */
  fd: string;
  /** The whole call as printed (entry and return joined). */
  text: string;
  /** Line index of the call's entry and of its return (equal when printed on one line). */
  start: number;
  end: number;
}

const CALL = /^(\d+)\s+(\w+)\((.*)$/;
const RESUMED = /^(\d+)\s+<\.\.\. (\w+) resumed>(.*)$/;
const FD = /^\d+<(TCP:\[[^\]]*\]|TCPv6:\[[^\]]*\]|[^>]*)>/;

/** Parses an `strace -f -yy` recording into calls, in the order they started. */
export function parseTrace(text: string): Call[] {
  const calls: Call[] = [];
  const open = new Map<number, Call>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const resumed = RESUMED.exec(line);
    if (resumed !== null) {
      const c = open.get(Number(resumed[1]));
      if (c !== undefined && c.name === resumed[2]) {
        c.text += resumed[3];
        c.end = i;
        open.delete(c.pid);
      }
      continue;
    }
    const m = CALL.exec(line);
    if (m === null) continue;
    const pid = Number(m[1]);
    const rest = m[3];
    const unfinished = rest.endsWith('<unfinished ...>');
    const c: Call = { pid, name: m[2], fd: FD.exec(rest)?.[1] ?? '', text: rest, start: i, end: i };
    calls.push(c);
    if (unfinished) open.set(pid, c);
  }
  return calls;
}

export function readTrace(path: string): Call[] {
  return parseTrace(readFileSync(path, 'utf8'));
}

const READS = new Set(['read', 'readv', 'recvfrom', 'recvmsg']);
const WRITES = new Set(['write', 'writev', 'pwrite64', 'pwritev', 'pwritev2', 'sendto', 'sendmsg']);
const SYNCS = new Set(['fsync', 'fdatasync']);

export interface OrderCheck {
  /** A string only this request carries (a trace id, an event id, an identifier in SQL). */
  marker: string;
  /** The durable file the record must reach (e.g. the ingest log's segments, state.db-wal). */
  file: RegExp;
  /** The acknowledgement: the first write after the request was read that matches. */
  ack: (c: Call, request: Call) => boolean;
}

/**
 * Checks, for one request, that the last write of its record (a write to `file` carrying the
 * marker, after the request was read) was followed by a completed fsync/fdatasync of that file,
 * and that the sync returned before the acknowledgement was written. Returns what is wrong, or
 * undefined when the order holds.
 */
export function syncedBeforeAck(calls: readonly Call[], check: OrderCheck): string | undefined {
  const request = calls.find((c) => READS.has(c.name) && c.text.includes(check.marker));
  if (request === undefined) return `${check.marker}: the request was never read`;
  const ack = calls.find((c) => c.start > request.end && WRITES.has(c.name) && check.ack(c, request));
  if (ack === undefined) return `${check.marker}: never acknowledged`;
  const writes = calls.filter((c) => WRITES.has(c.name) && check.file.test(c.fd) && c.text.includes(check.marker) && c.start > request.start && c.start < ack.start);
  if (writes.length === 0) return `${check.marker}: acknowledged (line ${ack.start}) before its record was written to ${check.file}`;
  const last = writes[writes.length - 1];
  if (last.end > ack.start) return `${check.marker}: acknowledged (line ${ack.start}) while its record's write (line ${last.start}) was still running`;
  const sync = calls.find((c) => SYNCS.has(c.name) && c.fd === last.fd && c.start > last.end && c.end < ack.start && /\)\s+=\s+0/.test(c.text));
  if (sync !== undefined) return undefined;
  const late = calls.find((c) => SYNCS.has(c.name) && c.fd === last.fd && c.start > last.end);
  return late === undefined
    ? `${check.marker}: acknowledged (line ${ack.start}) but ${last.fd} was never synced after the record's write (line ${last.start})`
    : `${check.marker}: acknowledged (line ${ack.start}) before the sync of ${last.fd} returned (line ${late.end}) after the record's write (line ${last.start})`;
}

/** The local port of a `TCP:[a:p->b:q]` descriptor name, and the remote one. */
export function tcpPorts(fd: string): { local: number; remote: number } | undefined {
  const m = /^TCPv?6?:\[.*:(\d+)->.*:(\d+)\]$/.exec(fd);
  return m === null ? undefined : { local: Number(m[1]), remote: Number(m[2]) };
}
