/**
 * VerificationAnalysis: the pure decision code of a deploy verification. It is fed chunks of
 * paired traffic (baseline arm, candidate arm: requests, errors, latency histogram) and outside
 * signals (new error groups), and answers pass / fail / inconclusive / pending with evidence.
 * No I/O and no clock: the caller says how many seconds have elapsed, so the benchmark runs the
 * very same code on simulated traffic in virtual time. README.md explains the method.
 */
import type { SignalEvidence, VerdictOutcome } from './contract.js';
import { MetricCheckTest, type MetricCheck } from './metric-checks.js';
import { NewGroupRule, type NewGroupState } from './new-groups.js';
import { RateTest } from './rate-test.js';
import { TailBands } from './tail-bands.js';
import { clusteredAucSd, mannWhitney, normalUpperQuantile, tUpperQuantile } from './stats.js';
import { type ArmChunk, binsQuantileMs, slowCount, thresholdKey } from './traffic.js';

export interface VerifyConfig {
  /** Undecided at this age → inconclusive. */
  maxDurationS: number;
  /** No verdict (either way) before both arms have this many requests. */
  minSamples: number;
  /** False-fail budget of each statistical test (error rate, latency tail, latency ranks). */
  alpha: number;
  /** False-pass budget of each test (passing a deploy at the margin of "bad"). */
  beta: number;
  /** Error odds ratio (candidate / baseline) that counts as bad: pass rejects ψ ≥ this. */
  errorPassRatio: number;
  /** …or pass when the candidate's error rate is shown below this absolute rate. */
  errorAbsPassRate: number;
  /** Latency tail: requests slower than the baseline's quantile q count as slow. */
  tailQuantile: number;
  /** Slow-request odds ratio that counts as bad. */
  tailPassRatio: number;
  /** Rank test: fail when P(candidate slower) is shown above ½ + this… */
  rankFailMargin: number;
  /** …pass when it is shown below ½ + this. */
  rankPassMargin: number;
  /**
   * Practical significance: latency fails only when the candidate's median or p95 is also at
   * least this much higher (0.15 = 15 %). A shift the tests can prove but nobody would notice
   * (e.g. 20 ms → 21 ms under a busier host) must not roll a version back.
   */
  latencyMinEffect: number;
  /** Rank-test checkpoints at minSamples · 2^j (j < this); alpha is split evenly over them. */
  rankCheckpoints: number;
  /** Baseline requests needed to fix the latency tail threshold. */
  minReferenceSamples: number;
  /** Fail when this many error groups new in the version hit a real share of requests (0: never). */
  newErrorGroupsFailAt: number;
  /**
   * A new error group counts toward `newErrorGroupsFailAt` once its events are shown to exceed
   * this share of the candidate's requests (new-groups.ts; 0: any new group counts at once).
   */
  newErrorGroupMinShare: number;
  /**
   * Once a pre-deploy baseline is used up: checkpoints at candidate requests = window · 2^j
   * (1 ≤ j ≤ this) comparing the candidate's totals with the whole window; alpha split evenly.
   */
  windowCheckpoints: number;
  /**
   * The error test's burst dispersion ρ takes the pre-deploy history's same-second error pairs
   * at this one-sided upper confidence bound (rate-test.ts `historyBoundedRho`): a short window
   * that happened to be calm cannot vouch that errors do not come in bursts. 0: the history's
   * point estimate, weighted by its requests (`pooledRho`, the behaviour before; for comparison).
   */
  historyRhoConfidence: number;
  /**
   * The latency tail's bands test a replayed chunk's candidate against the whole pre-deploy window
   * the thresholds were read from (`RateTest.observeAgainstWindow`: the candidate's share above a
   * threshold is Beta-distributed around the window's, the threshold's sampling error included).
   * false: paired with the replayed seconds by the conditional test, as before (for comparison; it
   * takes the window's pinned count above its own quantile as a binomial draw).
   */
  tailAgainstWindow: boolean;
}

