/**
 * The two-arm rate test of a verification (errors, slow requests) and the overdispersion it is
 * made robust to. Requests are not independent: errors and slow requests come in bursts (a bad
 * second on one instance, a retry storm, a GC pause), so one arm's count in a chunk varies more
 * than a binomial's. The chunk likelihood ratios below assume binomial arms; under bursts they
 * would count each burst as strong evidence. Each chunk's log likelihood ratio is therefore
 * divided by the chunk's design effect φ = 1 + (n − 1)·ρ (the variance inflation of a
 * beta-binomial count of n requests with intra-chunk correlation ρ), with ρ estimated from both
 * arms' chunk-to-chunk variation around their own rates. README.md gives the argument.
 */
import { betaPredictiveLogLrs, logMeanExp, nchLogLikelihoodRatios } from './stats.js';

/** Alternatives of the fail-side mixture (odds ratios), equally weighted. */
export const FAIL_GRID = [1.25, 1.5, 2, 3, 5, 10, 25] as const;

/**
 * One arm's chunks of a binomial count, summarised for the method-of-moments estimate of the
 * intra-chunk correlation: Pearson's X² of the chunk counts around the arm's own rate (so a
 * regression — a constant shift between the arms — does not read as dispersion).
 */
export class ArmDispersion {
  events = 0;
  n = 0;
  chunks = 0;
  private sumE2OverN = 0;
  private sumNm1 = 0;
  private sumN2 = 0;
  /** Σ e(e − 1)/2: pairs of events in the same chunk, and Σ n(n − 1)/2: pairs of requests. */
  private eventPairs = 0;
  private requestPairs = 0;

  add(events: number, n: number): void {
    if (n <= 0) return;
    this.events += events; this.n += n; this.chunks++;
    this.sumE2OverN += (events * events) / n;
    this.sumNm1 += n - 1;
    this.sumN2 += n * n;
    this.eventPairs += (events * (events - 1)) / 2;
    this.requestPairs += (n * (n - 1)) / 2;
  }

  /**
   * The same-chunk event pairs, what they would be without dispersion, and what one unit of ρ
   * adds: with rate p and intra-chunk correlation ρ, E[e(e − 1)/2] = n(n − 1)/2 · p·(p + ρ(1 − p)),
   * so E[pairs] = p²·S + ρ·p(1 − p)·S (S the request pairs), p read as the arm's own rate. The
   * last term, `info`, grows with the arm's events: an arm with few events says little about ρ.
   */
  pairMoments(): { pairs: number; nullPairs: number; info: number } {
    const p = this.n > 0 ? this.events / this.n : 0;
    if (!(p > 0 && p < 1)) return { pairs: 0, nullPairs: 0, info: 0 };
    return { pairs: this.eventPairs, nullPairs: p * p * this.requestPairs, info: p * (1 - p) * this.requestPairs };
  }

  /** Excess of X² over its degrees of freedom, and Σ(n − 1): E[X² − df] ≈ ρ·Σ(n − 1). */
  moments(): { excess: number; weight: number } {
    const p = this.events / this.n;
    if (this.chunks < 2 || !(p > 0 && p < 1)) return { excess: 0, weight: 0 }; // no information
    const x2 = (this.sumE2OverN - p * this.events) / (p * (1 - p));
    return { excess: x2 - (this.chunks - 1), weight: this.sumNm1 };
  }

  /** Variance inflation of this arm's total under correlation ρ: 1 + ρ·(Σn²/Σn − 1). */
  totalDesignEffect(rho: number): number {
    return this.n === 0 ? 1 : 1 + rho * (this.sumN2 / this.n - 1);
  }
}

/**
 * Intra-chunk correlation of two arms pooled, in [0, 1]. Each arm's excess counts from 0 up: the
 * arm that has not had its bursts yet (X² below its degrees of freedom) must not cancel the
 * other's, which would leave the test trusting bursts early (the bias is the conservative way).
 */
export function pooledRho(...arms: ArmDispersion[]): number {
  let excess = 0, w = 0;
  for (const arm of arms) {
    const m = arm.moments();
    excess += Math.max(0, m.excess);
    w += m.weight;
  }
  return w <= 0 ? 0 : Math.min(1, excess / w);
}

/** The λ with P(Poisson(λ) ≤ x) = 1 − confidence: the one-sided upper confidence bound of a Poisson mean (x = 0: −ln(1 − confidence)). */
export function poissonUpper(x: number, confidence: number): number {
  const tail = 1 - confidence;
  const cdf = (lambda: number): number => {
    let term = Math.exp(-lambda), sum = term;
    for (let k = 1; k <= x; k++) { term *= lambda / k; sum += term; }
    return sum;
  };
  let lo = x, hi = x + 10 + 10 * Math.sqrt(x + 1);
  for (let i = 0; i < 80; i++) { const mid = (lo + hi) / 2; if (cdf(mid) > tail) lo = mid; else hi = mid; }
  return hi;
}

