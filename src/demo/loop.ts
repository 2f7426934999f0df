import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { DemoApi } from './api.js';
import type { CliResult, CliRunner } from './cli.js';
import type { LoadGenerator } from './load.js';
import type { OrdersDb } from './orders-db.js';
import { shopEntry } from './paths.js';
import type { DemoReporter } from './reporter.js';
import { alertsFiredSince, around, firedLine, resolvedLine, type AlertSeen } from './story.js';
import { durationText } from '../cli/loop-figures.js';

/**
 * The loop itself: steady traffic on shop 1.0.0, a progressive deploy of 2.0.0 (canary), its
 * verification failing, the automatic rollback to 1.0.0, the rollback's verification passing,
 * and the incident resolving with its story. Progress is read from the REST API (the console's
 * source too); every step is printed when tightloop reports it, never before.
 */

export const SERVICE = 'shop';
export const GOOD = '1.0.0';
export const BAD = '2.0.0';
/**
 * Each verification's limit (services.yaml `verifyMaxDurationS`). The rollback is verified against
 * 1.0.0's own traffic from the warm-up; on a busy machine its latency tail needs most of this.
 */
export const VERIFY_MAX_S = 120;

export interface LoopOptions {
  api: DemoApi;
  cli: CliRunner;
  reporter: DemoReporter;
  dataDir: string;
  db: OrdersDb;
  defaultDsn: string;
  shopPort: number;
  /** Traffic to the shop's proxy; started once 1.0.0 is live. */
  load: LoadGenerator;
  rps: number;
  /** Seconds of steady traffic on 1.0.0 before the bad deploy. */
  warmupS: number;
  /**
   * Runs while 1.0.0 takes steady traffic, before the bad deploy (the demo's access tour): its
   * CPU use then cannot disturb the verifications the loop is timed by.
   */
  duringWarmup?: () => Promise<void>;
  /** Per-phase deadline. */
  phaseTimeoutMs?: number;
  /** Aborted when the demo is stopped (Ctrl-C): every wait ends with an AbortError. */
  signal?: AbortSignal;
}

export interface LoopResult {
  /** Bad deploy started → rollback verified (from the deploy records), or null if it did not close. */
  loopMs: number | null;
  incidentId: string | null;
  badDeployId: string | null;
  rollbackDeployId: string | null;
  /** When the bad deploy started (console links open around it). */
  badStartMs: number | null;
  /** Alerts of the shop that fired after the bad deploy started, as read back from the API. */
  alerts: AlertSeen[];
}

interface DeployOut {
  id: string; service: string; version: string; status: string; source: string; rollbackOf: string | null;
  startedAt: string; decidedAt: string | null; previousVersion: string | null;
}
interface VerificationOut { outcome: string | null; reason: string | null; decidedAt: string | null; evidence: { signal: string; outcome: string; detail?: string }[] }
interface RolloutOut { id: string; deployId: string; service: string; version: string; status: string; reason: string | null; steps: { weight: number; runId: string | null }[]; rollbackDeployId: string | null }
interface IncidentOut {
  id: string; title: string; service: string; status: string; openedAt: string; detectedAt: string; resolvedAt: string | null; firstBadAt: string | null;
  resolution: string | null; alerts: Array<{ id: string; rule: string; state: string; firedAt: string; resolvedAt: string | null }>;
}
interface TimelineOut { at: string; kind: string; title: string; actor: string | null }
interface StoryOut { incident: IncidentOut; timeline: TimelineOut[]; times?: Record<string, number | null> }

/** Waits `ms`; rejects with an AbortError once `signal` is aborted (the demo was stopped). */
const sleep = (ms: number, signal?: AbortSignal): Promise<void> => delay(ms, undefined, { signal });