export const DEFAULT_VERIFY_CONFIG: VerifyConfig = {
  maxDurationS: 600, minSamples: 100, alpha: 0.003, beta: 0.05,
  errorPassRatio: 2, errorAbsPassRate: 0.005,
  tailQuantile: 0.95, tailPassRatio: 1.5,
  rankFailMargin: 0.03, rankPassMargin: 0.1, rankCheckpoints: 8, latencyMinEffect: 0.15,
  minReferenceSamples: 200, newErrorGroupsFailAt: 1, newErrorGroupMinShare: 0.002, windowCheckpoints: 4,
  historyRhoConfidence: 0.95, tailAgainstWindow: true,
};

/** Chunks per arm before a rank checkpoint (the clustered variance of few clusters is too noisy). */
const RANK_MIN_CHUNKS = 10;

export interface AnalysisVerdict {
  outcome: VerdictOutcome | 'pending';
  reason: string | null;
  evidence: SignalEvidence[];
}

export class VerificationAnalysis {
  readonly config: VerifyConfig;
  private readonly errors: RateTest;
  private readonly tail: RateTest;
  /** One-sample SPRT on the candidate's error rate: rate ≤ abs/4 vs rate ≥ abs. */
  private absPassLog = 0;
  private absPassed = false;
  private readonly base = new Map<number, number>();
  private readonly cand = new Map<number, number>();
  private tailKey: number | null = null;
  /** The tail test's fail side: the baseline's upper tail in bands (tail-bands.ts), fixed with tailKey. */
  private bands: TailBands | null = null;
  private readonly reference = new Map<number, number>();
  private referenceN = 0;
  private rankCheckpoint = 0;
  private rank = { auc: 0.5, z: 0, checkpoints: 0, lastN: 0, failed: false, passed: false, zCritFail: 0, zCritPass: 0, designEffect: 1 };
  /** Per-chunk latency histograms for the rank test's cluster-robust variance (dropped after its last checkpoint). */
  private chunkBins: { base: Array<Array<[number, number]>>; cand: Array<Array<[number, number]>> } | null = { base: [], cand: [] };
  private readonly newGroups: NewGroupRule;
  /** Fixed-baseline mode (baselineFixed): the window's size and the next checkpoint's exponent. */
  private fixed: { n0: number; next: number } | null = null;
  /** Configured metric checks (metric-checks.ts), in configuration order. */
  readonly metrics: MetricCheckTest[];
  private decided: AnalysisVerdict | null = null;

  /**
   * `reference`: baseline latency histogram from before the start (fixes the tail threshold).
   * `metricChecks`: the service's configured checks; feed them with `observeMetric`.
   * `history`: the baseline's seconds from before the deploy (the chunks `reference` was summed
   * from). They set the rate tests' burst dispersion ρ from the start (rate-test.ts `prior`) —
   * binomial history keeps ρ ≈ 0 instead of the arms' early noise, bursty history makes the
   * tests robust from the first chunk — and never enter a likelihood ratio.
   */
  constructor(config: Partial<VerifyConfig> = {}, reference?: ReadonlyMap<number, number>, metricChecks: readonly MetricCheck[] = [], history: readonly ArmChunk[] = []) {
    this.config = { ...DEFAULT_VERIFY_CONFIG, ...config };
    const c = this.config;
    this.metrics = metricChecks.map((m) => new MetricCheckTest(m, { alpha: c.alpha, beta: c.beta, checkpoints: c.rankCheckpoints }));
    this.errors = new RateTest(this.config.errorPassRatio, this.config.historyRhoConfidence);
    this.tail = new RateTest(this.config.tailPassRatio);
    this.newGroups = new NewGroupRule(c.newErrorGroupMinShare, c.alpha);
    if (reference) for (const [k, c] of reference) this.addReference(k, c);
    this.referenceBeforeStart = this.referenceN > 0;
    this.fixTailThreshold();
    // Thresholds read from the window given: replayed chunks are that window's own seconds.
    this.windowBands = this.bands !== null && this.config.tailAgainstWindow;
    if (this.windowBands && reference) this.bands?.windowReference(reference, this.referenceN);
    this.hasHistory = history.length > 0;
    for (const h of history) {
      this.errors.prior(h.errors, h.count);
      if (this.tailKey !== null) this.tail.prior(slowCount(h.bins, this.tailKey), h.count);
      this.bands?.prior(h.bins, h.count);
    }
  }

