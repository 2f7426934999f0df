/**
 * detect/ — streaming, high-signal alerting.
 *
 * - rules.ts (schemas), rules-file.ts (`<data-dir>/rules.yaml`), rule-book.ts (file + API rules)
 * - window.ts (per-series rings of seconds and minutes), metric-window.ts (per-second metric
 *   aggregates and histogram buckets), rule-set.ts (rules routed by feed: rollup deltas indexed by
 *   service, committed spans / logs / metric points, error counts), feeds.ts (the non-rollup
 *   feeds), evaluate.ts (threshold / metric / log / error / SLO burn / absence conditions and the
 *   pending → firing → resolved step), burn-rate.ts (the maths)
 * - engine.ts (evaluation on every committed append + 1 s tick, alert persistence, warm-up from
 *   per-operation rollups)
 * - dispatcher.ts (grouping, silences, inhibition, notification log), notifier.ts (webhook and
 *   Slack payloads, retries), silences.ts, alert.ts, storage.ts (tables, `detect_*` migrations)
 * - routes.ts (`/api/rules`, `/api/alerts`, `/api/silences`); events.ts (`alert.fired`,
 *   `alert.resolved`, `alert.notified`). README.md: rule types, feeds, restart behaviour.
 */
export { DetectEngine, type DetectEngineOptions, type DetectErrorSource, type DetectSource, type DetectLogger } from './engine.js';
export { DetectEvents, type AlertEvent, type DetectEventMap, type NotifiedEvent } from './events.js';
export { registerDetectRoutes } from './routes.js';
export { detectMigrations } from './storage.js';
export { burnRate, evaluateBurnWindows, budgetSpent, type BurnWindowResult } from './burn-rate.js';
export { parseRulesYaml, loadRulesFile, RulesFileError } from './rules-file.js';
export {
  DEFAULT_BURN_WINDOWS, parseDuration, ruleSpecSchema, rulesFileSchema,
  type Rule, type RuleSpec, type RuleInput, type Receiver, type InhibitRule, type Matcher, type SilenceInput, type RulesFile,
} from './rules.js';
export type { Notification, NotifiedAlert, SendOptions } from './notifier.js';
export { sendNotice, type Notice } from './notice.js';
export type { Silence } from './silences.js';
export type { AlertView } from './alert.js';
/** Metric point helpers shared with deploys/ (metric checks): cumulative → delta, attribute lookup, bucket quantiles. */
export { AttrReader, MetricFeed } from './feeds.js';
export { histogramQuantile, type PointDelta } from './metric-window.js';
