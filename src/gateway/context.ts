import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { SecureContext } from 'node:tls';
import type { Database } from '../state/index.js';
import type { AccessService } from './access.js';
import type { StatementApprovals } from './approvals.js';
import type { AuditChain } from './audit.js';
import type { ChunkScheduler } from './chunk-scheduler.js';
import type { ClientAuthenticator } from './client-auth.js';
import type { Guardrails } from './guardrails/index.js';
import type { Masker } from './masking/index.js';
import type { SessionRegistry } from './registry.js';
import type { MessageLimits } from './wire/framer.js';
import type { Resource, ResourceStore } from './resources.js';

/** Everything a client session needs from the running gateway (one object, built once). */
export interface GatewayContext {
  db: Kysely<Database>;
  resources: ResourceStore;
  access: AccessService;
  auth: ClientAuthenticator;
  audit: AuditChain;
  approvals: StatementApprovals;
  guardrails: Guardrails;
  registry: SessionRegistry;
  secureContext: SecureContext | undefined;
  log: Logger;
  maxMessageBytes: number;
  /** The largest result row (DataRow) relayed; a larger one ends the session with 54000 (attack round 7 F6). */
  maxRowBytes: number;
  /** Limits by message type on what a logged-in client sends (wire/framer.ts). */
  clientLimits: MessageLimits;
  /** Window in which repeats of a plain statement share one audit record (0 = never). */
  auditWindowMs: number;
  /** Sessions one user may hold open on one resource at once (0: no limit; registry.ts). */
  maxSessionsPerUser: number;
  /** Gives each user's sessions their turns at the work on server data (chunk-scheduler.ts). */
  chunks: ChunkScheduler;
  maskerFor(resource: Resource): Masker;
}