  /** The latency reference came from before the start (not from the burn-in of baseline requests). */
  private readonly referenceBeforeStart: boolean;

  /** Pre-deploy history was given: a replayed window's chunks are already in the dispersion prior. */
  private readonly hasHistory: boolean;

  /** The tail bands' thresholds came from the window a replayed chunk is made of (and `tailAgainstWindow`). */
  private readonly windowBands: boolean;

  private addReference(k: number, c: number): void {
    this.reference.set(k, (this.reference.get(k) ?? 0) + c);
    this.referenceN += c;
  }

  private fixTailThreshold(): void {
    if (this.tailKey === null && this.referenceN >= this.config.minReferenceSamples) {
      this.tailKey = thresholdKey(this.reference, this.config.tailQuantile);
      this.bands = TailBands.of((q) => thresholdKey(this.reference, q), this.referenceN, this.config.tailQuantile, this.config.tailPassRatio);
    }
  }

  /** Candidate and baseline requests observed so far. */
  get samples(): { baseline: number; candidate: number } { return { baseline: this.errors.n0, candidate: this.errors.n1 }; }

  /**
   * One chunk of paired traffic (either arm may be empty). `replayed`: the baseline chunk is
   * pre-deploy seconds (a replayed window), already counted in the dispersion prior if given.
   */
  observe(base: ArmChunk, cand: ArmChunk, replayed = false): void {
    if (this.decided) return;
    const seen = replayed && this.hasHistory;
    this.errors.observe(cand.errors, cand.count, base.errors, base.count, seen);
    const { errorAbsPassRate: p } = this.config;
    if (cand.count > 0) {
      // Tempered by the candidate chunk's design effect, as the two-arm test (rate-test.ts).
      const q = p / 4, phi = 1 + (cand.count - 1) * this.errors.rho;
      this.absPassLog += ((cand.count - cand.errors) * Math.log((1 - q) / (1 - p)) + cand.errors * Math.log(q / p)) / phi;
    }
    for (const [k, c] of base.bins) this.base.set(k, (this.base.get(k) ?? 0) + c);
    for (const [k, c] of cand.bins) this.cand.set(k, (this.cand.get(k) ?? 0) + c);
    if (this.chunkBins !== null) {
      if (base.bins.size > 0) this.chunkBins.base.push([...base.bins]);
      if (cand.bins.size > 0) this.chunkBins.cand.push([...cand.bins]);
    }
    if (this.tailKey === null) {
      // Burn-in: the first baseline requests fix the threshold and stay out of the tail test.
      for (const [k, c] of base.bins) this.addReference(k, c);
      this.fixTailThreshold();
    } else {
      this.tail.observe(slowCount(cand.bins, this.tailKey), cand.count, slowCount(base.bins, this.tailKey), base.count, seen);
      // A replayed chunk while the window lasts: the candidate against the whole window (its thresholds' source).
      const againstWindow = replayed && this.windowBands && this.fixed === null && base.count > 0;
      this.bands?.observe(cand.bins, cand.count, base.bins, base.count, seen, againstWindow);
    }
  }

  /**
   * One metric point's sample for check `i` (metric-checks.ts `pointSample`): the candidate's, or
   * the baseline's (`concurrent`: another version serving now; else the pre-deploy window).
   */
  observeMetric(i: number, candidate: boolean, value: number, concurrent = true): void {
    const m = this.metrics[i];
    if (this.decided || m === undefined) return;
    if (candidate) m.addCandidate(value); else m.addBaseline(value, concurrent);
  }

