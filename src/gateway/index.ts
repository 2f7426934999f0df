/**
 * gateway/ — the PostgreSQL access gateway: a wire-protocol v3 proxy that logs users in with
 * their tightloop tokens, picks the upstream by database name, checks every statement against
 * guardrails built on the real PostgreSQL parser, masks personal data in results, grants access
 * just in time, and keeps a hash-chained audit trail.
 *
 *   gateway.ts         startGateway: listener, services, expiry sweeper
 *   session.ts         one client connection: startup, login, checks, upstream, relay
 *   startup.ts         SSLRequest/GSSENCRequest/CancelRequest/StartupMessage
 *   session-auth.ts    login conversation (password enrolment, then SCRAM-SHA-256)
 *   client-auth.ts     verifiers and sealed tokens behind SCRAM; verifyToken on every login
 *   scram.ts           SCRAM-SHA-256, server and client halves
 *   upstream.ts        connect and log in to the real server (SCRAM, md5, password; TLS)
 *   relay.ts           message relay: judge, attribute (pipeline.ts), mask, backpressure
 *   registry.ts        live sessions by cancel key and grant
 *   user-bucket.ts     thread time and audit volume rationed per user (judging, detection, audit): TimeBucket, UserBuckets
 *   wire/              framing, decoding and encoding of protocol messages; GatewayError and its registry (GATEWAY_ERRORS: code → SQLSTATE)
 *   guardrails/        parse-tree visitors, decisions and their caches
 *   masking/           content detectors, type-preserving renderers, DataRow/COPY masking
 *   policy.ts          a resource's policy (guardrail actions, masking, JIT knobs)
 *   resources.ts       PostgreSQL targets; credentials by reference only
 *   grants.ts, access.ts, approvals.ts   grants, JIT requests, statement reviews
 *   webhook.ts         Slack-compatible notifications
 *   audit.ts           the hash-chained audit log and its verification
 *   statement-log.ts   per-session statement audit (plain repeats coalesced)
 *   api.ts, api-audit.ts, openapi.ts   the REST routes (a Fastify plugin) and their OpenAPI
 *   harness.conformance.ts   test support (embedded PostgreSQL, raw client, CLI runner)
 */
export { startGateway } from './gateway.js';
export type { Gateway, GatewayOptions } from './gateway.js';
export { gatewayMigrations } from './schema.js';
export type { AccessMode } from './schema.js';
export { ResourceStore, publicResource, resolveCredential, TLS_MODES } from './resources.js';
export type { Resource, ResourceInput, TlsMode } from './resources.js';
export { AccessService } from './access.js';
export type { AccessRequest, AccessRequestInput, Principal } from './access.js';
export type { AccessGrant } from './grants.js';
export { AuditChain, recordHash, GENESIS_HASH } from './audit.js';
export type { AuditEvent, AuditRecord, AuditVerifyResult, AuditQuery } from './audit.js';
export { resourcePolicySchema } from './policy.js';
export type { ResourcePolicy } from './policy.js';
export { GatewayError } from './wire/errors.js';
export { gatewayApi } from './api.js';
export type { GatewayApiOptions } from './api.js';
export { parseDuration } from '../core/duration.js';
export { gatewayOpenApiPaths } from './openapi.js';
