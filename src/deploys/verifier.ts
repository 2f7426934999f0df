/**
 * Verifier: the streaming I/O side of verification. It keeps each service × environment ×
 * version's recent traffic (SecondRing, the pre-deploy baseline), routes committed rollup
 * deltas to the running verifications, and on every tick hands each one a chunk of paired
 * traffic — the candidate's new requests against the baseline's concurrent requests (canary),
 * or, when no other version serves, against the next seconds of the pre-deploy window (replayed
 * in order, about one candidate request per baseline request) — then asks the pure
 * VerificationAnalysis for a verdict. Persistence and events stay with DeployService.
 */
import { AttrReader, MetricFeed } from '../detect/index.js';
import type { MetricBatch, RollupSecond } from '../telemetry/index.js';
import { VerificationAnalysis, type AnalysisVerdict, type VerifyConfig } from './analysis.js';
import type { Deploy, SignalEvidence } from './contract.js';
import { pointSample, type MetricCheck } from './metric-checks.js';
import { addToChunk, chunkOfDelta, emptyChunk, PreDeployReplay, SecondRing, type ArmChunk } from './traffic.js';

export interface RunningVerification {
  id: string;
  deploy: Deploy;
  startedMs: number;
  maxDurationS: number;
  analysis: VerificationAnalysis;
  baselineVersion: string | null;
  /** Requests the baseline arm got from concurrent traffic vs from the pre-deploy ring. */
  concurrentN: number;
  replayN: number;
  /** Pre-deploy requests in the window at the start. */
  windowN: number;
  /** A verdict to report without analysis (e.g. no baseline at all). */
  immediate?: string;
  /** Verifications of this deploy the analysis has run through (rollout steps, holds). */
  steps: number;
  /** What the baseline is, when it is not the plain pre-deploy window (a rollback's own history). */
  baselineNote?: string;
}

/** The deploy a rollback rolls back. */
export interface RolledBack { deployId: string; version: string; startedMs: number }

interface Stream {
  run: RunningVerification;
  startSecond: number;
  cand: ArmChunk;
  base: ArmChunk;
  replay: PreDeployReplay;
  /** Metric check key (metricKey) → index in run.analysis.metrics. */
  metricIdx: Map<string, number>;
  /** A rollback: other versions' traffic (the one it replaces) never enters the baseline. */
  ownHistoryOnly: boolean;
  /**
   * Pre-deploy requests replayed per candidate request: 1, or up to 4 when the window holds that
   * many times the verification's longest duration (plenty of history, few new requests: the
   * conditional tests need no equal arms, and a larger baseline arm decides sooner).
   */
  ratio: number;
}

/** A stream after its verdict, for the deploy's next verification; and a deploy's frozen solo history. */
type Carried = Stream & { atMs: number };
interface Frozen { atMs: number; solo: Map<string, Array<[number, ArmChunk]>> }
const CARRY_TTL_MS = 3_600_000;
const FROZEN_TTL_MS = 6 * 3_600_000;

/** Recent samples of one metric check for one service × environment × version. */
interface MetricRing { seconds: number[]; values: number[] }
const METRIC_RING_MAX = 20_000;
const CHECKS_TTL_MS = 30_000;
const metricKey = (c: MetricCheck): string => JSON.stringify(c);

export interface VerifierOptions {
  verify: Partial<VerifyConfig>;
  /** Seconds of traffic kept per series for pre-deploy baselines. */
  preDeployWindowS: number;
  nowMs: () => number;
  /** Called once per decided verification. */
  onVerdict: (run: RunningVerification, verdict: AnalysisVerdict) => void;
  /** A service × environment × version seen for the first time since start. */
  onNewSeries: (service: string, environment: string, version: string, second: number) => void;
  /** The service's configured metric checks (read again at most every 30 s and at each start). */
  metricChecks?: (service: string) => readonly MetricCheck[];
  /** Reading the checks failed (e.g. a broken services.yaml): the last good list stays. */
  onChecksError?: (err: unknown) => void;
}

