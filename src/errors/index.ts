/**
 * errors/ — Sentry-compatible ingest, OTel exceptions, grouping, error groups, regressions.
 *
 * - envelope.ts, sentry-event.ts, sentry-transaction.ts, release-health.ts: what Sentry SDKs send.
 * - otel-errors.ts: exception span events / log records → error events.
 * - grouping.ts: the versioned grouping algorithm.
 * - pipeline.ts: group commit — events (event-store.ts) and their groups (groups.ts) in one
 *   state-database transaction (commit.ts), acknowledged only once durable; with SQLite the
 *   commit runs in a worker thread (commit-worker.ts, worker-committer.ts); emits
 *   `error.new_group` / `error.regressed`.
 * - otel-feed.ts: OTel span exceptions from committed spans, after the OTLP ack, with a
 *   watermark and a replay from the spans after a crash.
 * - ingest-routes.ts (Sentry key auth), api-routes.ts (bearer API), module.ts (wiring).
 * See README.md for the storage choice and the measured figures.
 */
export { openErrorsModule, type ErrorsModule, type ErrorsModuleDeps } from './module.js';
export { ERRORS_MIGRATIONS } from './tables.js';
export { ErrorEvents, type ErrorEventMap, type ErrorEventName, type GroupEventCount } from './events.js';
export type { ErrorGroup } from './groups.js';
export type { StoredErrorEvent } from './event-store.js';
export type { ErrorEvent, GroupStatus, GroupingResult } from './model.js';
export { GROUP_STATUSES } from './model.js';
export { GROUPING_VERSION, groupEvent, normalizeMessage, normalizeFilename } from './grouping.js';
export { dsnFor, DEFAULT_PROJECT_NAME, type Project } from './projects.js';
export { parseEnvelope, type Envelope, type EnvelopeItem } from './envelope.js';