  /**
   * The baseline stopped growing: a full rollout's pre-deploy window is used up. The chunk tests
   * can gather no more evidence (each pre-deploy second is used once), so from now on checkpoints
   * at window · 2, 4, 8, 16 candidate requests compare the candidate's totals with the whole
   * window (errors both ways; latency tail and ranks for a pass only), Bonferroni over the
   * checkpoints. A small window thus
   * stays inconclusive instead of being replayed into false certainty.
   */
  baselineFixed(): void {
    this.fixed ??= { n0: this.errors.n0, next: 1 };
  }

  private windowTest(): void {
    const f = this.fixed, c = this.config;
    if (f === null || f.n0 === 0 || f.next > c.windowCheckpoints || this.errors.n1 < f.n0 * 2 ** f.next) return;
    while (f.next <= c.windowCheckpoints && this.errors.n1 >= f.n0 * 2 ** f.next) f.next++;
    const zFail = normalUpperQuantile(c.alpha / c.windowCheckpoints);
    const zPass = normalUpperQuantile(c.beta / c.windowCheckpoints);
    this.errors.windowCheck(zFail, zPass);
    // Latency here may only pass: against a window from before the deploy it also measures any
    // change in load since then (a process now taking all the traffic is slower), which must not
    // roll a healthy version back. A latency regression has to show in the paired chunks.
    if (this.tailKey !== null && this.tail.n0 >= c.minSamples) this.tail.windowCheck(Infinity, zPass);
    const mw = mannWhitney(this.base, this.cand);
    if (!Number.isFinite(mw.sdAuc) || mw.sdAuc === 0) return;
    // The chunk histograms are gone by now (rank checkpoints done): the last design effect stays.
    const sd = mw.sdAuc * Math.sqrt(this.rank.designEffect);
    this.rank = { ...this.rank, auc: mw.auc, z: (mw.auc - 0.5) / sd, lastN: this.errors.n1 };
    if ((0.5 + c.rankPassMargin - mw.auc) / sd >= zPass) this.rank.passed = true;
  }

  /**
   * The deploy is verified again (the next rollout step, a hold): the same tests go on. The
   * fail side keeps everything — its statistics are always valid, so one test per signal over
   * the whole deploy spends α once however many steps and holds there are. The pass side starts
   * again: each verification must show "not worse" with traffic of its own (a rank or metric test
   * whose checkpoints are used up keeps its pass) — after a pass; after an inconclusive verdict
   * (a hold) it goes on. A fail stays final.
   */
  nextStep(maxDurationS: number): void {
    if (this.decided?.outcome === 'fail') return;
    const passed = this.decided?.outcome === 'pass';
    this.decided = null;
    this.config.maxDurationS = maxDurationS;
    this.steps++;
    // After an inconclusive verdict (a hold at the same weight) the pass side goes on too: the
    // question has not changed, and its statistics stay valid when continued.
    if (!passed) return;
    const c = this.config;
    this.errors.passLog = 0; this.errors.passed = false;
    this.tail.passLog = 0; this.tail.passed = false;
    this.absPassLog = 0; this.absPassed = false;
    if (this.rankCheckpoint < c.rankCheckpoints) this.rank.passed = false;
    for (const m of this.metrics) m.nextStep();
  }

  /** Verifications this analysis has run through (1 + steps and holds). */
  steps = 1;

  /** An error group first seen in the candidate version. */
  newErrorGroup(id: string, title: string): void {
    if (!this.decided) this.newGroups.add(id, title);
  }

  /** `count` more events of an error group in the candidate version (counts only for new groups). */
  errorGroupEvents(id: string, count: number): void {
    if (!this.decided) this.newGroups.addEvents(id, count);
  }

