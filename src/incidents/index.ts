/**
 * incidents/ — the "learn" pillar: incidents that build their own story, and the loop's speed.
 *
 * - service.ts: `IncidentService` — open/join on firing alerts and failed verdicts, ack, assign,
 *   resolve, auto-resolve. inputs.ts: request schemas. store.ts: the tables' reads and writes.
 *   first-bad.ts: the first bad signal, the suspect deploy and the recovery.
 * - signal.ts: change points over rollup buckets (first bad signal, back to baseline). Pure.
 * - metrics.ts: MTTD/MTTA/MTTR and the DORA keys, medians, p90, weekly trend. Pure.
 * - timeline.ts: orders and labels the story's facts. Pure. story.ts: gathers them.
 * - storage.ts: tables (migrations `incidents_NNNN_*`); routes.ts, openapi.ts: the REST API.
 */
export { IncidentService, type IncidentServiceOptions, type IncidentTelemetry } from './service.js';
export { incidentsMigrations } from './storage.js';
export { registerIncidentRoutes } from './routes.js';
export { incidentsOpenApiPaths } from './openapi.js';
export { tellStory, gatherLoopMetrics, type IncidentStory, type StoryDeps } from './story.js';
export { loopMetrics, quantile, stat, weekStart, type LoopMetrics, type LoopMetricsInput, type DeployFacts, type IncidentFacts, type Stat } from './metrics.js';
export { findShift, firstBadSignal, backToBaseline, type SignalBucket, type SignalName, type Shift } from './signal.js';
export type { Incident, IncidentAlert, IncidentStatus, TimelineEntry, TimelineKind, TimelineLinks, DeployLink } from './model.js';