/** Writes the shop's deploy configuration for the `local` actuator (read at each rollout). */
export function writeServicesYaml(dataDir: string, o: { shopPort: number; databaseUrl: string; dsn: string }): string {
  const q = (s: string): string => JSON.stringify(s);
  const file = join(dataDir, 'services.yaml');
  writeFileSync(file, [
    '# The demo shop, run by the built-in local actuator: one child process per version behind a',
    '# weighted proxy on port ' + String(o.shopPort) + '. `tightloop deploy start` walks the canary steps.',
    'services:',
    '  - name: shop',
    '    environment: production',
    `    port: ${o.shopPort}`,
    '    health: /health',
    `    command: [${q(process.execPath)}, ${q(shopEntry())}]`,
    '    env:',
    '      VERSION: ${VERSION}',
    `      DATABASE_URL: ${q(o.databaseUrl)}`,
    `      SENTRY_DSN: ${q(o.dsn)}`,
    '      SENTRY_RELEASE: ${VERSION}',
    '      SENTRY_ENVIRONMENT: production',
    '    steps: [50, 100]',
    '    rollback: auto',
    `    verifyMaxDurationS: ${VERIFY_MAX_S}`,
    '    startTimeoutS: 120',
    '',
  ].join('\n'));
  return file;
}

/**
 * The alert the demo relies on, in `<data-dir>/rules.yaml` (read at start): the shop's error rate
 * across its versions, strict because 1.0.0 fails no request. 2.0.0 takes half the traffic for
 * only seconds before its verdict fails and it is rolled back: a handful of failed checkouts among
 * a few hundred requests. The 15 s window is judged up to now, so spans that reach tightloop
 * seconds late (a busy machine) still count; the alert resolves once the rollback has left 15 s
 * without a failed request.
 */
export const DEMO_RULE = 'shop error rate';

export function writeRulesYaml(dataDir: string): string {
  const file = join(dataDir, 'rules.yaml');
  writeFileSync(file, [
    'rules:',
    `  - name: ${DEMO_RULE}`,
    '    type: threshold',
    '    select: { service: shop, environment: production }',
    '    by: [service, environment]',
    '    signal: error_rate',
    '    threshold: 0.001',
    '    window: 15s',
    '    min_count: 20',
    '    for: 0s',
    '    keep_firing_for: 5s',
    '    labels: { severity: page }',
    '',
  ].join('\n'));
  return file;
}

/**
 * Polls `check` until it gives a value or the deadline passes (transient API errors are retried).
 * Rejects with an AbortError once `signal` is aborted: a stopped demo stops waiting at once.
 */
async function until<T>(signal: AbortSignal | undefined, timeoutMs: number, check: () => Promise<T | undefined>, everyMs = 250): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    signal?.throwIfAborted();
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch {
      // a transient API error: try again until the deadline
    }
    if (Date.now() > deadline) return undefined;
    await sleep(everyMs, signal);
  }
}

/** The deploy's verification once it has decided (undefined while pending or not started). */
async function verdictOf(api: DemoApi, deployId: string): Promise<VerificationOut | undefined> {
  const v = await api<VerificationOut>(`/api/deploys/${deployId}/verification`);
  return v.status === 200 && typeof v.body.outcome === 'string' ? v.body : undefined;
}

function countsLine(load: LoadGenerator): string {
  const parts = [...load.takeCounts()].sort(([a], [b]) => a.localeCompare(b))
    .map(([v, c]) => `${v}: ${c.requests} req, ${c.errors} errors (${c.requests === 0 ? 0 : Math.round((100 * c.errors) / c.requests)} %)`);
  return parts.length === 0 ? 'no answers yet' : parts.join('; ');
}