const SEP = '\u0001';
const seriesKey = (service: string, environment: string): string => service + SEP + environment;

export class Verifier {
  /** service␁environment → version → ring. */
  private readonly rings = new Map<string, Map<string, SecondRing>>();
  private readonly streams = new Map<string, Stream>();
  /** deploy id → its last stream (pass / inconclusive / superseded), continued by its next verification. */
  private readonly carried = new Map<string, Carried>();
  /** deploy id → every other version's solo seconds when its verification first started. */
  private readonly frozen = new Map<string, Frozen>();
  private lastPrune = 0;
  /** service → its checks (with their keys) and when they were read. */
  private readonly checks = new Map<string, { list: ReadonlyArray<{ check: MetricCheck; key: string }>; atMs: number }>();
  /** service␁environment␁version␁check key → samples. */
  private readonly metricRings = new Map<string, MetricRing>();
  /** Cumulative streams → deltas (detect's helper); and each stream's previous point time. */
  private readonly feed: MetricFeed;
  private readonly lastPointUs = new Map<string, number>();

  constructor(private readonly opts: VerifierOptions) {
    this.feed = new MetricFeed(opts.nowMs() * 1000);
  }

  private checksFor(service: string, fresh = false): ReadonlyArray<{ check: MetricCheck; key: string }> {
    const get = this.opts.metricChecks;
    if (!get) return [];
    const now = this.opts.nowMs();
    const cached = this.checks.get(service);
    if (cached && !fresh && now - cached.atMs < CHECKS_TTL_MS) return cached.list;
    let list = cached?.list ?? [];
    try {
      list = get(service).map((check) => ({ check, key: metricKey(check) }));
    } catch (err) {
      this.opts.onChecksError?.(err);
    }
    this.checks.set(service, { list, atMs: now });
    return list;
  }

  /**
   * Committed metric points: each point of a checked metric becomes one sample per matching
   * check (metric-checks.ts pointSample), kept in the version's ring (pre-deploy baselines) and
   * routed to running verifications of the service: the deploy's version to the candidate,
   * any other version to the baseline.
   */
  onMetrics(b: MetricBatch): void {
    if (!this.opts.metricChecks) return;
    const attrs = new AttrReader(b);
    const byService = new Map<string, ReturnType<Verifier['checksFor']>>();
    for (let i = 0; i < b.length; i++) {
      let checks = byService.get(b.service[i]);
      if (checks === undefined) { checks = this.checksFor(b.service[i]); byService.set(b.service[i], checks); }
      if (checks.length === 0) continue;
      let delta: ReturnType<MetricFeed['delta']> | undefined;
      let intervalS = 0;
      for (const { check, key } of checks) {
        if (check.metric !== b.name[i]) continue;
        const get = attrs.at(i);
        let match = true;
        for (const k in check.attributes) if (get(k) !== check.attributes[k]) { match = false; break; }
        if (!match) continue;
        if (delta === undefined) {
          delta = this.feed.delta(b, i);
          const stream = `${b.name[i]}\u0001${b.resourceAttrs[i]}\u0001${b.attrs[i]}`;
          const prev = this.lastPointUs.get(stream);
          this.lastPointUs.set(stream, b.timeUs[i]);
          const from = b.temporality[i] === 2 && prev !== undefined && prev > b.startTimeUs[i] ? prev : b.startTimeUs[i];
          intervalS = (b.timeUs[i] - from) / 1e6;
        }
        const v = pointSample(check.agg, delta, intervalS);
        if (!Number.isFinite(v)) continue;
        const second = Math.floor(b.timeUs[i] / 1e6);
        const rk = seriesKey(b.service[i], b.environment[i]) + SEP + b.version[i] + SEP + key;
        let ring = this.metricRings.get(rk);
        if (!ring) { ring = { seconds: [], values: [] }; this.metricRings.set(rk, ring); }
        if (ring.seconds.length >= METRIC_RING_MAX) { ring.seconds.shift(); ring.values.shift(); }
        ring.seconds.push(second);
        ring.values.push(v);
        for (const s of this.streams.values()) {
          const dep = s.run.deploy;
          if (dep.service !== b.service[i] || dep.environment !== b.environment[i] || second < s.startSecond) continue;
          if (b.version[i] !== dep.version && s.ownHistoryOnly) continue;
          const idx = s.metricIdx.get(key);
          if (idx !== undefined) s.run.analysis.observeMetric(idx, b.version[i] === dep.version, v, true);
        }
      }
    }
  }

