/**
 * Rule, receiver, silence-matcher and inhibition schemas (zod), shared by the YAML file, the API
 * and the engine. Durations are strings like `30s`, `5m`, `1h`, `3d` (parsed to ms) so a file
 * reads like Prometheus; the API accepts the same shapes.
 */
import { z } from 'zod';
import { compilePattern, PatternError, patternProblem, type CompiledPattern } from '../core/pattern.js';

const DURATION_RE = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function parseDuration(text: string): number {
  const m = DURATION_RE.exec(text.trim());
  if (m === null) throw new Error(`invalid duration '${text}' (use e.g. 30s, 5m, 1h, 3d)`);
  return Math.round(Number(m[1]) * UNIT_MS[m[2]]);
}

/** A duration field: `'30s'` or a number of seconds, normalised to milliseconds. */
const duration = z.union([z.string(), z.number().nonnegative()]).transform((v, ctx) => {
  if (typeof v === 'number') return Math.round(v * 1000);
  try {
    return parseDuration(v);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
    return z.NEVER;
  }
});

/** Series labels every rollup carries; rules select and fan out over these. */
export const SERIES_LABELS = ['service', 'operation', 'version', 'environment'] as const;
export type SeriesLabel = (typeof SERIES_LABELS)[number];
/** Extra labels of error rules: the group id and its title. */
export const ERROR_LABELS = ['service', 'version', 'environment', 'group', 'title'] as const;
/** A fan-out label naming an attribute: `attr.<key>` (record attribute first, then resource). */
export const ATTR_PREFIX = 'attr.';

const BY_LABEL_MESSAGE = `expected ${SERIES_LABELS.join(', ')} or attr.<attribute key> (e.g. attr.http.route)`;
const byLabel = z.string().refine((v) => (SERIES_LABELS as readonly string[]).includes(v) || /^attr\..+$/.test(v), BY_LABEL_MESSAGE);

const selector = z.object({
  service: z.string().optional(),
  operation: z.string().optional(),
  version: z.string().optional(),
  environment: z.string().optional(),
  /** Exact matches on attributes: the record's (span, log record, metric point) first, then the resource's. */
  attributes: z.record(z.string(), z.string()).optional(),
}).strict();
export type Selector = z.infer<typeof selector>;

const noise = {
  labels: z.record(z.string(), z.string()).default({}),
  /** Receiver names; default: every receiver. */
  receivers: z.array(z.string()).optional(),
  /** Labels a notification groups by; default: every label (one alert per notification). */
  group_by: z.array(z.string()).optional(),
  group_wait: duration.default(0),
  group_interval: duration.default(5000),
  repeat_interval: duration.default(4 * 3_600_000),
};

const common = {
  name: z.string().min(1).max(200).regex(/^[A-Za-z0-9_.:\- ]+$/, 'letters, digits, space and _.:- only'),
  select: selector.default({}),
  /** Labels a rule fans out over (one alert per distinct combination). */
  by: z.array(byLabel).default(['service', 'operation', 'version', 'environment']),
  ...noise,
};

const OPS = ['>', '>=', '<', '<='] as const;
/** Threshold mechanics shared by RED, metric and log rules. */
const thresholdFields = {
  op: z.enum(OPS).default('>'),
  threshold: z.number(),
  window: duration.default(60_000),
  for: duration.default(0),
  /** Fire when at least n of the last m consecutive windows breach. */
  n_of_m: z.object({ n: z.number().int().min(1), m: z.number().int().min(1).max(60) }).strict()
    .refine((v) => v.n <= v.m, 'n must not exceed m').optional(),
  keep_firing_for: duration.default(0),
};
const minWindow = { message: 'window must be at least 1s', path: ['window'] };

export const thresholdRuleSchema = z.object({
  ...common,
  type: z.literal('threshold'),
  signal: z.enum(['error_rate', 'p50_ms', 'p95_ms', 'p99_ms', 'rate']),
  ...thresholdFields,
  /** Fewer requests than this in a window make it "no data", neither breaching nor healthy. */
  min_count: z.number().int().min(0).default(1),
}).strict().refine((r) => r.window >= 1000, minWindow);

