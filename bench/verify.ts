/**
 * `npm run bench -- verify [--healthy 2000] [--bursty 500] [--bad 150] [--full 200] [--loop 100] [--rps 20] [--window 10,60] [--canary 1] [--compare 1] [--seed 1]
 *   [--only healthy,err5,tail50] [--window 0 (none)] [--any-test 1] [--frontier-alpha 0.001,0.003,0.01] [--frontier-rps 20,50,100] [--frontier-bad 100] [--frontier-healthy 2000]
 *   [--before healthy,bursty,lat50,tail50 | none]`
 *
 * The production decision code (src/deploys/analysis.ts, the class the server runs) on simulated
 * canary traffic in virtual time: each virtual second both arms get `rps` requests (error
 * Bernoulli, latency log-normal, median 50 ms, σ 0.5) and the analysis decides after each second.
 * The latency tail threshold and the burst dispersion prior come from `--history` (300) s of
 * pre-deploy baseline traffic, as in the server (its window).
 * Scenarios: healthy (identical arms), errors 1 % → 5 %, errors 1 % → 20 %, latency ×1.5
 * (p95 +50 %) and a tail-only regression (8 % of requests ×2.5: p95 +24 %, p99 +44 %, median +5 %).
 *
 * Every scenario runs twice: as a canary (concurrent baseline) and as a full rollout against a
 * `--window`-second pre-deploy window, replayed and then compared whole as the server does.
 *
 * `--canary 0` skips the canary mode (only the full rollouts of `--window`).
 *
 * `--before`: in the full-rollout modes these scenarios also run the latency tail's bands as they
 * were — paired with the replayed seconds of the window their thresholds were read from
 * (`tailAgainstWindow: false`) — on the very same traffic, printed beneath as `before` (RESULT keys
 * `before_…`). Each false fail prints the error test's ρ then and the simulation's true ρ, and for
 * a tail fail the window, both arms' requests, the bands' statistic against its threshold and each
 * band's counts.
 *
 * Then healthy deploys with the pass side switched off, watched every second for the whole max
 * duration: the false-fail rate under continuous monitoring.
 *
 * Also: bursty healthy traffic on both versions (errors in bursts, the same 1 % on average, and
 * slow seconds), a healthy candidate that logs one new error group in 5 000 requests, a new group
 * on 2 % of requests (bad), and — through the server's streaming Verifier on rollup deltas — a
 * rollback whose target is bad too, and healthy multi-step rollouts (bench/_verify-loop.ts).
 * False-fail rates come with their one-sided 95 % upper confidence bound (Clopper-Pearson);
 * `false_fail_upper95` pools every healthy deploy of every healthy scenario and mode.
 *
 * The bound on any test (`--any-test 0` skips it): the Neyman-Pearson power of 1 % → 5 % errors
 * at 30 s against the least favourable common rate (exact; no valid test, sequential or not, is
 * more powerful, so none has a p95 under `anytest_err5_p95_floor_s`), and the power at 60 s of a
 * fixed-sample test that knows the tail-only alternative (3 and 14 bands, simulated).
 *
 * The frontier (`--frontier-*`; 0 runs skip it): at each α and traffic (rps per version), the p95
 * time to fail 1 % → 5 % errors and the tail-only regression, of the test that knows the true
 * alternative (bench/_verify-oracle.ts; for the tail, read in the analysis's bands) next to ours;
 * and per α the false-fail upper bound of ours on bursty healthy canaries. RESULT keys
 * `frontier_alpha<α>_rps<rps>_{oracle_err5,err5,oracle_tail50,tail50}_p95` and
 * `frontier_alpha<α>_bursty_false_fail_upper95`.
 *
 * Prints per-scenario outcome counts and decision times (seconds of traffic), then
 * `RESULT verify bad_detect_s_p50=… bad_detect_s_p95=… false_fail_rate=… …`, then one line per
 * goal (`ok` / `FAIL`); a missed goal exits 1. Goals (canary): 1 % → 20 % errors detected p95
 * ≤ 10 s, 1 % → 5 % p95 ≤ 30 s, tail-only p95 ≤ 60 s; ≥ 2 000 healthy deploys pooled with a
 * false-fail upper bound ≤ 1 %; no bad rollback passes.
 */