  runningFor(deployId: string): RunningVerification | undefined {
    return this.streams.get(deployId)?.run;
  }

  /** Committed rollup deltas (one per operation × second): rings and running streams. */
  onDeltas(rows: readonly RollupSecond[]): void {
    const chunks = new Array<ArmChunk>(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const d = rows[i];
      const chunk = chunkOfDelta(d);
      chunks[i] = chunk;
      const key = seriesKey(d.service, d.environment);
      let versions = this.rings.get(key);
      if (!versions) { versions = new Map(); this.rings.set(key, versions); }
      let ring = versions.get(d.version);
      if (!ring) {
        ring = new SecondRing();
        versions.set(d.version, ring);
        this.opts.onNewSeries(d.service, d.environment, d.version, Math.floor(d.second / 1e6));
      }
      ring.add(Math.floor(d.second / 1e6), chunk);
    }
    if (this.streams.size === 0) return;
    for (const s of this.streams.values()) {
      const dep = s.run.deploy;
      for (let i = 0; i < rows.length; i++) {
        const d = rows[i];
        if (d.service !== dep.service || d.environment !== dep.environment || d.second < s.startSecond * 1e6) continue;
        if (d.version !== dep.version && s.ownHistoryOnly) continue;
        addToChunk(d.version === dep.version ? s.cand : s.base, chunks[i]);
      }
    }
  }

  /** Environments in which the service has recent traffic. */
  environmentsOf(service: string): string[] {
    const out: string[] = [];
    for (const [key, versions] of this.rings) {
      const [s, env] = key.split(SEP);
      if (s === service && versions.size > 0) out.push(env);
    }
    return out;
  }

  /** The version other than `version` seen last in this service × environment (a previous version). */
  latestOtherVersion(service: string, environment: string, version: string): string | null {
    let best: string | null = null, bestS = -Infinity;
    for (const [v, ring] of this.rings.get(seriesKey(service, environment)) ?? []) {
      if (v !== version && v !== '' && ring.lastSecond > bestS) { best = v; bestS = ring.lastSecond; }
    }
    return best;
  }

  /**
   * Seconds of `version` in which it alone served the service × environment (no other version
   * had a request that second), before `beforeS`, oldest first.
   */
  private soloSeconds(versions: ReadonlyMap<string, SecondRing>, version: string, beforeS: number): Array<[number, ArmChunk]> {
    const ring = versions.get(version);
    if (!ring) return [];
    const out: Array<[number, ArmChunk]> = [];
    for (const [s, chunk] of ring.seconds) {
      if (s >= beforeS || chunk.count === 0) continue;
      let alone = true;
      for (const [v, other] of versions) if (v !== version && (other.seconds.get(s)?.count ?? 0) > 0) { alone = false; break; }
      if (alone) out.push([s, chunk]);
    }
    return out.sort((a, b) => a[0] - b[0]);
  }

