/**
 * `npm run bench -- proxy [--seconds 2] [--rounds 3] [--clients 16]`
 *
 * The local actuator's WeightedProxy (deploys/rollout/proxy.ts) against two backend processes
 * (a minimal node:http server each, as two versions):
 *
 * 1. Cost: requests/s and latency with keep-alive clients straight to a backend and through the
 *    proxy, alternating rounds side by side. The proxy runs in a process of its own (as inside
 *    tightloop), taking weight changes as JSON lines on stdin.
 * 2. Split: at weights 90/10, the share each backend served (exact by construction: smooth
 *    weighted round-robin).
 * 3. Switch back: under load at 90/10, weights go to 100/0; requests that started after the
 *    switch and still reached the old version (must be 0), and how long until its last in-flight
 *    request finished.
 *
 * Last line: RESULT proxy direct_rps=N proxied_rps=N rps_ratio=N direct_p50_ms=N proxied_p50_ms=N
 *   proxied_p99_ms=N split_b_pct=N after_switch_to_old=N drain_ms=N
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { Agent, request } from 'node:http';
import { fileURLToPath } from 'node:url';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? def : Number(process.argv[i + 1]);
}
const SECONDS = arg('seconds', 2);
const ROUNDS = arg('rounds', 3);
const CLIENTS = arg('clients', 16);

const BACKEND = `
const http = require('node:http');
const s = http.createServer((req, res) => { req.resume(); req.on('end', () => { res.writeHead(200, { 'x-version': process.env.V, 'content-type': 'text/plain' }); res.end('ok ' + process.env.V); }); });
s.listen(0, '127.0.0.1', () => process.stdout.write(String(s.address().port) + '\\n'));
process.on('SIGTERM', () => process.exit(0));
`;

/** The compiled WeightedProxy in a child process: prints its port, reads `{"A":90,"B":10}` lines. */
const PROXY_JS = fileURLToPath(new URL('../src/deploys/rollout/proxy.js', import.meta.url));
const PROXY = `
import { WeightedProxy } from ${JSON.stringify(PROXY_JS)};
import { createInterface } from 'node:readline';
const p = new WeightedProxy('bench');
const port = await p.listen(0);
p.addBackend('A', Number(process.env.PA));
p.addBackend('B', Number(process.env.PB));
p.setWeights({ A: 100 });
process.stdout.write(String(port) + '\\n');
createInterface({ input: process.stdin }).on('line', (l) => p.setWeights(JSON.parse(l)));
process.on('SIGTERM', () => process.exit(0));
`;

async function backend(v: string): Promise<{ child: ChildProcess; port: number }> {
  return portOf(spawn(process.execPath, ['-e', BACKEND], { env: { ...process.env, V: v }, stdio: ['ignore', 'pipe', 'inherit'] }));
}

async function portOf(child: ChildProcess): Promise<{ child: ChildProcess; port: number }> {
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout?.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    child.once('exit', () => reject(new Error('backend exited')));
  });
  return { child, port };
}

interface Res { version: string; startedAt: number; endedAt: number }

function get(port: number, agent: Agent): Promise<Res> {
  const startedAt = performance.now();
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/x', agent }, (res) => {
      res.resume();
      res.on('end', () => resolve({ version: String(res.headers['x-version']), startedAt, endedAt: performance.now() }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** CLIENTS keep-alive loops for `ms`; `onEach` sees every response. */
async function load(port: number, ms: number, onEach?: (r: Res) => void): Promise<Res[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: CLIENTS });
  const out: Res[] = [];
  const until = performance.now() + ms;
  await Promise.all(Array.from({ length: CLIENTS }, async () => {
    while (performance.now() < until) {
      const r = await get(port, agent);
      out.push(r);
      onEach?.(r);
    }
  }));
  agent.destroy();
  return out;
}

const pct = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor(q * s.length))];
};
const r2 = (x: number): number => Math.round(x * 100) / 100;

async function main(): Promise<void> {
  const a = await backend('A');
  const b = await backend('B');
  const px = await portOf(spawn(process.execPath, ['--input-type=module', '-e', PROXY], {
    env: { ...process.env, PA: String(a.port), PB: String(b.port) }, stdio: ['pipe', 'pipe', 'inherit'],
  }));
  const port = px.port;
  const setWeights = (w: Record<string, number>): void => {
    px.child.stdin?.write(JSON.stringify(w) + '\n');
  };
  await load(port, 300);
  await load(a.port, 300);

  const direct: Res[] = [];
  const proxied: Res[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    direct.push(...await load(a.port, SECONDS * 1000));
    proxied.push(...await load(port, SECONDS * 1000));
  }
  const lat = (rs: Res[]): number[] => rs.map((r) => r.endedAt - r.startedAt);
  const directRps = direct.length / (ROUNDS * SECONDS);
  const proxiedRps = proxied.length / (ROUNDS * SECONDS);
  console.log(`direct:  ${directRps.toFixed(0)} req/s, p50 ${pct(lat(direct), 0.5).toFixed(2)} ms, p99 ${pct(lat(direct), 0.99).toFixed(2)} ms`);
  console.log(`proxied: ${proxiedRps.toFixed(0)} req/s, p50 ${pct(lat(proxied), 0.5).toFixed(2)} ms, p99 ${pct(lat(proxied), 0.99).toFixed(2)} ms`);

  setWeights({ A: 90, B: 10 });
  await new Promise((r) => setTimeout(r, 100));
  const split = await load(port, SECONDS * 1000);
  const splitB = (100 * split.filter((r) => r.version === 'B').length) / split.length;
  console.log(`split at 90/10: B served ${splitB.toFixed(2)} % of ${split.length}`);

  let switchedAt = Infinity;
  let lastOldEnd = 0;
  let afterSwitchToOld = 0;
  const running = load(port, 1500, (r) => {
    if (r.version !== 'B') return;
    lastOldEnd = Math.max(lastOldEnd, r.endedAt);
    if (r.startedAt > switchedAt) afterSwitchToOld++;
  });
  await new Promise((r) => setTimeout(r, 500));
  switchedAt = performance.now();
  setWeights({ A: 100 });
  await running;
  const drainMs = Math.max(0, lastOldEnd - switchedAt);
  console.log(`switch back: ${afterSwitchToOld} requests started after the switch reached B; B's last in-flight request ended ${drainMs.toFixed(2)} ms after it`);

  px.child.kill('SIGTERM');
  a.child.kill('SIGTERM');
  b.child.kill('SIGTERM');
  console.log('(machine shared with other work: compare the ratio, not the absolute numbers)');
  console.log(`RESULT proxy direct_rps=${directRps.toFixed(0)} proxied_rps=${proxiedRps.toFixed(0)} rps_ratio=${r2(proxiedRps / directRps)} direct_p50_ms=${r2(pct(lat(direct), 0.5))} proxied_p50_ms=${r2(pct(lat(proxied), 0.5))} proxied_p99_ms=${r2(pct(lat(proxied), 0.99))} split_b_pct=${r2(splitB)} after_switch_to_old=${afterSwitchToOld} drain_ms=${r2(drainMs)}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