  /** The verdict after `elapsedS` seconds (pending until a test decides or time runs out). */
  decide(elapsedS: number): AnalysisVerdict {
    if (this.decided) return this.decided;
    const c = this.config;
    const failBound = Math.log(1 / c.alpha), passBound = Math.log(1 / c.beta);
    const enough = this.errors.n0 >= c.minSamples && this.errors.n1 >= c.minSamples;
    if (enough) {
      if (this.errors.failLogLr >= failBound) this.errors.failed = true;
      if (this.errors.passLog >= passBound) this.errors.passed = true;
      if (this.absPassLog >= passBound) this.absPassed = true;
      if (this.tailKey !== null && this.tail.n1 >= c.minSamples && this.tail.n0 >= c.minSamples) {
        // The fail side reads the tail in bands (p95–p99, p99–p99.9, above): one α, more information.
        if (this.tailFailLogLr() >= failBound && this.latencyNoticeablyWorse()) this.tail.failed = true;
        if (this.tail.passLog >= passBound) this.tail.passed = true;
      }
      this.rankTest();
      this.windowTest();
    }
    for (const m of this.metrics) m.evaluate();
    const metricsFailed = this.metrics.filter((m) => m.failed);
    this.newGroups.evaluate(this.errors.n1, c.minSamples);
    const frequent = this.newGroups.failed;
    const groupsFailed = c.newErrorGroupsFailAt > 0 && frequent.length >= c.newErrorGroupsFailAt;
    const errorFail = this.errors.failed, latencyFail = this.tail.failed || this.rank.failed;
    let outcome: AnalysisVerdict['outcome'] = 'pending';
    let reason: string | null = null;
    if (errorFail || latencyFail || groupsFailed || metricsFailed.length > 0) {
      outcome = 'fail';
      reason = [
        !errorFail ? '' : this.errors.failedByWindow
          ? `error rate up (odds ratio ${this.errors.oddsRatio().toFixed(2)} against the whole pre-deploy window, z ${this.errors.windowZ.toFixed(2)})`
          : `error rate up (odds ratio ${this.errors.oddsRatio().toFixed(2)}, likelihood ratio ${fmtExp(this.errors.failLogLr)} ≥ ${fmtExp(failBound)})`,
        this.tail.failed ? `latency tail up (slow-request odds ratio ${this.tail.oddsRatio().toFixed(2)}${this.bandsText()})` : '',
        this.rank.failed ? `latency distribution shifted up (P(candidate slower) ${this.rank.auc.toFixed(3)}, z ${this.rank.z.toFixed(2)})` : '',
        groupsFailed ? this.groupsReason(frequent) : '',
        ...metricsFailed.map((m) => {
          const e = m.evidence('fail');
          return `metric ${m.name} worse (${m.check.agg} median ${fmtNum(e.baseline.median)} → ${fmtNum(e.candidate.median)}, P(candidate worse beyond ${m.check.tolerance * 100} %) ${e.stats.probCandidateWorse.toFixed(3)})`;
        }),
      ].filter((s) => s !== '').join('; ');
    } else if ((this.errors.passed || this.absPassed) && this.tail.passed && this.rank.passed && this.metrics.every((m) => m.passed || !m.live)) {
      // A metric check with data in both arms must decide; one the versions do not report cannot block.
      outcome = 'pass';
      const checked = this.metrics.filter((m) => m.passed).map((m) => m.name);
      const rare = this.newGroups.rare.length;
      reason = `error rate${checked.length > 0 ? `, latency and metric ${checked.join(', ')}` : ' and latency'} shown not worse than the baseline`
        + (rare > 0 ? `; ${rare} new error group(s) below the new-group share rule (${pctOf(c.newErrorGroupMinShare)} of requests), not failed` : '');
    } else if (elapsedS >= c.maxDurationS) {
      outcome = 'inconclusive';
      reason = !enough
        ? `not enough traffic in ${c.maxDurationS} s (baseline ${this.errors.n0}, candidate ${this.errors.n1} requests; need ${c.minSamples} each)`
        : `no decision within ${c.maxDurationS} s (${this.undecided().join(', ')} undecided)`;
    }
    const verdict = { outcome, reason, evidence: this.evidence(outcome) };
    if (outcome !== 'pending') this.decided = verdict;
    return verdict;
  }