/**
 * Intra-chunk correlation from the same-chunk event pairs of the arms and the pre-deploy history,
 * in [0, 1]: (excess pairs) / (pairs one unit of ρ adds), pooled over the sources, so each weighs
 * by its events (its information about ρ), not by its requests. The history enters with the
 * one-sided upper bound of its pair count (Poisson, at `confidence`) in place of the count: a short window that happened to hold few events — a calm minute of bursty traffic —
 * cannot vouch that they do not cluster, and its bound says how little it rules out. Each arm's
 * excess counts from 0 up, as in `pooledRho`. README.md (test 1, bursts) gives the argument.
 */
export function historyBoundedRho(confidence: number, history: ArmDispersion, ...arms: ArmDispersion[]): number {
  let excess = 0, info = 0;
  const h = history.pairMoments();
  if (h.info > 0) {
    excess += poissonUpper(Math.round(h.pairs), confidence) - h.nullPairs;
    info += h.info;
  }
  for (const arm of arms) {
    const m = arm.pairMoments();
    excess += Math.max(0, m.pairs - m.nullPairs);
    info += m.info;
  }
  return info <= 0 ? 0 : Math.min(1, Math.max(0, excess / info));
}

/** The design effect of one two-arm chunk: the weighted mean of the arms' 1 + (n − 1)ρ. */
export function chunkDesignEffect(n1: number, n0: number, rho: number): number {
  const n = n0 + n1;
  return n === 0 ? 1 : (n0 * (1 + Math.max(0, n1 - 1) * rho) + n1 * (1 + Math.max(0, n0 - 1) * rho)) / n;
}

/**
 * A two-sided sequential test on a two-arm binomial stream, chunk by chunk:
 * fail side: mixture over FAIL_GRID of Π LR(ψ vs 1)^(1/φ), Ville: P₁(sup ≥ 1/α) ≤ α;
 * pass side: Π LR(1 vs ψ_bad)^(1/φ), a supermartingale for every ψ ≥ ψ_bad (monotone ratio).
 * φ: the chunk's design effect from the dispersion seen so far (this chunk included, so a burst
 * damps its own evidence); φ = 1 for binomial traffic, where this is exactly the old test.
 */
export class RateTest {
  private readonly failLog = new Float64Array(FAIL_GRID.length);
  private readonly psis: number[];
  private readonly tmp: number[];
  readonly cand = new ArmDispersion();
  readonly base = new ArmDispersion();
  /**
   * The baseline's own seconds from before the deploy (`prior`): what its dispersion was before
   * the candidate existed, so ρ is known from the first chunk and is not learned from a
   * regression's own noise. Only ρ uses them, never the likelihood ratios.
   */
  readonly history = new ArmDispersion();
  passLog = 0;
  maxFailLog = -Infinity;
  n0 = 0; n1 = 0; e0 = 0; e1 = 0;
  /** Intra-chunk correlation used for the last chunk, and the largest design effect applied. */
  rho = 0;
  maxDesignEffect = 1;
  failed = false;
  passed = false;
  /** Set when the fixed-window test (not the chunk SPRT) failed it; its last z (log odds ratio / SE). */
  failedByWindow = false;
  windowZ = 0;

  /**
   * `historyConfidence` > 0: ρ from `historyBoundedRho` at that confidence (the error test: a
   * short window's calm must not vouch that its events do not cluster); 0: `pooledRho` (the tail
   * bands, whose top band's events are too rare for a bound from pairs to leave it any power).
   */
  constructor(readonly passRatio: number, private readonly historyConfidence = 0) {
    this.psis = [...FAIL_GRID, passRatio];
    this.tmp = new Array<number>(this.psis.length).fill(0);
  }

  /**
   * The reference window this rate's threshold was read from (`windowReference`): its events and
   * requests. Set, a replayed chunk is tested against the whole window (`observeAgainstWindow`)
   * instead of being paired with the replayed seconds. `since*`: the draws seen after the window
   * (every candidate chunk, every concurrent baseline chunk), which sharpen what it says of the rate.
   */
  private window: { events: number; n: number } | null = null;
  private sinceEvents = 0;
  private sinceN = 0;

  /** The window the threshold came from: `events` of its `n` requests are above it (tail-bands.ts). */
  windowReference(events: number, n: number): void {
    this.window = { events, n };
  }

  get hasWindow(): boolean { return this.window !== null; }

  /** One pre-deploy second of the baseline (events of n): dispersion evidence only. */
  prior(events: number, n: number): void {
    this.history.add(events, n);
  }

