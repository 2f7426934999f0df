/**
 * demo/ — `tightloop up --demo` (what `npm start` runs): the whole loop on one machine.
 *
 *   index.ts         prepareDemo (PostgreSQL, rules) before the server starts; runDemo after
 *   orders-db.ts     "orders-prod": embedded PostgreSQL with customers' personal data
 *   shop/            the demo service (1.0.0 healthy, 2.0.0 buggy), real OTel SDK + @sentry/node
 *   load.ts          steady traffic to the shop's proxy
 *   loop.ts          deploy 2.0.0 → verification fails → rollback → verified → incident story
 *   gateway-tour.ts  JIT access, psql through the gateway: masked rows, a blocked DELETE
 *   cli.ts, api.ts   the real `tightloop` CLI and the REST API, as a user would call them
 *   reporter.ts      one timestamped line per step with a console link; steps as JSON lines
 *
 * The demo only drives public surfaces (CLI, REST, psql, HTTP); it never reaches into a
 * pillar. A pillar missing from the build is reported as "not available", never faked.
 */
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { RunningServer } from '../http/server.js';
import { demoApi } from './api.js';
import { cliRunner, stopCommands } from './cli.js';
import { accessTour, addResource } from './gateway-tour.js';
import { LoadGenerator } from './load.js';
import { BAD, GOOD, runLoop, tellIncident, writeRulesYaml } from './loop.js';
import { CUSTOMERS, PRODUCTS, startOrdersDb, type OrdersDb } from './orders-db.js';
import { cliEntry } from './paths.js';
import { freePort } from './ports.js';
import { DemoReporter, type DemoStep } from './reporter.js';
import { around } from './story.js';
import { movedText } from './up.js';

export { DemoReporter } from './reporter.js';
export type { DemoStep, StepStatus } from './reporter.js';
export { LoadGenerator } from './load.js';
export { SERVICE, GOOD, BAD } from './loop.js';
export { stopAllNow } from './orders-db.js';

/** Marks a data directory as the demo's own, so a later `--demo` may wipe it. */
export const DEMO_MARKER = 'demo-steps.jsonl';
export const DEFAULT_DEMO_DIR = './.tightloop-demo';
/** The `tightloop` commands the demo ran, with exit codes (JSON lines). */
export const DEMO_COMMANDS = 'demo-commands.jsonl';

export interface PreparedDemo {
  dataDir: string;
  db: OrdersDb;
  stop(): Promise<void>;
}

export interface DemoOptions {
  rps?: number;
  warmupS?: number;
  /** Preferred port of the shop's proxy (a free one is taken when it is busy). */
  shopPort?: number;
  color?: boolean;
  write?: (text: string) => void;
}

export interface DemoSummary {
  ok: boolean;
  loopMs: number | null;
  incidentId: string | null;
  steps: DemoStep[];
}

export interface DemoRun {
  finished: Promise<DemoSummary>;
  /**
   * Stops the traffic and every wait of the run, which then ends at once (`finished` resolves with
   * what was done so far). The server and PostgreSQL are stopped by their owners.
   */
  stop(): void;
}

/**
 * Makes `dataDir` fresh for the demo: it must not exist, be empty, or be an earlier demo's
 * directory (which is removed). Anything else is refused rather than wiped.
 */
export function freshDemoDir(dataDir: string): void {
  if (!existsSync(dataDir)) return;
  const entries = readdirSync(dataDir);
  if (entries.length === 0) return;
  if (!entries.includes(DEMO_MARKER)) {
    throw new Error(`${dataDir} is not empty and is not a demo directory; pass an empty --data-dir for --demo`);
  }
  rmSync(dataDir, { recursive: true, force: true });
}

/**
 * The one line to copy into another terminal: \`tightloop\` on PATH (this checkout's bin/), the
 * demo's URL, and its admin token read from the file (so the token is not printed again).
 */
export function exportLine(url: string, dataDir: string): string {
  const q = (s: string): string => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
  return `export PATH=${q(dirname(cliEntry()))}:"$PATH" TIGHTLOOP_URL=${q(url)} TIGHTLOOP_TOKEN="$(cat ${q(resolve(dataDir, 'admin.token'))})"`;
}

/** Before the server starts: PostgreSQL with the orders data, and the alert rule in rules.yaml. */
export async function prepareDemo(dataDir: string, signal?: AbortSignal, credentialDir?: string): Promise<PreparedDemo> {
  const { mkdirSync, writeFileSync } = await import('node:fs');
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  writeFileSync(join(dataDir, DEMO_MARKER), '');
  writeRulesYaml(dataDir);
  const db = await startOrdersDb({ credentialDir: credentialDir ?? join(dataDir, 'credentials'), signal });
  return { dataDir, db, stop: () => db.stop() };
}