  /** The evidence so far, without deciding (for reads while the verification runs). */
  peek(): AnalysisVerdict {
    return this.decided ?? { outcome: 'pending', reason: null, evidence: this.evidence('pending') };
  }

  /** Ends the analysis now as inconclusive (no baseline, superseded, stopped). */
  abandon(reason: string): AnalysisVerdict {
    this.decided ??= { outcome: 'inconclusive', reason, evidence: this.evidence('inconclusive') };
    return this.decided;
  }

  private undecided(): string[] {
    const out: string[] = [];
    if (!this.errors.passed && !this.absPassed) out.push('error rate');
    if (!this.tail.passed) out.push(this.tailKey === null ? 'latency tail (no baseline threshold)' : 'latency tail');
    if (!this.rank.passed) out.push('latency ranks');
    for (const m of this.metrics) {
      const r = m.pendingReason();
      if (r !== null) out.push(r);
    }
    return out;
  }

  /** The fail reason of the new-group rule: which rule, which group, what share. */
  private groupsReason(frequent: NewGroupState[]): string {
    const c = this.config, n = this.errors.n1;
    const g = frequent[0];
    const share = c.newErrorGroupMinShare > 0
      ? `: ${g.events} event(s) in ${n} requests (${pctOf(g.events / Math.max(n, 1))}), shown above the new-group share ${pctOf(c.newErrorGroupMinShare)}`
      : ' (new-group share rule off: any new group fails)';
    return `new error group rule: "${g.title}" new in this version${share}${frequent.length > 1 ? ` (+${frequent.length - 1} more)` : ''}`;
  }

  /** The tail test's fail statistic: the bands' product when the threshold is fixed, else the slow count's. */
  private tailFailLogLr(): number {
    return this.bands?.failLogLr ?? this.tail.failLogLr;
  }

  /** "; in bands above the baseline's p99.9 / p99 / p95: odds ratios" for a tail fail's reason. */
  private bandsText(): string {
    const b = this.bands?.bandOddsRatios() ?? [];
    if (b.length < 2) return '';
    return `; in bands above the baseline's ${b.map((x) => `p${fmtQ(x.aboveQuantile)}`).join(' / ')}: ${b.map((x) => x.oddsRatio.toFixed(2)).join(' / ')}`;
  }

  /**
   * The candidate's median or p95 is at least `latencyMinEffect` above the baseline's. The
   * baseline's quantiles are read from its concurrent requests and its pre-deploy reference
   * together: a p95 of the first few hundred concurrent requests alone is often 15–20 % off by
   * chance, and a baseline arm that happened to be fast then made an ordinary candidate look
   * "noticeably slower" (in bursty traffic, most of the latency tail's early false fails).
   */
  private latencyNoticeablyWorse(): boolean {
    const f = 1 + this.config.latencyMinEffect;
    let base: ReadonlyMap<number, number> = this.base;
    if (this.referenceBeforeStart && this.referenceN > 0) {
      const pooled = new Map(this.reference);
      for (const [k, c] of this.base) pooled.set(k, (pooled.get(k) ?? 0) + c);
      base = pooled;
    }
    return binsQuantileMs(this.cand, 0.5) >= f * binsQuantileMs(base, 0.5)
      || binsQuantileMs(this.cand, 0.95) >= f * binsQuantileMs(base, 0.95);
  }

