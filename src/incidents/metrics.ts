/**
 * Loop metrics: how fast the loop closes, per incident (MTTD, MTTA, MTTR) and per change (the
 * DORA keys). Pure functions over incident and deploy facts, so every figure is checked against
 * hand-computed fixtures.
 *
 * Definitions (times in ms; a metric's population is what *starts* in [from, to)):
 * - MTTD: first bad signal → detection (the first alert fired or failed verdict).
 * - MTTA: detection → acknowledged.
 * - MTTR: first bad signal → recovery (signal back to baseline; the resolution time when the
 *   signal never showed a recovery).
 * - Deployment frequency: deploy records (rollbacks included: they are deployments) per day and
 *   per week of the period.
 * - Lead time for changes: commit time → deploy finished, for deploys that carry both.
 * - Change fail rate: deploys that failed verification, were rolled back or are the suspect of an
 *   incident, over all deploys.
 * - Failed-deployment recovery time: the failed deploy's start → the earliest of the next passing
 *   deploy's verdict (same service and environment) and the recovery of an incident it caused.
 * - Deployment rework rate: rollbacks plus deploys made while an incident of the same service
 *   and environment was open, over all deploys.
 * Medians and p90 interpolate linearly between order statistics (like quantile_cont).
 */
import type { Deploy } from '../deploys/contract.js';

export type DeployFacts = Pick<Deploy, 'id' | 'service' | 'environment' | 'status' | 'rollbackOf' | 'source' | 'commitTime' | 'startedAt' | 'finishedAt' | 'decidedAt'>;

export interface IncidentFacts {
  id: string;
  service: string;
  environment: string;
  /** Epoch ms. */
  firstBadAt: number | null;
  detectedAt: number;
  acknowledgedAt: number | null;
  recoveredAt: number | null;
  resolvedAt: number | null;
  suspectDeployId: string | null;
}

export interface Stat {
  count: number;
  medianMs: number | null;
  p90Ms: number | null;
}

export interface IncidentTimes {
  id: string;
  service: string;
  mttdMs: number | null;
  mttaMs: number | null;
  mttrMs: number | null;
}

export interface WeekTrend {
  /** Monday 00:00 UTC, ISO 8601. */
  weekStart: string;
  deployments: number;
  changeFailRate: number | null;
  leadTimeMedianMs: number | null;
  incidents: number;
  mttdMedianMs: number | null;
  mttrMedianMs: number | null;
}

export interface LoopMetrics {
  from: string;
  to: string;
  service: string | null;
  incidents: { count: number; each: IncidentTimes[]; mttd: Stat; mtta: Stat; mttr: Stat };
  dora: {
    deployments: number;
    deploymentFrequency: { perDay: number; perWeek: number };
    leadTime: Stat;
    failedDeployments: number;
    changeFailRate: number | null;
    failedDeploymentRecovery: Stat & { unrecovered: number };
    reworkDeployments: number;
    reworkRate: number | null;
  };
  weeks: WeekTrend[];
}

const DAY_MS = 86_400_000;
const WEEK_MS = 7 * DAY_MS;

/** Linear interpolation between order statistics; null for no values. */
export function quantile(values: readonly number[], q: number): number | null {
  if (values.length === 0) return null;
  const xs = [...values].sort((a, b) => a - b);
  const pos = (xs.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo);
}

export function stat(values: readonly number[]): Stat {
  return { count: values.length, medianMs: quantile(values, 0.5), p90Ms: quantile(values, 0.9) };
}

const t = (iso: string | null): number | null => (iso === null ? null : Date.parse(iso));
const nonNull = (xs: ReadonlyArray<number | null>): number[] => xs.filter((x): x is number => x !== null);

export function incidentTimes(i: IncidentFacts): IncidentTimes {
  const start = i.firstBadAt;
  const recovered = i.recoveredAt ?? i.resolvedAt;
  return {
    id: i.id,
    service: i.service,
    mttdMs: start === null ? null : Math.max(0, i.detectedAt - start),
    mttaMs: i.acknowledgedAt === null ? null : Math.max(0, i.acknowledgedAt - i.detectedAt),
    mttrMs: recovered === null ? null : Math.max(0, recovered - (start ?? i.detectedAt)),
  };
}

const isRollback = (d: DeployFacts): boolean => d.rollbackOf !== null || d.source === 'rollback';

/** Monday 00:00 UTC of the week holding `ms`. */
export function weekStart(ms: number): number {
  const day = Math.floor(ms / DAY_MS);
  // 1970-01-01 was a Thursday: day 0 → weekday 3 counting from Monday.
  return (day - ((day + 3) % 7)) * DAY_MS;
}

interface Judged {
  deploy: DeployFacts;
  start: number;
  failed: boolean;
  rework: boolean;
  leadTime: number | null;
  recovery: number | null;
}

function groupBy<T>(xs: readonly T[], key: (x: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const x of xs) {
    const k = key(x);
    const list = m.get(k);
    if (list === undefined) m.set(k, [x]); else list.push(x);
  }
  return m;
}

/**
 * Passing deploys of one service × environment by start, with the earliest verdict among each
 * one and all later ones: "the next passing deploy after t" is one binary search.
 */
interface PassIndex { starts: number[]; earliestFrom: number[] }

function passIndex(deploys: DeployFacts[]): PassIndex {
  const xs = deploys.map((n) => ({ start: Date.parse(n.startedAt), end: t(n.decidedAt) ?? t(n.finishedAt) ?? Date.parse(n.startedAt) }))
    .sort((a, b) => a.start - b.start);
  const earliestFrom = new Array<number>(xs.length);
  let min = Infinity;
  for (let i = xs.length - 1; i >= 0; i--) { min = Math.min(min, xs[i].end); earliestFrom[i] = min; }
  return { starts: xs.map((x) => x.start), earliestFrom };
}