export function runDemo(server: RunningServer, prepared: PreparedDemo, opts: DemoOptions = {}): DemoRun {
  const reporter = new DemoReporter({ consoleUrl: server.url, write: opts.write, color: opts.color, stepsFile: join(prepared.dataDir, DEMO_MARKER) });
  let load: LoadGenerator | null = null;
  const stopped = new AbortController();
  const finished = (async (): Promise<DemoSummary> => {
    const adminToken = server.adminToken ?? readFileSync(join(prepared.dataDir, 'admin.token'), 'utf8').trim();
    const api = demoApi(server.url, adminToken);
    const cli = cliRunner(server.url, adminToken, reporter, join(prepared.dataDir, DEMO_COMMANDS));
    reporter.banner(`The loop, live: shop ${GOOD} → bad deploy ${BAD} → automatic rollback → verified recovery`);
    reporter.step('demo.ready', `tightloop and orders-prod (PostgreSQL on port ${prepared.db.port}) are up; console ${server.url}/ (log in with the admin token above)`, { link: '/services' });
    reporter.detail(`every \`tightloop\` command below also works in another terminal after this line:\n${exportLine(server.url, prepared.dataDir)}`);

    const tourCtx = { cli, reporter, db: prepared.db, dataDir: prepared.dataDir, apiUrl: server.url, gatewayPort: server.gatewayPort };
    const registered = await addResource(tourCtx);
    let toured = false;
    const tour = async (): Promise<void> => {
      if (toured || !registered) return;
      toured = true;
      await accessTour(tourCtx).catch((err: unknown) => void reporter.step('gateway.error', `access tour failed: ${(err as Error).message}`, { status: 'fail' }));
    };
    const wantShop = opts.shopPort ?? 8080;
    const shopPort = await freePort(wantShop);
    if (wantShop !== 0 && shopPort !== wantShop) reporter.detail(movedText({ what: "the shop's proxy", wanted: wantShop, got: shopPort }));
    const rps = opts.rps ?? 40;
    load = new LoadGenerator({ url: `http://127.0.0.1:${shopPort}`, rps, customers: CUSTOMERS, products: PRODUCTS.length });
    const loopStartMs = Date.now();
    const loop = await runLoop({
      api, cli, reporter, dataDir: prepared.dataDir, db: prepared.db, defaultDsn: server.defaultDsn, shopPort, load,
      rps, warmupS: opts.warmupS ?? 25, duringWarmup: tour, signal: stopped.signal,
    });
    await tour(); // when the loop could not get that far: still show the gateway
    const story = loop.badDeployId === null ? null
      : await tellIncident({ api, reporter, incidentId: loop.incidentId, badStartedAfterMs: loopStartMs, timeoutMs: 90_000, signal: stopped.signal, badStartMs: loop.badStartMs, alertsShown: loop.alerts });

    if (loop.loopMs !== null) {
      reporter.step('loop.closed', `loop closed: bad deploy → verified recovery in ${(loop.loopMs / 1000).toFixed(1)} s, no human in the loop`,
        { link: story === null ? '/deploys' : around(`/incidents/${story.incident.id}`, loop.badStartMs ?? loopStartMs), data: { loopMs: loop.loopMs } });
    }
    const failed = reporter.steps.filter((s) => s.status === 'fail' || s.status === 'unavailable');
    const ok = failed.length === 0 && loop.loopMs !== null;
    reporter.step('demo.done', ok ? 'demo complete: traffic on shop keeps flowing; explore the console, Ctrl-C to stop'
      : `demo ended with ${failed.length} step(s) failed or not available: ${failed.map((s) => s.id).join(', ')}; Ctrl-C to stop`,
      { status: ok ? 'ok' : 'fail', link: '/loop', data: { ok, loopMs: loop.loopMs } });
    return { ok, loopMs: loop.loopMs, incidentId: story?.incident.id ?? loop.incidentId, steps: reporter.steps };
  })().catch((err: unknown) => {
    // Stopped (Ctrl-C) mid-run: the waits ended; what was done so far is the summary.
    if (stopped.signal.aborted) return { ok: false, loopMs: null, incidentId: null, steps: reporter.steps };
    throw err;
  });
  return {
    finished,
    stop() {
      load?.stop();
      stopped.abort();
      stopCommands();
    },
  };
}
