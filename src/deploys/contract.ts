/**
 * The deploys pillar's contract with its neighbours (actions/rollout, incidents, the console).
 * Other pillars import these types and subscribe to `DeployEvents`; they never read the deploy
 * tables directly. Keys are the OTel ones: `service.name`, `service.version`,
 * `deployment.environment`.
 */
import { EventEmitter } from 'node:events';

export const DEPLOY_STATUSES = ['started', 'verifying', 'passed', 'failed', 'inconclusive', 'rolled_back'] as const;
export type DeployStatus = (typeof DEPLOY_STATUSES)[number];

/** How the record came to be. */
export type DeploySource = 'api' | 'cli' | 'implicit' | 'rollout' | 'rollback';

export interface Deploy {
  id: string;
  service: string;
  version: string;
  environment: string;
  /** The version this one replaced (null for the service's first deploy). */
  previousVersion: string | null;
  status: DeployStatus;
  source: DeploySource;
  commit: string | null;
  /** When the change was committed (lead time for changes starts here). ISO 8601. */
  commitTime: string | null;
  url: string | null;
  /** Who or what recorded it (user name, "ci", "tightloop"). */
  actor: string | null;
  /** Set when this deploy is a rollback: the deploy it rolls back. */
  rollbackOf: string | null;
  startedAt: string;
  /** When the deploy itself finished (promoted to 100 % / recorded as done). */
  finishedAt: string | null;
  /** When verification reached a verdict. */
  decidedAt: string | null;
  verificationId: string | null;
}

export type VerdictOutcome = 'pass' | 'fail' | 'inconclusive';

/** One signal's evidence, stored with the verdict for the console. */
export interface SignalEvidence {
  signal: string; // 'error_rate' | 'latency' | 'new_error_groups' | `metric:${string}`
  outcome: VerdictOutcome | 'pending';
  baseline: Record<string, number>;
  candidate: Record<string, number>;
  /** Effect size (e.g. rate ratio, latency shift) and test statistics (LLR, p-value, bounds). */
  stats: Record<string, number>;
  detail?: string;
}

export interface Verification {
  id: string;
  deployId: string;
  /** 'canary' (previous version's concurrent traffic) or 'pre_deploy' (same service before). */
  baselineKind: 'canary' | 'pre_deploy';
  baselineVersion: string | null;
  startedAt: string;
  decidedAt: string | null;
  outcome: VerdictOutcome | null;
  reason: string | null;
  evidence: SignalEvidence[];
}

export interface DeployEventMap {
  /** A deploy record was created (explicit, implicit, rollout step or rollback). */
  'deploy.recorded': [Deploy];
  /** A deploy's status changed (verifying, passed, failed, inconclusive, rolled_back). */
  'deploy.status': [{ deploy: Deploy; from: DeployStatus; at: string }];
  /** Verification reached a verdict. `deploy.status` follows. */
  'deploy.verdict': [{ deploy: Deploy; verification: Verification; at: string }];
}

export class DeployEvents extends EventEmitter<DeployEventMap> {}

export interface ActionRunRecord {
  id: string;
  action: string;
  params: Record<string, string | number | boolean>;
  actor: string | null;
  status: 'pending_approval' | 'running' | 'succeeded' | 'failed' | 'denied';
  exitCode: number | null;
  startedAt: string;
  finishedAt: string | null;
  /** The deploy this run belongs to (deploy or rollback actions). */
  deployId: string | null;
}

export interface ActionEventMap {
  'action.started': [ActionRunRecord];
  'action.finished': [ActionRunRecord];
}

export class ActionEvents extends EventEmitter<ActionEventMap> {}

export interface DeployRecordInput {
  service: string;
  version: string;
  environment?: string; // default: the one the service's telemetry reports when unique, else 'production'
  commit?: string | null;
  commitTime?: string | null;
  url?: string | null;
  actor?: string | null;
  source?: DeploySource; // default 'api'
  rollbackOf?: string | null;
  /**
   * Default: the service's latest deploy's version in the same environment. Descriptive (display,
   * verification baseline); a rollback's target is `DeployApi.rollbackTarget`. Not taken from
   * HTTP requests, nor is `actor` (the authenticated caller) or a `source` other than api/cli.
   */
  previousVersion?: string | null;
  /** Start verification at once (default true). */
  verify?: boolean;
  /** When the deploy started (ISO 8601). Default: now. */
  startedAt?: string;
}

/** What the deploys pillar offers its neighbours (implemented in src/deploys/service.ts). */
export interface DeployApi {
  readonly events: DeployEvents;
  record(input: DeployRecordInput): Promise<Deploy>;
  get(id: string): Promise<Deploy>;
  list(filter?: { service?: string; environment?: string; version?: string; from?: string; to?: string; limit?: number }): Promise<Deploy[]>;
  /**
   * The version a rollback of `bad` may restore (null: none): the latest explicit (never
   * telemetry-only) deploy of the service and environment before it that passed verification,
   * or that tightloop's own rollout or rollback finished without a failed verdict.
   */
  rollbackTarget(bad: Pick<Deploy, 'id' | 'service' | 'environment' | 'version' | 'startedAt'>): Promise<string | null>;
  /** The deploy finished rolling out (e.g. promoted to 100 %); sets finishedAt. */
  markFinished(id: string): Promise<Deploy>;
  /** Marks `id` rolled back by the rollback deploy `byDeployId`. */
  markRolledBack(id: string, byDeployId: string): Promise<Deploy>;
  verification(deployId: string): Promise<Verification | null>;
  /**
   * Starts (or restarts, for a new rollout step) the deploy's verification and resolves with its
   * verdict (pass / fail early, inconclusive at max duration or for want of traffic).
   */
  verify(deployId: string, opts?: { maxDurationS?: number }): Promise<Verification>;
  /** Resolves when the current verification decides (or at once when it already has). */
  waitForVerdict(deployId: string, timeoutMs?: number): Promise<Verification>;
}