export async function runLoop(o: LoopOptions): Promise<LoopResult> {
  const { api, cli, reporter } = o;
  const timeout = o.phaseTimeoutMs ?? 90_000;
  const result: LoopResult = { loopMs: null, incidentId: null, badDeployId: null, rollbackDeployId: null, badStartMs: null, alerts: [] };

  // 1. shop 1.0.0 behind the local actuator's proxy.
  writeServicesYaml(o.dataDir, { shopPort: o.shopPort, databaseUrl: o.db.shopUrl, dsn: o.defaultDsn });
  const actions = await api('/api/actions');
  if (actions.missing) {
    reporter.unavailable('shop.v1.live', 'shop 1.0.0 via the local actuator', 'actions are not in this build');
    return result;
  }
  const v1 = await cli(['action', 'run', 'local-deploy', '--param', `SERVICE=${SERVICE}`, '--param', `VERSION=${GOOD}`, '--param', 'WEIGHT=100', '--wait']);
  if (v1.code !== 0) {
    reporter.step('shop.v1.live', `could not start shop ${GOOD} (exit ${v1.code})`, { status: 'fail' });
    return result;
  }
  const shopUrl = `http://127.0.0.1:${o.shopPort}`;
  reporter.step('shop.v1.live', `shop ${GOOD} is live at ${shopUrl} (a child process behind the weighted proxy)`, { link: `/services?service=${SERVICE}` });

  // 2. steady traffic.
  const load = o.load;
  load.start();
  const seen = await until(o.signal, timeout, async () => {
    const r = await api<{ services: { service: string; count: number }[] }>('/api/services?from=now-1m');
    return r.body.services.find((s) => s.service === SERVICE && s.count > 0);
  });
  if (seen === undefined) {
    reporter.step('traffic.steady', 'no shop traffic reached tightloop', { status: 'fail' });
    return result;
  }
  await Promise.all([sleep(o.warmupS * 1000, o.signal), o.duringWarmup?.()]);
  reporter.step('traffic.steady', `steady traffic, ${o.rps} requests/s: ${countsLine(load)}`, { link: `/services?service=${SERVICE}` });

  // 3. The CI step for the deploy about to go out, then the progressive deploy.
  const start = await api<RolloutOut>('/api/deploys/rollouts', { method: 'GET' });
  if (start.missing) {
    reporter.unavailable('deploy.started', `progressive deploy of ${BAD}`, 'rollouts are not in this build');
    return result;
  }
  const rolloutCli: Promise<CliResult> = cli(['deploy', 'start', '--service', SERVICE, '--version', BAD, '--commit', 'b4d5eed']);
  const rollout = await until(o.signal, timeout, async () => {
    const r = await api<{ rollouts: RolloutOut[] }>('/api/deploys/rollouts');
    return r.body.rollouts.find((x) => x.service === SERVICE && x.version === BAD);
  }, 100);
  if (rollout === undefined) {
    const out = await rolloutCli;
    reporter.step('deploy.started', `deploy of ${BAD} did not start (exit ${out.code}: ${out.stderr.trim()})`, { status: 'fail' });
    return result;
  }
  const bad = (await api<DeployOut>(`/api/deploys/${rollout.deployId}`)).body;
  result.badDeployId = bad.id;
  const badStartMs = Date.parse(bad.startedAt);
  result.badStartMs = badStartMs;
  /** Console links open at the bad deploy's moment: from 2 min before to 3 min after. */
  const at = (path: string): string => around(path, badStartMs);
  const badLink = at(`/deploys/${bad.id}`);
  reporter.step('deploy.started', `deploy ${BAD} started: canary steps ${rollout.steps.map((s) => `${s.weight} %`).join(' → ')}`, { link: badLink, data: { deployId: bad.id } });

  const canary = await until(o.signal, timeout, async () => {
    const r = await api<{ services: { service: string; versions: { version: string; weight: number; state: string }[] }[] }>('/api/local-services');
    const v = r.body.services.find((s) => s.service === SERVICE)?.versions.find((x) => x.version === BAD && x.weight > 0 && x.state === 'running');
    return v;
  });
  if (canary !== undefined) reporter.step('canary.live', `${BAD} is taking ${canary.weight} % of the traffic; verification against ${GOOD} running`, { link: badLink });

  // 4. The verdict, the alert and the incident, as they come.
  let alertShown = false;
  let incidentShown = false;
  const watchSide = async (): Promise<void> => {
    if (!alertShown) {
      const fired = await alertsFiredSince(api, SERVICE, badStartMs - 1000);
      if (fired.length > 0) {
        alertShown = true;
        result.alerts = fired;
        for (const a of fired) reporter.step('alert.fired', firedLine(a), { link: at('/alerts'), data: { alertId: a.id, rule: a.ruleName, value: a.firedValue, firedAt: a.firedAt } });
      }
    }
    if (!incidentShown) {
      const i = await api<{ incidents: IncidentOut[] }>('/api/incidents?limit=10');
      if (i.missing) {
        incidentShown = true;
        reporter.unavailable('incident.opened', 'incident', 'incidents are not in this build');
        return;
      }
      const inc = i.body.incidents?.find((x) => x.service === SERVICE && Date.parse(x.openedAt) >= badStartMs - 1000);
      if (inc !== undefined) {
        incidentShown = true;
        result.incidentId = inc.id;
        reporter.step('incident.opened', `incident opened: ${inc.title}`, { link: at(`/incidents/${inc.id}`), data: { incidentId: inc.id } });
      }
    }
  };

  // The rollout can also end without a verdict (e.g. 2.0.0 never became healthy): say so.
  let endedEarly: RolloutOut | undefined;
  const verdict = await until(o.signal, timeout, async () => {
    await watchSide();
    const v = await verdictOf(api, bad.id);
    if (v !== undefined) return v;
    const r = await api<RolloutOut>(`/api/deploys/rollouts/${rollout.id}`);
    if (r.body.status !== 'running') endedEarly = r.body;
    return endedEarly === undefined ? undefined : null;
  });
  if (verdict === undefined || verdict === null) {
    const why = endedEarly === undefined ? `no verdict within ${timeout / 1000} s` : `the rollout ended ${endedEarly.status} before a verdict: ${endedEarly.reason ?? ''}`;
    reporter.step('verification.failed', `verification of ${BAD} did not run: ${why}`, { status: 'fail', link: badLink });
    return result;
  }
  if (verdict.outcome !== 'fail') {
    reporter.step('verification.failed', `verification of ${BAD} ended ${verdict.outcome}, not fail: ${verdict.reason ?? ''}`, { status: 'fail' });
    return result;
  }
  reporter.step('verification.failed', `verification failed ${((Date.parse(verdict.decidedAt ?? new Date().toISOString()) - badStartMs) / 1000).toFixed(1)} s after the deploy: ${verdict.reason ?? ''}`,
    { link: badLink, data: { deployId: bad.id } });
  for (const e of verdict.evidence.filter((x) => x.outcome === 'fail')) reporter.detail(`${e.signal}: ${e.detail ?? 'fail'}`);

  // 5. Rollback: recorded as its own deploy, then verified.
  const rb = await until(o.signal, timeout, async () => {
    await watchSide();
    const r = await api<{ deploys: DeployOut[] }>(`/api/deploys?service=${SERVICE}&limit=20`);
    return r.body.deploys.find((d) => d.source === 'rollback' && d.rollbackOf === bad.id);
  });
  if (rb === undefined) {
    reporter.step('rollback.started', `no rollback of ${BAD} within ${timeout / 1000} s`, { status: 'fail' });
    return result;
  }
  result.rollbackDeployId = rb.id;
  reporter.step('rollback.started', `automatic rollback: all traffic back on ${GOOD} at once, ${BAD} stopped; the rollback is verified like any deploy`,
    { link: at(`/deploys/${rb.id}`), data: { deployId: rb.id } });
  const rbVerdict = await until(o.signal, Math.max(timeout, VERIFY_MAX_S * 1000 + 15_000), async () => {
    await watchSide();
    return verdictOf(api, rb.id);
  });
  if (rbVerdict?.outcome !== 'pass') {
    reporter.step('rollback.verified', `rollback verification: ${rbVerdict?.outcome ?? 'no verdict in time'}${rbVerdict?.reason == null ? '' : ` (${rbVerdict.reason})`}`, { status: 'fail' });
    return result;
  }
  const recoveredMs = Date.parse(rbVerdict.decidedAt ?? new Date().toISOString());
  result.loopMs = recoveredMs - badStartMs;
  reporter.step('rollback.verified', `rollback verified: ${GOOD} is healthy again (${countsLine(load)})`, { link: at(`/deploys/${rb.id}`), data: { deployId: rb.id } });
  const out = await rolloutCli;
  reporter.detail(`(tightloop deploy start exited ${out.code}: 1 means rolled back, so a CI job running it fails)`);
  return result;
}