/**
 * Aggregates of metric points over a window. Values of gauges and sums: avg, min, max, sum,
 * last, count (points). Increases of sums (cumulative ones by difference per stream) and of
 * histograms' observation counts: increase, rate (per second). Histograms (explicit and
 * exponential): pNN from the merged bucket counts; avg/sum/count/min/max over observations.
 */
export const METRIC_AGGS = ['avg', 'min', 'max', 'sum', 'last', 'count', 'increase', 'rate', 'p50', 'p90', 'p95', 'p99'] as const;
export type MetricAggregate = (typeof METRIC_AGGS)[number];

export const metricRuleSchema = z.object({
  ...common,
  by: z.array(byLabel).default(['service', 'version', 'environment']),
  type: z.literal('metric'),
  /** The OTel instrument name, e.g. `queue.depth` or `http.server.request.duration`. */
  metric: z.string().min(1),
  agg: z.enum(METRIC_AGGS),
  ...thresholdFields,
}).strict().refine((r) => r.window >= 1000, minWindow)
  .refine((r) => !r.by.includes('operation') && r.select.operation === undefined, { message: 'metric rules have no operation label; use attr.<key>', path: ['by'] });

export const SEVERITIES: Record<string, number> = { TRACE: 1, DEBUG: 5, INFO: 9, WARN: 13, ERROR: 17, FATAL: 21 };

export const logRuleSchema = z.object({
  ...common,
  by: z.array(byLabel).default(['service', 'version', 'environment']),
  type: z.literal('log'),
  match: z.object({
    /** Case-insensitive substring of the body. */
    pattern: z.string().min(1).optional(),
    /** A pattern over the body: the linear-time subset of src/core/pattern.ts (no backreferences or lookarounds). */
    regex: z.string().min(1).superRefine(patternCheck(false)).optional(),
    /** Records at least this severe: TRACE, DEBUG, INFO, WARN, ERROR, FATAL. */
    min_severity: z.enum(Object.keys(SEVERITIES) as [string, ...string[]]).optional(),
  }).strict().default({}),
  /** count: matching records per window; rate: per second. */
  signal: z.enum(['count', 'rate']).default('count'),
  ...thresholdFields,
}).strict().refine((r) => r.window >= 1000, minWindow)
  .refine((r) => !r.by.includes('operation') && r.select.operation === undefined, { message: 'log rules have no operation label; use attr.<key>', path: ['by'] });

/**
 * Error rules over error groups. new_group / regressed fire per group when it appears or comes
 * back, and resolve after `resolve_after` without another such event. spike fires when a
 * group's events in `window` run `factor` × faster than its own rate over the `baseline` before.
 */
export const errorRuleSchema = z.object({
  name: common.name,
  ...noise,
  type: z.literal('error'),
  event: z.enum(['new_group', 'regressed', 'spike']),
  select: selector.default({}),
  by: z.array(z.enum(ERROR_LABELS)).default(['service', 'group', 'title']),
  resolve_after: duration.default(3_600_000),
  window: duration.default(300_000),
  baseline: duration.default(3_600_000),
  factor: z.number().positive().default(3),
  /** A spike needs at least this many events in the window. */
  min_count: z.number().int().min(1).default(10),
  keep_firing_for: duration.default(0),
}).strict().refine((r) => r.window >= 1000, minWindow)
  .refine((r) => r.event !== 'spike' || r.baseline >= r.window, { message: 'baseline must be at least the window', path: ['baseline'] })
  .refine((r) => r.select.operation === undefined && r.select.attributes === undefined, {
    message: 'error rules select by service, version and environment only', path: ['select'],
  });

export const burnWindowSchema = z.object({
  severity: z.string(),
  factor: z.number().positive(),
  long: duration,
  short: duration,
}).strict();
export type BurnWindow = z.infer<typeof burnWindowSchema>;

