/**
 * Rule, receiver, silence-matcher and inhibition schemas (zod), shared by the YAML file, the API
 * and the engine. Durations are strings like `30s`, `5m`, `1h`, `3d` (parsed to ms) so a file
 * reads like Prometheus; the API accepts the same shapes.
 */
import { z } from 'zod';

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

const selector = z.object({
  service: z.string().optional(),
  operation: z.string().optional(),
  version: z.string().optional(),
  environment: z.string().optional(),
}).strict();

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
  by: z.array(z.enum(SERIES_LABELS)).default(['service', 'operation', 'version', 'environment']),
  ...noise,
};

export const thresholdRuleSchema = z.object({
  ...common,
  type: z.literal('threshold'),
  signal: z.enum(['error_rate', 'p50_ms', 'p95_ms', 'p99_ms', 'rate']),
  op: z.enum(['>', '>=', '<', '<=']).default('>'),
  threshold: z.number(),
  window: duration.default(60_000),
  for: duration.default(0),
  /** Fire when at least n of the last m consecutive windows breach. */
  n_of_m: z.object({ n: z.number().int().min(1), m: z.number().int().min(1).max(60) }).strict()
    .refine((v) => v.n <= v.m, 'n must not exceed m').optional(),
  keep_firing_for: duration.default(0),
  /** Fewer requests than this in a window make it "no data", neither breaching nor healthy. */
  min_count: z.number().int().min(0).default(1),
}).strict().refine((r) => r.window >= 1000, { message: 'window must be at least 1s', path: ['window'] });

export const burnWindowSchema = z.object({
  severity: z.string(),
  factor: z.number().positive(),
  long: duration,
  short: duration,
}).strict();
export type BurnWindow = z.infer<typeof burnWindowSchema>;

/** The multi-window, multi-burn-rate table of the Google SRE workbook. */
export const DEFAULT_BURN_WINDOWS: BurnWindow[] = [
  { severity: 'page', factor: 14.4, long: 3_600_000, short: 300_000 },
  { severity: 'page', factor: 6, long: 6 * 3_600_000, short: 1_800_000 },
  { severity: 'ticket', factor: 1, long: 3 * 86_400_000, short: 6 * 3_600_000 },
];

export const sloRuleSchema = z.object({
  ...common,
  type: z.literal('slo'),
  objective: z.number().gt(0).lt(1),
  period: duration.default(30 * 86_400_000),
  windows: z.array(burnWindowSchema).min(1).optional(),
  /**
   * Low-traffic guard: burn rates divide by at least this many requests, so one error among a
   * handful of requests cannot page on its own.
   */
  min_events: z.number().int().min(0).default(100),
}).strict();

export const absenceRuleSchema = z.object({
  ...common,
  type: z.literal('absence'),
  /** No entry span for this long from a series seen before → firing. */
  for: duration.default(60_000),
}).strict();

export const ruleSpecSchema = z.discriminatedUnion('type', [thresholdRuleSchema, sloRuleSchema, absenceRuleSchema]);
export type ThresholdRule = z.infer<typeof thresholdRuleSchema>;
export type SloRule = z.infer<typeof sloRuleSchema>;
export type AbsenceRule = z.infer<typeof absenceRuleSchema>;
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
}).strict();
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

export function matches(m: Matcher, labels: Record<string, string>): boolean {
  const v = labels[m.name] ?? '';
  switch (m.op) {
    case '=': return v === m.value;
    case '!=': return v !== m.value;
    case '=~': return new RegExp(`^(?:${m.value})$`).test(v);
    case '!~': return !new RegExp(`^(?:${m.value})$`).test(v);
  }
}

export const matchesAll = (ms: Matcher[], labels: Record<string, string>): boolean => ms.every((m) => matches(m, labels));