/** Waits for the incident to resolve by itself, then prints its story from the API. */
export async function tellIncident(o: {
  api: DemoApi; reporter: DemoReporter; incidentId: string | null; badStartedAfterMs: number; timeoutMs: number; signal?: AbortSignal;
  /** The bad deploy's start (links open around it) and the alerts already told. */
  badStartMs?: number | null; alertsShown?: AlertSeen[];
}): Promise<StoryOut | null> {
  const { api, reporter } = o;
  const at = (path: string): string => around(path, o.badStartMs ?? o.badStartedAfterMs);
  let id = o.incidentId;
  if (id === null) {
    const probe = await api<{ incidents: IncidentOut[] }>('/api/incidents?limit=10');
    if (probe.missing) {
      reporter.unavailable('incident.resolved', 'incident story', 'incidents are not in this build');
      return null;
    }
    const inc = await until(o.signal, o.timeoutMs, async () => {
      const i = await api<{ incidents: IncidentOut[] }>('/api/incidents?limit=10');
      return i.body.incidents.find((x) => x.service === SERVICE && Date.parse(x.openedAt) >= o.badStartedAfterMs - 1000);
    });
    if (inc === undefined) {
      reporter.step('incident.resolved', 'no incident was opened for the bad deploy', { status: 'fail' });
      return null;
    }
    id = inc.id;
    reporter.step('incident.opened', `incident opened: ${inc.title}`, { link: at(`/incidents/${inc.id}`), data: { incidentId: inc.id } });
  }
  const resolved = await until(o.signal, o.timeoutMs, async () => {
    const s = await api<StoryOut>(`/api/incidents/${id}`);
    return s.body.incident.status === 'resolved' ? s.body : undefined;
  }, 500);
  if (resolved === undefined) {
    reporter.step('incident.resolved', `incident ${id} did not resolve within ${o.timeoutMs / 1000} s`, { status: 'fail', link: at(`/incidents/${id}`) });
    return null;
  }
  // An alert that fired after the loop stopped watching is told now, before the resolution.
  const told = new Set((o.alertsShown ?? []).map((a) => a.id));
  for (const a of await alertsFiredSince(api, SERVICE, (o.badStartMs ?? o.badStartedAfterMs) - 1000)) {
    if (!told.has(a.id)) reporter.step('alert.fired', firedLine(a), { link: at('/alerts'), data: { alertId: a.id, rule: a.ruleName, value: a.firedValue, firedAt: a.firedAt } });
  }
  reporter.step('incident.resolved', resolvedLine(resolved), {
    status: resolved.incident.resolution === 'auto' ? 'ok' : 'fail', link: at(`/incidents/${id}`),
    data: { incidentId: id, resolution: resolved.incident.resolution, alerts: resolved.incident.alerts },
  });
  reporter.banner('The story tightloop wrote (GET /api/incidents/' + id + '):');
  const t0 = Date.parse(resolved.timeline[0]?.at ?? resolved.incident.openedAt);
  reporter.detail(resolved.timeline.map((e) => `${e.at.slice(11, 23)}  +${((Date.parse(e.at) - t0) / 1000).toFixed(1).padStart(5)}s  ${e.kind.padEnd(18)} ${e.title}`).join('\n'));
  // Written as `tightloop report`, `incident show` and the console write them: one figure everywhere.
  const sec = (k: string): string => durationText(typeof resolved.times?.[k] === 'number' ? resolved.times[k] ?? null : null);
  reporter.detail(`MTTD ${sec('mttdMs')} (first failed request of ${BAD} → detected), MTTR ${sec('mttrMs')} (→ back to baseline): the figures \`tightloop report\` and the console show`);
  return resolved;
}