/** The earliest verdict of a passing deploy that started after `start`, or null. */
function nextPass(ix: PassIndex | undefined, start: number): number | null {
  if (ix === undefined) return null;
  let lo = 0, hi = ix.starts.length;
  while (lo < hi) { const mid = (lo + hi) >> 1; if (ix.starts[mid] <= start) lo = mid + 1; else hi = mid; }
  return lo < ix.starts.length ? ix.earliestFrom[lo] : null;
}

const keyOf = (x: { service: string; environment: string }): string => `${x.service}\0${x.environment}`;

/** Every deploy of the population with what the metrics need to know about it. */
function judge(population: DeployFacts[], all: DeployFacts[], incidents: IncidentFacts[]): Judged[] {
  const rolledBack = new Set(all.filter(isRollback).map((d) => d.rollbackOf).filter((x): x is string => x !== null));
  const bySuspect = groupBy(incidents.filter((i) => i.suspectDeployId !== null), (i) => i.suspectDeployId ?? '');
  const byKey = groupBy(incidents, keyOf);
  const passes = new Map([...groupBy(all.filter((n) => n.status === 'passed'), keyOf)].map(([k, v]) => [k, passIndex(v)]));
  return population.map((d) => {
    const start = Date.parse(d.startedAt);
    const caused = bySuspect.get(d.id) ?? [];
    const failed = d.status === 'failed' || d.status === 'rolled_back' || rolledBack.has(d.id) || caused.length > 0;
    const rework = isRollback(d) || (byKey.get(keyOf(d)) ?? []).some((i) => start >= i.detectedAt && (i.resolvedAt === null || start < i.resolvedAt));
    const commit = t(d.commitTime), finished = t(d.finishedAt);
    const leadTime = commit !== null && finished !== null ? Math.max(0, finished - commit) : null;
    let recovery: number | null = null;
    if (failed) {
      const ends: number[] = [];
      const next = nextPass(passes.get(keyOf(d)), start);
      if (next !== null) ends.push(next);
      for (const i of caused) {
        const r = i.recoveredAt ?? i.resolvedAt;
        if (r !== null) ends.push(r);
      }
      if (ends.length > 0) recovery = Math.max(0, Math.min(...ends) - start);
    }
    return { deploy: d, start, failed, rework, leadTime, recovery };
  });
}

export interface LoopMetricsInput {
  fromMs: number;
  toMs: number;
  service?: string;
  incidents: IncidentFacts[];
  /** Deploys from `fromMs` on (later ones are read for recoveries, not counted). */
  deploys: DeployFacts[];
}

export function loopMetrics(input: LoopMetricsInput): LoopMetrics {
  const { fromMs, toMs } = input;
  const svc = input.service;
  const inRange = (ms: number): boolean => ms >= fromMs && ms < toMs;
  const allDeploys = svc === undefined ? input.deploys : input.deploys.filter((d) => d.service === svc);
  const incidents = svc === undefined ? input.incidents : input.incidents.filter((i) => i.service === svc);
  const population = allDeploys.filter((d) => inRange(Date.parse(d.startedAt)));
  const judged = judge(population, allDeploys, incidents);
  const counted = incidents.filter((i) => inRange(i.firstBadAt ?? i.detectedAt));
  const times = counted.map(incidentTimes);

  const days = (toMs - fromMs) / DAY_MS;
  const failed = judged.filter((j) => j.failed);
  const recoveries = failed.map((j) => j.recovery);
  const rework = judged.filter((j) => j.rework).length;

  const weeks: WeekTrend[] = [];
  for (let w = weekStart(fromMs); w < toMs; w += WEEK_MS) {
    const inWeek = (ms: number): boolean => ms >= Math.max(w, fromMs) && ms < Math.min(w + WEEK_MS, toMs);
    const js = judged.filter((j) => inWeek(j.start));
    const is = counted.filter((i) => inWeek(i.firstBadAt ?? i.detectedAt)).map(incidentTimes);
    weeks.push({
      weekStart: new Date(w).toISOString(),
      deployments: js.length,
      changeFailRate: js.length === 0 ? null : js.filter((j) => j.failed).length / js.length,
      leadTimeMedianMs: quantile(nonNull(js.map((j) => j.leadTime)), 0.5),
      incidents: is.length,
      mttdMedianMs: quantile(nonNull(is.map((i) => i.mttdMs)), 0.5),
      mttrMedianMs: quantile(nonNull(is.map((i) => i.mttrMs)), 0.5),
    });
  }

  return {
    from: new Date(fromMs).toISOString(),
    to: new Date(toMs).toISOString(),
    service: svc ?? null,
    incidents: {
      count: counted.length,
      each: times,
      mttd: stat(nonNull(times.map((x) => x.mttdMs))),
      mtta: stat(nonNull(times.map((x) => x.mttaMs))),
      mttr: stat(nonNull(times.map((x) => x.mttrMs))),
    },
    dora: {
      deployments: judged.length,
      deploymentFrequency: { perDay: days > 0 ? judged.length / days : 0, perWeek: days > 0 ? (judged.length / days) * 7 : 0 },
      leadTime: stat(nonNull(judged.map((j) => j.leadTime))),
      failedDeployments: failed.length,
      changeFailRate: judged.length === 0 ? null : failed.length / judged.length,
      failedDeploymentRecovery: { ...stat(nonNull(recoveries)), unrecovered: recoveries.filter((r) => r === null).length },
      reworkDeployments: rework,
      reworkRate: judged.length === 0 ? null : rework / judged.length,
    },
    weeks,
  };
}