  /** Mann-Whitney at checkpoints minSamples·2^j; alpha (and beta) split evenly (Bonferroni). */
  private rankTest(): void {
    const c = this.config;
    const n = Math.min(this.errors.n0, this.errors.n1);
    if (this.rankCheckpoint >= c.rankCheckpoints || n < c.minSamples * 2 ** this.rankCheckpoint) return;
    // The clustered variance needs clusters: a checkpoint waits for RANK_MIN_CHUNKS chunks per arm.
    const chunks = this.chunkBins ?? { base: [], cand: [] };
    if (this.chunkBins !== null && Math.min(chunks.base.length, chunks.cand.length) < RANK_MIN_CHUNKS) return;
    while (this.rankCheckpoint < c.rankCheckpoints && n >= c.minSamples * 2 ** this.rankCheckpoint) this.rankCheckpoint++;
    const mw = mannWhitney(this.base, this.cand);
    if (!Number.isFinite(mw.sdAuc) || mw.sdAuc === 0) return;
    // Slow seconds move a chunk's requests together: the larger of the independent-request and
    // the chunk-clustered standard deviation (the former when requests are independent).
    const sdCluster = clusteredAucSd(this.base, this.cand, chunks.base, chunks.cand, mw.auc);
    const sd = Math.max(mw.sdAuc, sdCluster);
    // The clustered z is read against Student's t with (fewer arm's chunks − 1) degrees of freedom.
    const tFail = tUpperQuantile(c.alpha / c.rankCheckpoints, Math.min(chunks.base.length, chunks.cand.length) - 1);
    if (this.rankCheckpoint >= c.rankCheckpoints) this.chunkBins = null;
    const zFail = normalUpperQuantile(c.alpha / c.rankCheckpoints);
    const zPass = normalUpperQuantile(c.beta / c.rankCheckpoints);
    const z = (mw.auc - 0.5) / sd;
    this.rank = {
      ...this.rank, auc: mw.auc, z, checkpoints: this.rankCheckpoint, lastN: n, zCritFail: zFail, zCritPass: zPass,
      designEffect: (sd / mw.sdAuc) ** 2,
    };
    const excess = mw.auc - 0.5 - c.rankFailMargin;
    if (excess / mw.sdAuc >= zFail && excess / sdCluster >= tFail && this.latencyNoticeablyWorse()) this.rank.failed = true;
    if ((0.5 + c.rankPassMargin - mw.auc) / sd >= zPass) this.rank.passed = true;
  }