  /**
   * Starts analysing `deploy` now (replacing a running verification of it). A deploy verified
   * again (the next rollout step, a hold, a new request) continues its earlier analysis: the
   * fail-side tests are always valid, so carrying them spends α once per deploy; the pass side
   * starts again (each step must show "not worse" with its own traffic).
   * `rolledBack`: for a rollback, the deploy it rolls back (its version and start).
   */
  start(id: string, deploy: Deploy, maxDurationS: number, rolledBack?: RolledBack): RunningVerification {
    const nowMs = this.opts.nowMs();
    const nowS = Math.floor(nowMs / 1000);
    const key = seriesKey(deploy.service, deploy.environment);
    const versions = this.rings.get(key) ?? new Map<string, SecondRing>();
    if (deploy.rollbackOf === null && !this.frozen.has(deploy.id)) {
      // What every other version did alone before this deploy: a later rollback to one of them
      // is compared with it, however long this deploy then served (the rings keep 600 s).
      const solo = new Map<string, Array<[number, ArmChunk]>>();
      for (const v of versions.keys()) if (v !== deploy.version) solo.set(v, this.soloSeconds(versions, v, nowS));
      this.frozen.set(deploy.id, { atMs: nowMs, solo });
    }
    const carried = this.carried.get(deploy.id);
    this.carried.delete(deploy.id);
    if (carried !== undefined && carried.run.immediate === undefined) {
      const run: RunningVerification = { ...carried.run, id, deploy, startedMs: nowMs, maxDurationS, steps: carried.run.steps + 1 };
      run.analysis.nextStep(maxDurationS);
      this.streams.set(deploy.id, { ...carried, run, startSecond: nowS - 2, cand: emptyChunk(), base: emptyChunk() });
      return run;
    }
    let window: ArmChunk[];
    let concurrentRecently = false;
    let baselineNote: string | undefined;
    let immediate: string | undefined;
    let metricBeforeS = nowS - 2;
    if (deploy.rollbackOf !== null) {
      // A rollback restores a version: it is compared with its own behaviour before the bad
      // deploy began (the seconds when it alone served), never with the version it replaces.
      const badVersion = rolledBack?.version ?? deploy.previousVersion;
      const badRing = badVersion === null ? undefined : versions.get(badVersion);
      const cutoffS = Math.min(rolledBack === undefined ? nowS : Math.floor(rolledBack.startedMs / 1000), badRing?.firstSecond ?? Infinity, nowS);
      metricBeforeS = cutoffS;
      const bySecond = new Map<number, ArmChunk>();
      const frozen = rolledBack === undefined ? undefined : this.frozen.get(rolledBack.deployId);
      for (const [s, c] of frozen?.solo.get(deploy.version) ?? []) if (s < cutoffS) bySecond.set(s, c);
      for (const [s, c] of this.soloSeconds(versions, deploy.version, cutoffS)) bySecond.set(s, c);
      const seconds = [...bySecond.entries()].filter(([s]) => s >= cutoffS - this.opts.preDeployWindowS).sort((a, b) => a[0] - b[0]);
      window = seconds.map(([, c]) => c);
      const badName = `${badVersion ?? 'the bad version'}`;
      if (window.length === 0) {
        immediate = `no history: ${deploy.service} ${deploy.version} never served alone in ${deploy.environment} within ${this.opts.preDeployWindowS} s before ${badName} began, so nothing shows what healthy looks like for it (it is never compared with ${badName})`;
      } else {
        baselineNote = `own history: ${deploy.version} serving alone before ${badName} began (${seconds.length} s, ${new Date(seconds[0][0] * 1000).toISOString()} – ${new Date((seconds[seconds.length - 1][0] + 1) * 1000).toISOString()})`;
      }
    } else {
      // Pre-deploy baseline: every other version's seconds of the window, oldest first.
      const bySecond = new Map<number, ArmChunk>();
      for (const [v, ring] of versions) {
        if (v === deploy.version) continue;
        if (ring.lastSecond >= nowS - 10) concurrentRecently = true;
        for (const [s, chunk] of ring.seconds) {
          if (s < nowS - this.opts.preDeployWindowS || s >= nowS) continue;
          let into = bySecond.get(s);
          if (!into) { into = emptyChunk(); bySecond.set(s, into); }
          addToChunk(into, chunk);
        }
      }
      window = [...bySecond.entries()].sort((a, b) => a[0] - b[0]).map(([, c]) => c);
    }
    const replay = new PreDeployReplay(window);
    const reference = new Map<number, number>();
    for (const c of window) for (const [k, n] of c.bins) reference.set(k, (reference.get(k) ?? 0) + n);
    const checks = this.checksFor(deploy.service, true);
    // The window also tells the rate tests how bursty the baseline was before the deploy (ρ). Not
    // for a rollback: its own history is replayed as its baseline arm anyway, and its verdict's
    // timing (the demo, the loop tests) stays exactly as it was.
    const history = deploy.rollbackOf === null ? window : [];
    const analysis = new VerificationAnalysis({ ...this.opts.verify, maxDurationS }, reference, checks.map((c) => c.check), history);
    const metricIdx = new Map<string, number>();
    checks.forEach(({ key: ck }, idx) => {
      metricIdx.set(ck, idx);
      // Pre-deploy metric samples: the other versions' points in the window; a rollback's own
      // points from before the bad deploy began.
      const prefix = key + SEP;
      for (const [rk, ring] of this.metricRings) {
        if (!rk.startsWith(prefix) || !rk.endsWith(SEP + ck)) continue;
        const v = rk.slice(prefix.length, rk.length - ck.length - 1);
        if ((v === deploy.version) !== (deploy.rollbackOf !== null)) continue;
        for (let j = 0; j < ring.seconds.length; j++) {
          const sec = ring.seconds[j];
          if (sec >= metricBeforeS - this.opts.preDeployWindowS && sec < metricBeforeS) analysis.observeMetric(idx, false, ring.values[j], false);
        }
      }
    });
    const run: RunningVerification = {
      id, deploy, startedMs: nowMs, maxDurationS,
      analysis,
      baselineVersion: deploy.rollbackOf !== null ? deploy.version
        : deploy.previousVersion ?? this.latestOtherVersion(deploy.service, deploy.environment, deploy.version),
      concurrentN: 0, replayN: 0, windowN: replay.requests, steps: 1, baselineNote, immediate,
    };
    if (run.immediate === undefined && replay.requests === 0 && !concurrentRecently && run.baselineVersion === null) {
      run.immediate = `no baseline: no other version of ${deploy.service} has traffic in ${deploy.environment}`;
    }
    this.streams.set(deploy.id, { run, startSecond: nowS - 2, cand: emptyChunk(), base: emptyChunk(), replay, metricIdx, ownHistoryOnly: deploy.rollbackOf !== null,
      ratio: Math.max(1, Math.min(4, Math.floor(window.length / maxDurationS))) });
    return run;
  }