  /**
   * One chunk. `baseSeenBefore`: the baseline chunk is made of pre-deploy seconds already given
   * to `prior` (a replayed window), so its dispersion is not counted twice. `extraPhi`: a further
   * variance inflation the caller knows of (the tail bands' correlation across levels).
   */
  observe(e1: number, n1: number, e0: number, n0: number, baseSeenBefore = false, extraPhi = 1): void {
    this.n0 += n0; this.n1 += n1; this.e0 += e0; this.e1 += e1;
    this.cand.add(e1, n1);
    if (!baseSeenBefore) this.base.add(e0, n0);
    this.rho = this.historyConfidence > 0
      ? historyBoundedRho(this.historyConfidence, this.history, this.cand, this.base)
      : pooledRho(this.cand, this.base, this.history);
    const phi = chunkDesignEffect(n1, n0, this.rho) * extraPhi;
    if (phi > this.maxDesignEffect) this.maxDesignEffect = phi;
    nchLogLikelihoodRatios(e1, e0 + e1, n1, n0, this.psis, this.tmp);
    for (let i = 0; i < FAIL_GRID.length; i++) this.failLog[i] += this.tmp[i] / phi;
    this.passLog -= this.tmp[FAIL_GRID.length] / phi;
    const m = logMeanExp(this.failLog);
    if (m > this.maxFailLog) this.maxFailLog = m;
    if (this.window !== null) {
      // Draws after the window, at their effective size: they narrow the rate's Beta for the next replayed chunk.
      const p1 = 1 + Math.max(0, n1 - 1) * this.rho, p0 = 1 + Math.max(0, n0 - 1) * this.rho;
      this.sinceEvents += e1 / p1; this.sinceN += n1 / p1;
      if (!baseSeenBefore) { this.sinceEvents += e0 / p0; this.sinceN += n0 / p0; }
    }
  }

  /**
   * One candidate chunk against the whole reference window (fail side only), when the baseline arm
   * is that window replayed: the threshold was read from those very seconds, so their count above
   * it is pinned (≈ the quantile's share, by construction) while the candidate's true share above
   * it carries the threshold's sampling error, and the paired conditional test, which takes both
   * arms as binomial draws of one rate, does not hold — least where the window holds few requests
   * above (README.md, latency tail). Here the candidate's rate p is Beta(above + 1, below) — the law
   * of the probability above an order statistic of the window, whatever the latency distribution —
   * shrunk by the window's design effect (bursty seconds say less) and sharpened by the draws seen
   * since; the ratio (stats.ts `betaPredictiveLogLrs`) has mean 1 under "the candidate's latency
   * distribution is the window's", and is tempered by the chunk's design effect as `observe` does.
   * `e0`, `n0` (the replayed seconds) go into the totals shown as evidence and, unless the prior
   * had them (`baseSeenBefore`), into the dispersion estimate — never into the likelihood ratio.
   */
  observeAgainstWindow(e1: number, n1: number, e0: number, n0: number, baseSeenBefore: boolean, extraPhi = 1): void {
    const w = this.window;
    if (w === null) throw new Error('observeAgainstWindow without a window reference');
    this.n0 += n0; this.n1 += n1; this.e0 += e0; this.e1 += e1;
    this.cand.add(e1, n1);
    // Not in the prior (a rollback's own history): the replayed seconds still tell how bursty the window is.
    if (!baseSeenBefore) this.base.add(e0, n0);
    this.rho = pooledRho(this.cand, this.base, this.history);
    const phiCand = 1 + Math.max(0, n1 - 1) * this.rho;
    const phi = phiCand * extraPhi;
    if (phi > this.maxDesignEffect) this.maxDesignEffect = phi;
    // The window's own design effect: its seconds as the prior had them, else (a rollback, no prior) as replayed so far.
    const src = this.history.n > 0 ? this.history : this.base;
    const phiWindow = src.n > 0 ? src.totalDesignEffect(this.rho) : 1;
    const a = (w.events + 1) / phiWindow + this.sinceEvents;
    const b = (w.n - w.events) / phiWindow + (this.sinceN - this.sinceEvents);
    betaPredictiveLogLrs(e1, n1, a, Math.max(b, 1e-9), FAIL_GRID, this.tmp);
    for (let i = 0; i < FAIL_GRID.length; i++) this.failLog[i] += this.tmp[i] / phi;
    const m = logMeanExp(this.failLog);
    if (m > this.maxFailLog) this.maxFailLog = m;
    this.sinceEvents += e1 / phiCand; this.sinceN += n1 / phiCand;
  }

  get failLogLr(): number { return logMeanExp(this.failLog); }

  /** Odds ratio estimate (with ½ added to every cell so it stays finite). */
  oddsRatio(): number {
    return ((this.e1 + 0.5) / (this.n1 - this.e1 + 0.5)) / ((this.e0 + 0.5) / (this.n0 - this.e0 + 0.5));
  }

  /**
   * One checkpoint of the fixed-baseline test on the totals: the log odds ratio (½ added to each
   * cell) against its standard error, inflated by the arms' design effect; fail when its lower
   * bound clears 0, pass when its upper bound stays under log(passRatio), each at the
   * checkpoint's normal critical value.
   */
  windowCheck(zFail: number, zPass: number): void {
    const { e0, n0, e1, n1 } = this;
    const log = Math.log(this.oddsRatio());
    const deff = Math.max(this.cand.totalDesignEffect(this.rho), this.base.totalDesignEffect(this.rho));
    const se = Math.sqrt(deff * (1 / (e1 + 0.5) + 1 / (n1 - e1 + 0.5) + 1 / (e0 + 0.5) + 1 / (n0 - e0 + 0.5)));
    this.windowZ = log / se;
    if (!this.failed && log / se >= zFail) { this.failed = true; this.failedByWindow = true; }
    if (!this.passed && (Math.log(this.passRatio) - log) / se >= zPass) this.passed = true;
  }
}