  private evidence(overall: AnalysisVerdict['outcome']): SignalEvidence[] {
    const c = this.config;
    const failBound = Math.log(1 / c.alpha), passBound = Math.log(1 / c.beta);
    const settle = (failed: boolean, passed: boolean): SignalEvidence['outcome'] =>
      failed ? 'fail' : passed ? 'pass' : overall === 'pending' ? 'pending' : 'inconclusive';
    const e = this.errors, t = this.tail;
    const rate = (x: number, n: number): number => (n === 0 ? 0 : x / n);
    const lat = (bins: Map<number, number>, slow: RateTest, baseline: boolean): Record<string, number> => ({
      requests: baseline ? e.n0 : e.n1,
      p50Ms: binsQuantileMs(bins, 0.5), p95Ms: binsQuantileMs(bins, 0.95), p99Ms: binsQuantileMs(bins, 0.99),
      slowRate: baseline ? rate(slow.e0, slow.n0) : rate(slow.e1, slow.n1),
    });
    const out: SignalEvidence[] = [
      {
        signal: 'error_rate',
        outcome: settle(e.failed, e.passed || this.absPassed),
        baseline: { requests: e.n0, errors: e.e0, rate: rate(e.e0, e.n0) },
        candidate: { requests: e.n1, errors: e.e1, rate: rate(e.e1, e.n1) },
        stats: {
          oddsRatio: e.oddsRatio(), failLogLr: e.failLogLr, failThreshold: failBound,
          alwaysValidP: Math.min(1, Math.exp(-e.maxFailLog)),
          passLogLr: e.passLog, absPassLogLr: this.absPassLog, passThreshold: passBound,
          passOddsRatio: c.errorPassRatio, absPassRate: c.errorAbsPassRate,
          dispersionRho: e.rho, maxDesignEffect: e.maxDesignEffect, dispersionPriorRequests: e.history.n,
          ...(this.fixed === null ? {} : { windowZ: e.windowZ, windowCheckpoints: this.fixed.next - 1 }),
        },
        detail: 'mixture SPRT on the error odds ratio (conditional on each chunk\'s errors, each chunk\'s evidence divided by its design effect for bursts); pass: SPRT against the bad odds ratio or the absolute rate',
      },
      {
        signal: 'latency',
        outcome: settle(t.failed || this.rank.failed, t.passed && this.rank.passed),
        baseline: lat(this.base, t, true),
        candidate: lat(this.cand, t, false),
        stats: {
          tailThresholdMs: this.tailKey === null ? -1 : binsQuantileMs(new Map([[this.tailKey, 1]]), 0.5),
          slowOddsRatio: t.oddsRatio(), tailFailLogLr: this.tailFailLogLr(), tailPassLogLr: t.passLog,
          tailAlwaysValidP: Math.min(1, Math.exp(-(this.bands?.maxFailLog ?? t.maxFailLog))), failThreshold: failBound, passThreshold: passBound,
          tailBands: this.bands?.levels.length ?? 0, tailBandInflation: this.bands?.inflation ?? 1,
          ...Object.fromEntries((this.bands?.bandOddsRatios() ?? []).map((b) => [`bandOddsRatioAboveP${fmtQ(b.aboveQuantile)}`, b.oddsRatio])),
          tailDispersionRho: t.rho, tailMaxDesignEffect: t.maxDesignEffect, rankDesignEffect: this.rank.designEffect,
          probCandidateSlower: this.rank.auc, rankZ: this.rank.z, rankCheckpoints: this.rank.checkpoints,
          rankZCritFail: this.rank.zCritFail, rankZCritPass: this.rank.zCritPass,
          ...(this.fixed === null ? {} : { tailWindowZ: t.windowZ }),
        },
        detail: `slow = above the baseline p${Math.round(c.tailQuantile * 100)} (mixture SPRT on the slow odds ratio); Mann-Whitney at checkpoints with alpha split over ${c.rankCheckpoints}`,
      },
      {
        signal: 'new_error_groups',
        outcome: c.newErrorGroupsFailAt > 0 && this.newGroups.failed.length >= c.newErrorGroupsFailAt ? 'fail' : overall === 'pending' ? 'pending' : 'pass',
        baseline: {},
        candidate: { newGroups: this.newGroups.groups.size, frequentNewGroups: this.newGroups.failed.length, requests: e.n1 },
        stats: { failAt: c.newErrorGroupsFailAt, minShare: c.newErrorGroupMinShare, failThreshold: failBound },
        detail: [...this.newGroups.groups.values()].slice(0, 10)
          .map((g) => `${g.id}: ${g.title} (${g.events} event(s) in ${e.n1} requests${g.failed ? `, share shown above ${pctOf(c.newErrorGroupMinShare)}` : ''})`).join('\n') || undefined,
      },
    ];
    for (const m of this.metrics) out.push(m.evidence(overall));
    return out;
  }
}

/** 0.999 → "99.9", 0.95 → "95". */
function fmtQ(q: number): string {
  return String(Number((q * 100).toPrecision(4)));
}

function pctOf(x: number): string {
  return `${Number((x * 100).toPrecision(2))} %`;
}

function fmtNum(v: number): string {
  return Math.abs(v) >= 1000 || v === Math.round(v) ? String(Math.round(v * 100) / 100) : v.toPrecision(3);
}

function fmtExp(log: number): string {
  return Math.exp(log) >= 1e6 ? Math.exp(log).toExponential(1) : Math.exp(log).toFixed(1);
}