/**
 * The multi-window, multi-burn-rate table of the Google SRE workbook, as shares of the period's
 * error budget: page when 2 % is spent in 1 h (checked over 5 min too), page at 5 % in 6 h
 * (30 min), ticket at 10 % in 3 d (6 h). A row's factor is the burn rate that spends its share in
 * its long window: share × period / long (30 d: 14.4, 6, 1).
 */
const WORKBOOK_ROWS = [
  { severity: 'page', share: 0.02, long: 3_600_000, short: 300_000 },
  { severity: 'page', share: 0.05, long: 6 * 3_600_000, short: 1_800_000 },
  { severity: 'ticket', share: 0.1, long: 3 * 86_400_000, short: 6 * 3_600_000 },
] as const;

/** SLO periods the workbook's table is derived for (7 d, 28 d, 30 d); others need explicit `windows`. */
export const SLO_PERIODS_MS = [7 * 86_400_000, 28 * 86_400_000, 30 * 86_400_000] as const;

/** The workbook's table for an SLO period (factors scale with period / 30 d). */
export function burnWindowsForPeriod(periodMs: number): BurnWindow[] {
  return WORKBOOK_ROWS.map((r) => ({
    severity: r.severity, long: r.long, short: r.short,
    factor: Math.round((r.share * periodMs / r.long) * 1e6) / 1e6,
  }));
}

/** The table for the default 30-day period: 14.4× 1h&5m, 6× 6h&30m, 1× 3d&6h. */
export const DEFAULT_BURN_WINDOWS: BurnWindow[] = burnWindowsForPeriod(30 * 86_400_000);

/** The burn windows an SLO rule judges: its own, else the workbook's for its period. */
export function sloWindows(spec: { windows?: BurnWindow[]; period: number }): BurnWindow[] {
  return spec.windows ?? burnWindowsForPeriod(spec.period);
}

export const sloRuleSchema = z.object({
  ...common,
  type: z.literal('slo'),
  /**
   * One error budget per service and environment by default: split per operation or version, a
   * new version would start with empty long windows and a budget of its own.
   */
  by: z.array(byLabel).default(['service', 'environment']),
  objective: z.number().gt(0).lt(1),
  /** 7d, 28d or 30d: the burn-rate factors follow it (workbook table); any other period needs `windows`. */
  period: duration.default(30 * 86_400_000),
  windows: z.array(burnWindowSchema).min(1).optional(),
  /**
   * Low-traffic guard: burn rates divide by at least this many requests, so one error among a
   * handful of requests cannot page on its own.
   */
  min_events: z.number().int().min(0).default(100),
}).strict().refine((r) => r.windows !== undefined || (SLO_PERIODS_MS as readonly number[]).includes(r.period), {
  message: 'period must be 7d, 28d or 30d (the burn-rate factors are derived from it), or give windows with their own factors', path: ['period'],
});

export const absenceRuleSchema = z.object({
  ...common,
  type: z.literal('absence'),
  /** No entry span for this long from a series seen before → firing. */
  for: duration.default(60_000),
}).strict();

export const ruleSpecSchema = z.discriminatedUnion('type', [thresholdRuleSchema, sloRuleSchema, absenceRuleSchema, metricRuleSchema, logRuleSchema, errorRuleSchema]);
export type ThresholdRule = z.infer<typeof thresholdRuleSchema>;
export type SloRule = z.infer<typeof sloRuleSchema>;
export type AbsenceRule = z.infer<typeof absenceRuleSchema>;
export type MetricRule = z.infer<typeof metricRuleSchema>;
export type LogRule = z.infer<typeof logRuleSchema>;
export type ErrorRule = z.infer<typeof errorRuleSchema>;
export type RuleSpec = z.infer<typeof ruleSpecSchema>;
/** What API clients and the file give (durations as text). */
export type RuleInput = z.input<typeof ruleSpecSchema>;

/** A rule with its identity: `file:<name>` for file rules (read-only), a ULID for API rules. */
export interface Rule {
  id: string;
  source: 'file' | 'api';
  spec: RuleSpec;
}