  /** Stops a running verification without a verdict (superseded or shutting down). */
  drop(deployId: string): RunningVerification | undefined {
    const s = this.streams.get(deployId);
    this.streams.delete(deployId);
    if (s !== undefined) this.carried.set(deployId, { ...s, atMs: this.opts.nowMs() });
    return s?.run;
  }

  /** Forgets a deploy's analysis (rolled back: it is not verified again). Its frozen history stays for the rollback. */
  forget(deployId: string): void {
    this.carried.delete(deployId);
  }

  /** Feeds each running verification what arrived since the last tick; reports verdicts. */
  tick(): void {
    const nowMs = this.opts.nowMs();
    for (const [deployId, s] of [...this.streams]) {
      const run = s.run;
      let verdict: AnalysisVerdict;
      if (run.immediate !== undefined) {
        verdict = run.analysis.abandon(run.immediate);
      } else {
        const cand = s.cand, base = s.base;
        // No concurrent baseline (a full rollout): the candidate's requests wait until they
        // match a whole pre-deploy second, so each chunk pairs about equal exposures.
        const waitForReplay = base.count === 0 && !s.replay.exhausted && cand.count * s.ratio < s.replay.nextCount;
        if (!waitForReplay) {
          run.concurrentN += base.count;
          const replayed = base.count === 0 && s.replay.requests > 0;
          if (replayed) {
            if (s.replay.exhausted) run.analysis.baselineFixed();
            s.replay.fill(base, cand.count * s.ratio);
            run.replayN = s.replay.served;
          }
          if (cand.count > 0 || base.count > 0) run.analysis.observe(base, cand, replayed);
          s.cand = emptyChunk();
          s.base = emptyChunk();
        }
        verdict = run.analysis.decide((nowMs - run.startedMs) / 1000);
      }
      if (verdict.outcome === 'pending') continue;
      this.streams.delete(deployId);
      // Pass or inconclusive: the next verification of this deploy (a rollout step, a hold)
      // continues these tests. A fail is final.
      if (verdict.outcome !== 'fail' && run.immediate === undefined) this.carried.set(deployId, { ...s, atMs: nowMs });
      this.opts.onVerdict(run, verdict);
    }
    if (nowMs - this.lastPrune > 10_000) {
      this.lastPrune = nowMs;
      const before = Math.floor(nowMs / 1000) - this.opts.preDeployWindowS - 5;
      for (const [key, versions] of this.rings) {
        for (const [v, ring] of versions) {
          ring.prune(before);
          // Keep idle series' rings (empty) for an hour so a version is not "first seen" twice.
          if (ring.seconds.size === 0 && ring.lastSecond < before - 3600) versions.delete(v);
        }
        if (versions.size === 0) this.rings.delete(key);
      }
      for (const [rk, ring] of this.metricRings) {
        let n = 0;
        while (n < ring.seconds.length && ring.seconds[n] < before) n++;
        if (n > 0) { ring.seconds.splice(0, n); ring.values.splice(0, n); }
        if (ring.seconds.length === 0) this.metricRings.delete(rk);
      }
      for (const [id, c] of this.carried) if (c.atMs < nowMs - CARRY_TTL_MS) this.carried.delete(id);
      for (const [id, f] of this.frozen) if (f.atMs < nowMs - FROZEN_TTL_MS) this.frozen.delete(id);
      const staleUs = (nowMs - 3_600_000) * 1000;
      for (const [k, t] of this.lastPointUs) if (t < staleUs) this.lastPointUs.delete(k);
      this.feed.sweep(nowMs * 1000);
    }
  }

