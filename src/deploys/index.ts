/**
 * deploys/ — deploy records and their statistical verification ("ship verified").
 *
 * - contract.ts: the types and events other pillars (rollout, incidents, console) code against.
 * - service.ts: `DeployService`, the implementation of `DeployApi` (records, implicit deploys,
 *   verification lifecycle, events); verifier.ts: traffic routing into running verifications.
 * - analysis.ts + stats.ts: the pure sequential tests (the benchmark runs them in virtual time);
 *   traffic.ts: chunks and per-second rings built from committed rollup deltas.
 * - metric-checks.ts: configured metric checks (services.yaml `metricChecks`), fed from committed
 *   metric points by verifier.ts.
 * - storage.ts: the state tables (migrations `deploys_NNNN_*`); routes.ts + openapi.ts: REST API.
 */
export {
  ActionEvents, DEPLOY_STATUSES, DeployEvents,
  type ActionEventMap, type ActionRunRecord, type Deploy, type DeployApi, type DeployEventMap, type DeployRecordInput,
  type DeploySource, type DeployStatus, type SignalEvidence, type Verification, type VerdictOutcome,
} from './contract.js';
export { DeployService, type DeployListFilter, type DeployServiceOptions } from './service.js';
export { DEFAULT_VERIFY_CONFIG, VerificationAnalysis, type AnalysisVerdict, type VerifyConfig } from './analysis.js';
export { metricCheckSchema, metricChecksSchema, type MetricCheck } from './metric-checks.js';
export { deploysMigrations } from './storage.js';
export { registerDeployRoutes } from './routes.js';
export { deploysOpenApiPaths } from './openapi.js';