export const receiverSchema = z.object({
  name: z.string().min(1),
  type: z.enum(['webhook', 'slack']).default('webhook'),
  url: z.url(),
  headers: z.record(z.string(), z.string()).optional(),
}).strict();
export type Receiver = z.infer<typeof receiverSchema>;

export const matcherSchema = z.object({
  name: z.string().min(1),
  value: z.string(),
  op: z.enum(['=', '!=', '=~', '!~']).default('='),
}).strict().superRefine((m, ctx) => {
  if (m.op === '=~' || m.op === '!~') patternCheck(true, ['value'])(m.value, ctx);
});
export type Matcher = z.infer<typeof matcherSchema>;

/** `{service: checkout}` shorthand or an explicit matcher list. */
const matchers = z.union([z.array(matcherSchema), z.record(z.string(), z.string())]).transform((v): Matcher[] =>
  Array.isArray(v) ? v : Object.entries(v).map(([name, value]) => ({ name, value, op: '=' as const })));

export const inhibitRuleSchema = z.object({
  source: matchers,
  target: matchers,
  /** Labels that must be equal on source and target (e.g. service). */
  equal: z.array(z.string()).default([]),
}).strict();
export type InhibitRule = z.infer<typeof inhibitRuleSchema>;

export const silenceInputSchema = z.object({
  matchers: matchers.refine((m) => m.length > 0, 'at least one matcher'),
  startsAt: z.iso.datetime().optional(),
  endsAt: z.iso.datetime().optional(),
  /** Alternative to endsAt: how long from startsAt. */
  duration: duration.optional(),
  comment: z.string().max(1000).default(''),
}).strict();
export type SilenceInput = z.input<typeof silenceInputSchema>;

export const rulesFileSchema = z.object({
  receivers: z.array(receiverSchema).default([]),
  rules: z.array(ruleSpecSchema).default([]),
  inhibit_rules: z.array(inhibitRuleSchema).default([]),
}).strict();
export type RulesFile = z.infer<typeof rulesFileSchema>;

/** A compiled matcher: whether the labels satisfy it. */
export type LabelTest = (labels: Record<string, string>) => boolean;

/**
 * Matchers compiled once, as Alertmanager keeps them: keyed by the matcher object, which lives as
 * long as its silence or inhibit rule, so a match never recompiles a pattern (the pattern cache
 * of core/pattern.ts holds 512 sources; more distinct ones than that recompiled on every match).
 */
const compiledMatchers = new WeakMap<Matcher, LabelTest>();

export function compileMatcher(m: Matcher): LabelTest {
  let test = compiledMatchers.get(m);
  if (test !== undefined) return test;
  const { name, value } = m;
  switch (m.op) {
    case '=': test = (l) => (l[name] ?? '') === value; break;
    case '!=': test = (l) => (l[name] ?? '') !== value; break;
    default: {
      // A pattern that cannot be compiled (only from a store written before patterns were
      // checked) matches nothing: a silence or inhibition with it mutes nothing.
      const p = wholePattern(value);
      const negate = m.op === '!~';
      test = p === undefined ? () => false : (l) => p.test(l[name] ?? '') !== negate;
    }
  }
  compiledMatchers.set(m, test);
  return test;
}

export function matches(m: Matcher, labels: Record<string, string>): boolean {
  return compileMatcher(m)(labels);
}

function wholePattern(pattern: string): CompiledPattern | undefined {
  try {
    return compilePattern(pattern, { whole: true });
  } catch (err) {
    if (err instanceof PatternError) return undefined;
    throw err;
  }
}

/** A zod check: the string is a pattern the linear-time matcher runs (whole: as a label matcher). */
function patternCheck(whole: boolean, path: string[] = []): (v: string, ctx: z.RefinementCtx) => void {
  return (v, ctx) => {
    const problem = patternProblem(v, { whole });
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: `unsupported pattern: ${problem}`, path });
  };
}

export const matchesAll = (ms: Matcher[], labels: Record<string, string>): boolean => ms.every((m) => matches(m, labels));