import { DEFAULT_VERIFY_CONFIG, VerificationAnalysis } from '../src/deploys/analysis.js';
import { coarseKeyOfMs, emptyChunk, PreDeployReplay, type ArmChunk } from '../src/deploys/traffic.js';
import { badRollback, multiStep } from './_verify-loop.js';
import { anyTestErr5, fixedSampleTailPower, oracleErr5, oracleTailBands, oracleTailP95 } from './_verify-oracle.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? def : Number(process.argv[i + 1]);
}
const HEALTHY = arg('healthy', 2000);
const LOOP_N = arg('loop', 100);
const FULL = arg('full', 200);
const BAD = arg('bad', 150);
/** Bursty healthy canaries (`--bursty`; the full-rollout modes run half as many). */
const BURSTY_N = arg('bursty', Math.round(HEALTHY / 4));
const RPS = arg('rps', 20);
/** Seconds of pre-deploy window for the full-rollout scenarios (replayed as the server does). */
const WINDOWS = (process.argv.includes('--window') ? process.argv[process.argv.indexOf('--window') + 1] : '10,60').split(',').map(Number).filter((w) => w > 0);
/** `--only err5,tail50`: run only these scenarios (keys of `scenarios`), for short runs while iterating. */
const ONLY = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1].split(',') : null;
let seed = arg('seed', 1) >>> 0;
const list = (name: string, def: string): number[] =>
  (process.argv.includes(`--${name}`) ? process.argv[process.argv.indexOf(`--${name}`) + 1] : def).split(',').map(Number);
/** The frontier: α values and traffic (rps per version) to measure at; bad runs per cell; bursty healthy canaries per α (0 skips). */
const FRONTIER_ALPHAS = list('frontier-alpha', '0.001,0.003,0.01');
const FRONTIER_RPS = list('frontier-rps', '20,50,100');
const FRONTIER_BAD = arg('frontier-bad', 100);
const FRONTIER_HEALTHY = arg('frontier-healthy', 2000);

