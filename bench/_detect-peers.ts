/**
 * Prometheus and Alertmanager as the peer of `npm run bench -- detect` (not a benchmark itself).
 *
 * Debian's `prometheus` (2.42) and `prometheus-alertmanager` (0.25), started as child processes
 * with their own temporary directories on free loopback ports: Prometheus scrapes the benchmark's
 * `/metrics` every 1 s and evaluates every 1 s an error-rate rule with `for: 0s`; Alertmanager
 * routes with `group_wait: 0s`, `group_interval: 1s`, resolved notifications on, to the
 * benchmark's webhook. Absent binaries: `startPeers` returns undefined and says why.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { freePort } from './_util.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Peers {
  stop(): Promise<void>;
}

function which(bin: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}


async function ready(url: string, child: ChildProcess, name: string, log: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited ${child.exitCode}: ${log().slice(-2000)}`);
    try {
      if ((await fetch(url)).ok) return;
    } catch { /* starting */ }
    if (Date.now() > deadline) throw new Error(`${name} not ready after 30 s: ${log().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function run(bin: string, args: string[]): { child: ChildProcess; log: () => string } {
  const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let out = '';
  child.stderr?.on('data', (d: Buffer) => { out = (out + d.toString()).slice(-20_000); });
  return { child, log: () => out };
}

/**
 * The error-rate rule, as close to tightloop's as PromQL allows: errors / spans per service over
 * the last 2 s (`rate` needs two scrapes in the range, which 1 s scrapes give), above 5 %, with at
 * least 20 spans in the window.
 */
export const PROM_RULE = 'sum by (service) (increase(bench_span_errors_total[2s])) / sum by (service) (increase(bench_spans_total[2s])) > 0.05 and sum by (service) (increase(bench_spans_total[2s])) >= 20';

/** Starts both, scraping `http://127.0.0.1:<metricsPort>/metrics` and notifying `webhook`. */
export async function startPeers(metricsPort: number, webhook: string): Promise<Peers | undefined> {
  const prometheus = which('prometheus');
  const alertmanager = which('prometheus-alertmanager') ?? which('alertmanager');
  if (prometheus === undefined || alertmanager === undefined) {
    console.log('Prometheus comparison skipped: `prometheus` and `prometheus-alertmanager` are not installed (Debian: apt-get install prometheus prometheus-alertmanager)');
    return undefined;
  }
  const dir = mkdtempSync(join(tmpdir(), 'tightloop-bench-prom-'));
  const amPort = await freePort();
  const promPort = await freePort();
  writeFileSync(join(dir, 'alertmanager.yml'), `route:
  receiver: bench
  group_by: [service]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: bench
    webhook_configs:
      - url: ${webhook}
        send_resolved: true
`);
  writeFileSync(join(dir, 'rules.yml'), `groups:
  - name: bench
    interval: 1s
    rules:
      - alert: ErrorRate
        expr: ${PROM_RULE}
        for: 0s
`);
  writeFileSync(join(dir, 'prometheus.yml'), `global:
  scrape_interval: 1s
  scrape_timeout: 900ms
  evaluation_interval: 1s
rule_files: [${join(dir, 'rules.yml')}]
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['127.0.0.1:${amPort}']
scrape_configs:
  - job_name: bench
    static_configs:
      - targets: ['127.0.0.1:${metricsPort}']
`);
  const am = run(alertmanager, [`--config.file=${join(dir, 'alertmanager.yml')}`, `--storage.path=${join(dir, 'am')}`,
    `--web.listen-address=127.0.0.1:${amPort}`, '--cluster.listen-address=']);
  const prom = run(prometheus, [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'tsdb')}`,
    `--web.listen-address=127.0.0.1:${promPort}`, '--rules.alert.resend-delay=1s']);
  const stop = async (): Promise<void> => {
    for (const c of [prom.child, am.child]) {
      if (c.exitCode !== null) continue;
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await ready(`http://127.0.0.1:${amPort}/-/ready`, am.child, 'alertmanager', am.log);
    await ready(`http://127.0.0.1:${promPort}/-/ready`, prom.child, 'prometheus', prom.log);
    // Until the first scrape landed: `up` of the bench job is 1.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const r = await (await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=up%7Bjob%3D%22bench%22%7D`)).json() as { data?: { result?: Array<{ value: [number, string] }> } };
      if (r.data?.result?.[0]?.value[1] === '1') break;
      if (Date.now() > deadline) throw new Error('prometheus never scraped the benchmark');
      await new Promise((res) => setTimeout(res, 200));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  console.log(`Prometheus ${promPort} (scrape and evaluation every 1 s, for: 0s) → Alertmanager ${amPort} (group_wait 0s) → webhook`);
  return { stop };
}