  /**
   * New error group first seen in `release` of `service`. The release is the OTel
   * `service.version`, or Sentry's `<package>@<version>` convention.
   */
  newErrorGroup(service: string, release: string, id: string, title: string): void {
    for (const s of this.streams.values()) {
      const d = s.run.deploy;
      const sameRelease = release === d.version || release === `${d.service}@${d.version}`;
      if (sameRelease && (service === '' || d.service === service)) s.run.analysis.newErrorGroup(id, title);
    }
  }

  /**
   * Events of an error group committed in `release` of `service` and `environment` (the
   * new-group rule weighs a new group by its share of the candidate's requests).
   */
  errorGroupEvents(service: string, release: string, environment: string, id: string, count: number): void {
    for (const s of this.streams.values()) {
      const d = s.run.deploy;
      const sameRelease = release === d.version || release === `${d.service}@${d.version}`;
      const sameEnv = environment === '' || environment === d.environment;
      if (sameRelease && sameEnv && (service === '' || d.service === service)) s.run.analysis.errorGroupEvents(id, count);
    }
  }
}

/** Baseline facts appended to the stored evidence. */
export function baselineEvidence(run: RunningVerification): SignalEvidence {
  return {
    signal: 'baseline', outcome: 'pass',
    baseline: { concurrentRequests: run.concurrentN, preDeployRequests: run.replayN, preDeployWindowRequests: run.windowN, verifications: run.steps },
    candidate: {}, stats: {},
    detail: [
      run.baselineNote ?? (run.concurrentN >= run.replayN
        ? `canary: ${run.baselineVersion ?? 'other versions'} serving at the same time`
        : `pre-deploy window of ${run.baselineVersion ?? 'the service'} (${run.windowN} requests)`),
      run.steps > 1 ? `tests carried over ${run.steps} verifications of this deploy (α spent once)` : '',
    ].filter((x) => x !== '').join('; '),
  };
}