/** mulberry32: a small seeded generator, so runs are reproducible. */
function rand(): number {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
function gauss(): number {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

/**
 * `burstShare` > 0: errors come in bursts — a second is a burst with this probability (rate
 * errorRate / burstShare), else clean. `slowShare` > 0: a second is slow (every request ×1.5,
 * a GC pause or a noisy neighbour) with this probability. Each arm draws its own seconds.
 */
interface Arm { errorRate: number; latencyScale: number; tailShare: number; tailScale: number; burstShare?: number; slowShare?: number }
const HEALTHY_ARM: Arm = { errorRate: 0.01, latencyScale: 1, tailShare: 0, tailScale: 1 };

function second(arm: Arm, rps = RPS): ArmChunk {
  const c = emptyChunk();
  const b = arm.burstShare ?? 0;
  const rate = b > 0 ? (rand() < b ? arm.errorRate / b : 0) : arm.errorRate;
  const slow = (arm.slowShare ?? 0) > 0 && rand() < (arm.slowShare ?? 0) ? 1.5 : 1;
  for (let i = 0; i < rps; i++) {
    c.count++;
    if (rand() < rate) c.errors++;
    let ms = 50 * Math.exp(0.5 * gauss()) * arm.latencyScale * slow;
    if (arm.tailShare > 0 && rand() < arm.tailShare) ms *= arm.tailScale;
    const k = coarseKeyOfMs(ms);
    c.bins.set(k, (c.bins.get(k) ?? 0) + 1);
  }
  return c;
}

/** Seconds of baseline history before a canary (`--history`; the server's rings keep up to 600). */
const HISTORY_S = arg('history', 300);
/** The baseline before a canary: its tail threshold and dispersion prior, as the server's ring window. */
function history(arm: Arm, rps = RPS): ArmChunk[] {
  return Array.from({ length: HISTORY_S }, () => second(arm, rps));
}

/**
 * `--compare 0` skips it: the canary scenarios run again with `prior = false`, the analysis as it
 * was before the dispersion prior (ρ learned from the arms' own chunks only), side by side.
 */
const COMPARE = arg('compare', 1) !== 0;
/**
 * `--before healthy,bursty,lat50,tail50` (the default; `--before none` skips): in the full-rollout
 * modes these scenarios also run the tail bands paired with the replayed window (as before), on the
 * very same traffic. (The canary's chunks are never replayed: the same test there.)
 */
const BEFORE = (process.argv.includes('--before') ? process.argv[process.argv.indexOf('--before') + 1] : 'healthy,bursty,lat50,tail50').split(',');
/** `--canary 0`: only the full-rollout modes. */
const CANARY = arg('canary', 1) !== 0;

/** The true intra-second correlation of an arm's error counts: bursts make the rate r/b in a share b of seconds. */
function trueErrorRho(arm: Arm): number {
  const b = arm.burstShare ?? 0;
  return b > 0 ? (arm.errorRate * (1 / b - 1)) / (1 - arm.errorRate) : 0;
}
/** `--any-test 0` skips the bound on any test (Neyman-Pearson at the goals' times, ≈ 20 s of CPU). */
const ANY_TEST = arg('any-test', 1) !== 0;

/** A new error group logged by the candidate: once per `every` requests (the first at request 1). */
interface NewGroup { every: number }

interface Run { outcome: string; atS: number; reason: string | null; rho: number; tail?: string; before?: Run }
/**
 * `neverPass`: the pass side is switched off, so the fail side watches all of the max duration.
 * `windowS` > 0: a full rollout, the baseline is a `windowS`-second pre-deploy window replayed
 * by the server's PreDeployReplay, then compared whole (baselineFixed); else a canary.
 * `before`: a second analysis with the tail bands paired with the replayed window as they were
 * (`tailAgainstWindow: false`) watches the very same traffic; its verdict is `Run.before`.
 */
function deploy(cand: Arm, neverPass = false, windowS = 0, baseArm: Arm = HEALTHY_ARM, group?: NewGroup, prior = true, at: { rps?: number; alpha?: number } = {}, before = false): Run {
  const rps = at.rps ?? RPS;
  const window = windowS > 0 ? Array.from({ length: windowS }, () => second(baseArm, rps)) : [];
  const pre = windowS > 0 ? window : history(baseArm, rps);
  const ref = new Map<number, number>();
  for (const c of pre) for (const [k, n] of c.bins) ref.set(k, (ref.get(k) ?? 0) + n);
  const replay = new PreDeployReplay(window);
  // As the server: the pre-deploy seconds are the dispersion prior (prior = false: as before).
  const config = { ...(neverPass ? { beta: 1e-300 } : {}), ...(at.alpha === undefined ? {} : { alpha: at.alpha }) };
  const analyses = [new VerificationAnalysis(config, ref, [], prior ? pre : [])];
  if (before) analyses.push(new VerificationAnalysis({ ...config, tailAgainstWindow: false }, ref, [], prior ? pre : []));
  const runs: Array<Run | null> = analyses.map(() => null);
  let requests = 0, logged = 0;
  for (let t = 1; ; t++) {
    const base = windowS > 0 ? emptyChunk() : second(baseArm, rps);
    const c = second(cand, rps);
    const live = analyses.filter((_, i) => runs[i] === null);
    if (group !== undefined) {
      requests += c.count;
      for (; logged < Math.ceil(requests / group.every); logged++) {
        for (const a of live) {
          if (logged === 0) a.newErrorGroup('g1', 'TypeError: cannot read properties of undefined');
          a.errorGroupEvents('g1', 1);
        }
      }
    }
    if (windowS > 0) {
      // As the server's Verifier: whole pre-deploy seconds, each once; then the fixed-window test.
      if (replay.exhausted) for (const a of live) a.baselineFixed();
      replay.fill(base, c.count);
    }
    analyses.forEach((a, i) => {
      if (runs[i] !== null) return;
      a.observe(base, c, windowS > 0);
      const v = a.decide(t);
      const rho = v.evidence.find((e) => e.signal === 'error_rate')?.stats.dispersionRho ?? 0;
      if (v.outcome !== 'pending') runs[i] = { outcome: v.outcome, atS: t, reason: v.reason, rho, ...(v.outcome === 'fail' ? { tail: tailAtFail(v, windowS) } : {}) };
    });
    if (runs.every((r) => r !== null)) return { ...runs[0], ...(before ? { before: runs[1] } : {}) };
  }
}

/** A fail's latency evidence: the window, both arms' requests, the tail statistic against its threshold, the bands. */
function tailAtFail(v: ReturnType<VerificationAnalysis['decide']>, windowS: number): string {
  const e = v.evidence.find((x) => x.signal === 'latency');
  if (e === undefined) return '';
  const st = e.stats, f = (x: number | undefined): string => (x ?? NaN).toFixed(2);
  const bands = Object.entries(st).filter(([k]) => k.startsWith('bandOddsRatioAbove')).map(([k, x]) => `${k.slice(18)} ${f(x)}`).join(', ');
  return `window ${windowS} s, requests base ${e.baseline.requests} cand ${e.candidate.requests}, tail log LR ${f(st.tailFailLogLr)} ≥ ${f(st.failThreshold)}, `
    + `p95 ${f(e.baseline.p95Ms)} → ${f(e.candidate.p95Ms)} ms, p50 ${f(e.baseline.p50Ms)} → ${f(e.candidate.p50Ms)} ms, band odds ratios ${bands}, inflation ${f(st.tailBandInflation)}, tail ρ ${(st.tailDispersionRho ?? 0).toFixed(4)}`;
}

/** The rules named in a fail verdict's reason ("error rate up (…); latency tail up (…)"). */
function ruleOf(reason: string | null): string[] {
  const rules: Array<[RegExp, string]> = [[/error rate up/, 'error rate'], [/latency tail up/, 'latency tail'], [/latency distribution shifted/, 'latency ranks'], [/new error group rule/, 'new error group'], [/^metric |; metric /, 'metric check']];
  const hit = rules.filter(([re]) => re.test(reason ?? '')).map(([, name]) => name);
  return hit.length > 0 ? hit : ['other'];
}

function pct(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
}

/** One-sided 95 % upper confidence bound of a binomial rate (Clopper-Pearson), x events in n. */
function upper95(x: number, n: number): number {
  if (x >= n) return 1;
  let lo = x / n, hi = 1;
  for (let it = 0; it < 60; it++) {
    const p = (lo + hi) / 2;
    // P(X ≤ x; n, p), summed in logs.
    let cdf = 0, logTerm = n * Math.log(1 - p);
    for (let k = 0; k <= x; k++) {
      cdf += Math.exp(logTerm);
      logTerm += Math.log((n - k) / (k + 1)) + Math.log(p / (1 - p));
    }
    if (cdf > 0.05) lo = p; else hi = p;
  }
  return hi;
}

const BURSTY: Arm = { ...HEALTHY_ARM, burstShare: 0.1, slowShare: 0.05 };
const ERR5: Arm = { ...HEALTHY_ARM, errorRate: 0.05 };
const TAIL50: Arm = { ...HEALTHY_ARM, tailShare: 0.08, tailScale: 2.5 };
/**
 * `base`: the baseline's arm (default HEALTHY_ARM; healthy scenarios: the same as the candidate).
 * `windowN`: deploys in the full-rollout modes (they run to 600 s when inconclusive: costly).
 */
const scenarios: Array<{ key: string; label: string; arm: Arm; n: number; windowN?: number; bad: boolean; base?: Arm; group?: NewGroup }> = [
  { key: 'healthy', label: 'healthy (1 % errors, same latency)', arm: HEALTHY_ARM, n: HEALTHY, windowN: Math.round(HEALTHY / 4), bad: false },
  { key: 'bursty', label: 'healthy, bursty: both versions 10 % of seconds at 10 % errors, 5 % of seconds ×1.5', arm: BURSTY, base: BURSTY, n: BURSTY_N, windowN: Math.round(BURSTY_N / 2), bad: false },
  { key: 'raregroup', label: 'healthy, one new error group in 5 000 requests', arm: HEALTHY_ARM, n: Math.round(HEALTHY / 4), windowN: Math.round(HEALTHY / 8), bad: false, group: { every: 5000 } },
  { key: 'newgroup', label: 'new error group on 2 % of requests (error rate 1 %)', arm: HEALTHY_ARM, n: BAD, bad: true, group: { every: 50 } },
  { key: 'err5', label: 'errors 1 % → 5 %', arm: ERR5, n: BAD, bad: true },
  { key: 'err20', label: 'errors 1 % → 20 %', arm: { ...HEALTHY_ARM, errorRate: 0.2 }, n: BAD, bad: true },
  { key: 'lat50', label: 'latency ×1.5 (p95 +50 %)', arm: { ...HEALTHY_ARM, latencyScale: 1.5 }, n: BAD, bad: true },
  { key: 'tail50', label: 'tail only: 8 % of requests ×2.5 (p95 +24 %, p99 +44 %, p50 +5 %)', arm: TAIL50, n: BAD, bad: true },
];

const t0 = process.hrtime.bigint();
const keys: string[] = [];
const badTimes: number[] = [];
let falseFails = 0;
/** Every healthy deploy of every healthy scenario and mode: [deploys, false fails]. */
const pooled = { n: 0, fails: 0 };
const goals: Array<{ name: string; ok: boolean; detail: string }> = [];
const goal = (name: string, value: number, limit: number): void => {
  goals.push({ name, ok: value <= limit, detail: `${value} ≤ ${limit}` });
};
process.stdout.write(`verify: ${RPS} rps per version, max ${DEFAULT_VERIFY_CONFIG.maxDurationS} s, alpha ${DEFAULT_VERIFY_CONFIG.alpha} per test, min ${DEFAULT_VERIFY_CONFIG.minSamples} requests per arm\n`);
for (const windowS of [...(CANARY ? [0] : []), ...WINDOWS]) {
  const mode = windowS === 0 ? 'canary' : `full rollout against a ${windowS} s pre-deploy window`;
  const pre = windowS === 0 ? '' : `predeploy${windowS}_`;
  process.stdout.write(` ${mode}\n`);
  for (const sc of scenarios.filter((x) => ONLY === null || ONLY.includes(x.key))) {
    const n = windowS > 0 ? sc.windowN ?? sc.n : sc.n;
    const withBefore = BEFORE.includes(sc.key) && windowS > 0;
    const runs = Array.from({ length: n }, () => deploy(sc.arm, false, windowS, sc.base, sc.group, true, {}, withBefore));
    const summary = (rs: Run[]): string => {
      const f = rs.filter((r) => r.outcome === 'fail').map((r) => r.atS), p = rs.filter((r) => r.outcome === 'pass').map((r) => r.atS);
      return `n=${rs.length}  pass ${p.length}  fail ${f.length}  inconclusive ${rs.filter((r) => r.outcome === 'inconclusive').length}`
        + (f.length ? `  fail at p50 ${pct(f, 0.5)} s p95 ${pct(f, 0.95)} s max ${Math.max(...f)} s` : '')
        + (p.length ? `  pass at p50 ${pct(p, 0.5)} s p95 ${pct(p, 0.95)} s` : '');
    };
    const fails = runs.filter((r) => r.outcome === 'fail').map((r) => r.atS);
    const passes = runs.filter((r) => r.outcome === 'pass').map((r) => r.atS);
    process.stdout.write(`  ${sc.label.padEnd(58)} ${summary(runs)}\n`);
    const befores = runs.flatMap((r) => (r.before === undefined ? [] : [r.before]));
    if (withBefore) {
      // The same traffic through the tail bands as they were (paired with the replayed window).
      const bf = befores.filter((r) => r.outcome === 'fail').map((r) => r.atS);
      process.stdout.write(`    before (tail bands paired with the replayed window), same traffic: ${summary(befores)}\n`);
      if (sc.bad) keys.push(`before_${pre}${sc.key}_detect_rate=${(bf.length / n).toFixed(3)}`, `before_${pre}${sc.key}_detect_s_p50=${pct(bf, 0.5)}`, `before_${pre}${sc.key}_detect_s_p95=${pct(bf, 0.95)}`);
      else keys.push(`before_${pre}${sc.key}_false_fail_rate=${(bf.length / n).toFixed(4)}`, `before_${pre}${sc.key}_false_fail_upper95=${upper95(bf.length, n).toFixed(4)}`);
    }
    if (!sc.bad) {
      // Which rule decided each false fail (the verdict's reason names it), the error test's ρ
      // then against the simulation's true one, and a tally per rule.
      const byRule = new Map<string, number>();
      const rhoOf = (r: Run): string => `error ρ ${r.rho.toFixed(3)}, true ${trueErrorRho(sc.arm).toFixed(3)}${/latency tail up/.test(r.reason ?? '') ? `; ${r.tail}` : ''}`;
      for (const r of runs.filter((x) => x.outcome === 'fail')) {
        process.stdout.write(`    false fail at ${r.atS} s (${rhoOf(r)}): ${r.reason}\n`);
        for (const rule of ruleOf(r.reason)) byRule.set(rule, (byRule.get(rule) ?? 0) + 1);
      }
      if (byRule.size > 0) process.stdout.write(`    false fails by rule: ${[...byRule].map(([k, v]) => `${k} ${v}`).join(', ')}\n`);
      for (const r of befores.filter((x) => x.outcome === 'fail')) process.stdout.write(`    before: false fail at ${r.atS} s (${rhoOf(r)}): ${r.reason}\n`);
    }
    if (sc.bad) {
      if (windowS === 0 && sc.key !== 'newgroup') badTimes.push(...fails);
      keys.push(`${pre}${sc.key}_detect_rate=${(fails.length / n).toFixed(3)}`, `${pre}${sc.key}_detect_s_p50=${pct(fails, 0.5)}`, `${pre}${sc.key}_detect_s_p95=${pct(fails, 0.95)}`);
      if (windowS === 0) {
        const limit = { err20: 10, err5: 30, tail50: 60 }[sc.key as 'err20' | 'err5' | 'tail50'] as number | undefined;
        if (limit !== undefined) goal(`${sc.key} detected p95 s`, fails.length < n ? Infinity : pct(fails, 0.95), limit);
      }
    } else {
      pooled.n += n; pooled.fails += fails.length;
      if (sc.key !== 'healthy') {
        keys.push(`${pre}${sc.key}_false_fail_rate=${(fails.length / n).toFixed(4)}`, `${pre}${sc.key}_false_fail_upper95=${upper95(fails.length, n).toFixed(4)}`);
      } else {
        if (windowS === 0) {
          falseFails = fails.length;
          keys.push(`healthy_false_fail_upper95=${upper95(fails.length, n).toFixed(4)}`);
        } else keys.push(`${pre}false_fail_rate=${(fails.length / n).toFixed(4)}`, `${pre}false_fail_upper95=${upper95(fails.length, n).toFixed(4)}`);
        keys.push(`${pre}healthy_n=${n}`, `${pre}healthy_pass_rate=${(passes.length / n).toFixed(3)}`, `${pre}healthy_pass_s_p50=${pct(passes, 0.5)}`, `${pre}healthy_pass_s_p95=${pct(passes, 0.95)}`);
      }
    }
  }
  // Healthy deploys stop at their early pass; these ones are watched for the whole max duration,
  // every second, to show the false-fail bound holds under continuous monitoring.
  const full = Array.from({ length: FULL }, () => deploy(HEALTHY_ARM, true, windowS));
  const fullFails = full.filter((r) => r.outcome === 'fail').length;
  pooled.n += FULL; pooled.fails += fullFails;
  process.stdout.write(`  healthy, no early pass, watched every second for ${DEFAULT_VERIFY_CONFIG.maxDurationS} s`.padEnd(60) + `n=${FULL}  fail ${fullFails}\n`);
  keys.push(`${pre}false_fail_rate_full_horizon=${(fullFails / FULL).toFixed(4)}`);
}
if (COMPARE) {
  // Before vs after in one run: the canary scenarios again without the dispersion prior.
  process.stdout.write(' canary, without the pre-deploy dispersion prior (as before; --compare 0 skips)\n');
  for (const sc of scenarios.filter((x) => ['healthy', 'bursty', 'err5', 'err20', 'tail50'].includes(x.key))) {
    const n = sc.key === 'healthy' ? Math.round(HEALTHY / 4) : sc.n;
    const runs = Array.from({ length: n }, () => deploy(sc.arm, false, 0, sc.base, sc.group, false));
    const fails = runs.filter((r) => r.outcome === 'fail').map((r) => r.atS);
    const passes = runs.filter((r) => r.outcome === 'pass').map((r) => r.atS);
    process.stdout.write(`  ${sc.label.padEnd(58)} n=${n}  pass ${passes.length}  fail ${fails.length}`
      + (fails.length ? `  fail at p50 ${pct(fails, 0.5)} s p95 ${pct(fails, 0.95)} s` : '') + (passes.length ? `  pass at p50 ${pct(passes, 0.5)} s p95 ${pct(passes, 0.95)} s` : '') + '\n');
    keys.push(sc.bad ? `noprior_${sc.key}_detect_s_p95=${pct(fails, 0.95)}` : `noprior_${sc.key}_false_fail_rate=${(fails.length / n).toFixed(4)}`);
  }
}
{
  // What any test could do: the likelihood ratio test that knows the alternative exactly (one
  // ψ per signal, binomial chunks, no burst correction) at the same α. Its p95 is a floor for the
  // canary goals at this traffic: below it only a bigger baseline, a larger α or more traffic helps.
  const at = { rps: RPS, alpha: DEFAULT_VERIFY_CONFIG.alpha, minSamples: DEFAULT_VERIFY_CONFIG.minSamples, runs: BAD };
  const o5 = oracleErr5(rand, at), oTail = oracleTailP95(rand, at), oBands = oracleTailBands(rand, at);
  process.stdout.write(` information floor: the likelihood ratio test knowing ψ, at α ${at.alpha}: errors 1 % → 5 % p95 ${o5} s; tail50 read at the p95 threshold (slow share 5 % → 9.2 %) p95 ${oTail} s, read in the analysis's bands (p95 / p99 / p99.9) p95 ${oBands} s\n`);
  keys.push(`oracle_err5_detect_s_p95=${o5}`, `oracle_tail50_p95threshold_detect_s_p95=${oTail}`, `oracle_tail50_bands_detect_s_p95=${oBands}`);
  if (ANY_TEST) {
    // Not only sequential tests: the most powerful test of any kind at the goal's time (exact for
    // the errors, simulated for the tail), bench/_verify-oracle.ts.
    const e = anyTestErr5(RPS, at.alpha, 30);
    const t3 = fixedSampleTailPower(rand, RPS, at.alpha, 60, [0.999, 0.99, 0.95]);
    const t14 = fixedSampleTailPower(rand, RPS, at.alpha, 60, [0.9995, 0.999, 0.998, 0.995, 0.99, 0.98, 0.97, 0.95, 0.93, 0.9, 0.85, 0.8, 0.7, 0.5]);
    process.stdout.write(` any test at α ${at.alpha}: errors 1 % → 5 % rejected by 30 s with probability ≤ ${e.powerAt.toFixed(3)} (Neyman-Pearson, least-favourable common rate), 0.95 first reached at ${e.p95FloorS} s;`
      + ` tail50, fixed-sample test knowing the alternative, power at 60 s: ${t3.toFixed(3)} (3 bands), ${t14.toFixed(3)} (14 bands)\n`);
    const g5 = goals.find((g) => g.name === 'err5 detected p95 s');
    if (g5 !== undefined) g5.detail += ` (no valid test at this α and traffic gets below ${e.p95FloorS} s)`;
    keys.push(`anytest_err5_power_at30=${e.powerAt.toFixed(4)}`, `anytest_err5_p95_floor_s=${e.p95FloorS}`, `fixed_tail50_power_at60_bands3=${t3.toFixed(3)}`, `fixed_tail50_power_at60_bands14=${t14.toFixed(3)}`);
  }
}
if (FRONTIER_BAD > 0 || FRONTIER_HEALTHY > 0) {
  // The frontier: which speed goals are reachable at which α and traffic. Per α and rps, the
  // oracle's and our p95 time to fail a 1 % → 5 % error regression and the tail-only one; per α,
  // the false-fail upper bound we get on bursty healthy canaries (the hardest healthy scenario)
  // at the bench's own rps.
  process.stdout.write(` frontier: p95 seconds to fail (oracle / ours), ${FRONTIER_BAD} runs a cell; false fails on ${FRONTIER_HEALTHY} bursty healthy canaries at ${RPS} rps\n`);
  for (const alpha of FRONTIER_ALPHAS) {
    const cells: string[] = [];
    for (const rps of FRONTIER_RPS) {
      const at = { rps, alpha, minSamples: DEFAULT_VERIFY_CONFIG.minSamples, runs: FRONTIER_BAD };
      const o5 = FRONTIER_BAD > 0 ? oracleErr5(rand, at) : NaN, oT = FRONTIER_BAD > 0 ? oracleTailBands(rand, at) : NaN;
      const ours = (arm: Arm): number => {
        const runs = Array.from({ length: FRONTIER_BAD }, () => deploy(arm, false, 0, HEALTHY_ARM, undefined, true, { rps, alpha }));
        return runs.every((r) => r.outcome === 'fail') ? pct(runs.map((r) => r.atS), 0.95) : Infinity;
      };
      const u5 = FRONTIER_BAD > 0 ? ours(ERR5) : NaN, uT = FRONTIER_BAD > 0 ? ours(TAIL50) : NaN;
      cells.push(`${rps} rps: err5 ${o5} / ${u5} s, tail50 ${oT} / ${uT} s`);
      const k = `frontier_alpha${alpha}_rps${rps}`;
      if (FRONTIER_BAD > 0) keys.push(`${k}_oracle_err5_p95=${o5}`, `${k}_err5_p95=${u5}`, `${k}_oracle_tail50_p95=${oT}`, `${k}_tail50_p95=${uT}`);
    }
    let ff = '';
    if (FRONTIER_HEALTHY > 0) {
      const runs = Array.from({ length: FRONTIER_HEALTHY }, () => deploy(BURSTY, false, 0, BURSTY, undefined, true, { alpha }));
      const fails = runs.filter((r) => r.outcome === 'fail').length;
      ff = `; bursty healthy: ${fails} of ${FRONTIER_HEALTHY} failed, upper bound ${(upper95(fails, FRONTIER_HEALTHY) * 100).toFixed(2)} %`;
      keys.push(`frontier_alpha${alpha}_bursty_false_fail_upper95=${upper95(fails, FRONTIER_HEALTHY).toFixed(4)}`);
    }
    process.stdout.write(`  α ${alpha}: ${cells.join('; ')}${ff}\n`);
  }
}
// The server's Verifier over rollup deltas (bench/_verify-loop.ts): a rollback whose target is
// bad too must not pass; a healthy deploy verified at 50 %, held, then at 100 % spends α once.
process.stdout.write(' streaming verifier (rollups, virtual time)\n');
const rollbacks = Array.from({ length: LOOP_N }, () => badRollback(rand, gauss, RPS));
const rbPass = rollbacks.filter((r) => r.outcome === 'pass').length;
const rbFail = rollbacks.filter((r) => r.outcome === 'fail').map((r) => r.atS);
process.stdout.write(`  ${'bad rollback target (20 % errors, bad version beside it)'.padEnd(58)} n=${LOOP_N}  pass ${rbPass}  fail ${rbFail.length}  other ${LOOP_N - rbPass - rbFail.length}`
  + (rbFail.length ? `  fail at p50 ${pct(rbFail, 0.5)} s p95 ${pct(rbFail, 0.95)} s` : '') + '\n');
keys.push(`bad_rollback_pass_rate=${(rbPass / LOOP_N).toFixed(3)}`, `bad_rollback_fail_rate=${(rbFail.length / LOOP_N).toFixed(3)}`);
const STEP_S = 120;
const multi = Array.from({ length: LOOP_N * 2 }, () => multiStep(rand, gauss, RPS, STEP_S));
const multiFails = multi.filter((r) => r.outcome === 'fail');
process.stdout.write(`  ${`healthy 50 % → hold → 100 %, ${STEP_S} s each, no early pass`.padEnd(58)} n=${multi.length}  fail ${multiFails.length}\n`);
for (const r of multiFails) process.stdout.write(`    false fail at ${r.atS} s: ${r.reason}\n`);
keys.push(`multistep_false_fail_rate=${(multiFails.length / multi.length).toFixed(4)}`, `multistep_false_fail_upper95=${upper95(multiFails.length, multi.length).toFixed(4)}`);
pooled.n += multi.length; pooled.fails += multiFails.length;
const upperPooled = upper95(pooled.fails, pooled.n);
process.stdout.write(` every healthy deploy above (all healthy scenarios and modes): n=${pooled.n}  false fails ${pooled.fails}  one-sided 95 % upper bound ${(upperPooled * 100).toFixed(2)} %\n`);
keys.unshift(`false_fail_upper95=${upperPooled.toFixed(4)}`, `healthy_deploys_pooled=${pooled.n}`, `false_fails_pooled=${pooled.fails}`);
goals.push({ name: 'healthy deploys pooled', ok: pooled.n >= 2000, detail: `${pooled.n} ≥ 2000` });
goal('false-fail upper 95 % bound, every healthy scenario pooled', Number(upperPooled.toFixed(4)), 0.01);
goal('bad rollback pass rate', rbPass / LOOP_N, 0);

const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
process.stdout.write(`  (${wallS.toFixed(1)} s wall)\n`);
process.stdout.write(`RESULT verify bad_detect_s_p50=${pct(badTimes, 0.5)} bad_detect_s_p95=${pct(badTimes, 0.95)} false_fail_rate=${(falseFails / HEALTHY).toFixed(4)} ${keys.join(' ')}\n`);
for (const g of goals) process.stdout.write(`${g.ok ? 'ok  ' : 'FAIL'} goal: ${g.name}: ${g.detail}\n`);
if (goals.some((g) => !g.ok)) process.exitCode = 1;
