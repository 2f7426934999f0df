/**
 * The one error type of tightloop, and the one registry of API errors. Every failure a caller
 * should see carries a stable `code`, an HTTP status and optional context; one central handler
 * turns it into `{error:{code,message}}`. Each code is declared once in API_ERRORS with its status
 * and what it means (the OpenAPI document lists them: `components.x-error-codes`), and raised
 * with `apiError(code, message)`, so no call site pairs a code with a status by hand.
 */
export class AppError extends Error {
  readonly code: string;
  readonly status: number;
  readonly context: Record<string, unknown> | undefined;
  /** Seconds a client should wait before retrying (429/503). */
  readonly retryAfterS: number | undefined;

  constructor(
    code: string,
    status: number,
    message: string,
    opts: AppErrorOptions = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'AppError';
    this.code = code;
    this.status = status;
    this.context = opts.context;
    this.retryAfterS = opts.retryAfterS;
  }
}

export interface AppErrorOptions {
  context?: Record<string, unknown>;
  cause?: unknown;
  retryAfterS?: number;
}

interface ErrorSpec {
  readonly status: number;
  /** What the code means; the message of each error names the particular thing. */
  readonly description: string;
}

/** Every API error code, once: its HTTP status and meaning. */
export const API_ERRORS = {
  bad_request: { status: 400, description: 'The request is invalid: the message names the parameter or field and what is expected.' },
  invalid_encoding: { status: 400, description: 'The body could not be decompressed with its Content-Encoding.' },
  invalid_envelope: { status: 400, description: 'A Sentry envelope or store body is malformed.' },
  unknown_version: { status: 400, description: 'The rollout names a version its service has no command for.' },
  not_local: { status: 400, description: 'The service is not run by the local actuator.' },
  no_previous_version: { status: 400, description: 'A partial rollout needs the previous version running beside the new one.' },
  no_deploy_action: { status: 400, description: 'The service names no deploy action.' },
  no_rollback: { status: 400, description: 'There is no version to roll back to, or no rollback action.' },
  credential_source_refused: { status: 400, description: 'A resource credential source is not allowed.' },
  usage: { status: 400, description: 'A CLI command was called with missing or conflicting arguments.' },
  bad_telemetry_url: { status: 400, description: 'The telemetry store location is not duckdb or a valid clickhouse:// URL.' },
  role_invalid: { status: 400, description: 'An unknown node role, or none, was given (`--role`).' },
  roles_incoherent: { status: 400, description: 'The node roles cannot run alone (the gateway without the API).' },
  roles_split_telemetry: { status: 400, description: 'api, ingest and worker must run on the same node.' },
  state_version_mismatch: { status: 400, description: 'The state database was migrated by another tightloop version.' },
  state_not_found: { status: 400, description: 'No state database where one was named.' },
  state_copy_value: { status: 400, description: 'A state value cannot be copied to the target column exactly.' },
  state_copy_cycle: { status: 400, description: 'The state tables\' foreign keys form a cycle the copy cannot order.' },
  state_copy_unknown_table: { status: 400, description: 'The state holds a table the target does not know.' },
  state_copy_unknown_column: { status: 400, description: 'A state table holds a column the target does not know.' },
  state_copy_unknown_type: { status: 400, description: 'A target column has a type the copy cannot convert to.' },
  state_url_invalid: { status: 400, description: 'The state database location is not a valid URL or path.' },
  unauthorized: { status: 401, description: 'No, a malformed, an unknown, an expired or a revoked token or key.' },
  forbidden: { status: 403, description: 'The caller\'s role or token scope does not allow this.' },
  not_found: { status: 404, description: 'No such route or object.' },
  not_verified: { status: 404, description: 'The deploy has no verification.' },
  conflict: { status: 409, description: 'The object\'s state does not allow this (resolved, taken name, read-only source, already decided).' },
  state_in_use: { status: 409, description: 'Another process holds the state database.' },
  roles_mismatch: { status: 409, description: 'Another node of this cluster runs a different set of roles.' },
  advertise_url_required: { status: 400, description: 'A node on PostgreSQL bound to 0.0.0.0 or :: needs cluster.advertiseUrl (the URL other nodes forward to).' },
  advertise_url_invalid: { status: 400, description: 'cluster.advertiseUrl is not an http://host:port URL other nodes can reach.' },
  audit_key_mismatch: { status: 409, description: 'The shared audit chain is sealed with another key than this node\'s gateway-audit.key.' },
  state_target_not_empty: { status: 409, description: 'The migration target already holds tightloop rows.' },
  payload_too_large: { status: 413, description: 'The body (or its decompressed form) is over the limit.' },
  item_too_large: { status: 413, description: 'One event or envelope item is over the limit.' },
  too_many_items: { status: 413, description: 'An envelope holds more items than allowed.' },
  unsupported_encoding: { status: 415, description: 'The Content-Encoding is not gzip, deflate or identity.' },
  unsupported_item: { status: 415, description: 'An envelope item type is not accepted.' },
  unsupported_media_type: { status: 415, description: 'The request body\'s Content-Type is not one the route reads (application/json).' },
  overloaded: { status: 429, description: 'Ingest is over capacity; retry after Retry-After seconds.' },
  too_many_tails: { status: 429, description: 'Too many live tails are open.' },
  internal: { status: 500, description: 'An unexpected failure (logged with its cause).' },
  version_start_failed: { status: 500, description: 'A local version exited or was not healthy in time.' },
  proxy_listen_failed: { status: 500, description: 'A local service\'s proxy could not listen on its port.' },
  state_open_failed: { status: 500, description: 'The state database could not be opened.' },
  state_migration_failed: { status: 500, description: 'A state database migration failed.' },
  unavailable: { status: 503, description: 'Shutting down, or a dependency is temporarily unavailable; retry.' },
  state_unavailable: { status: 503, description: 'The state database cannot be reached.' },
  lease_lost: { status: 503, description: 'This node no longer holds the lease its work needs (fencing); the new holder does the work.' },
  node_standby: { status: 503, description: 'This node is a standby; another node is active (retry through the load balancer).' },
  node_stopped: { status: 503, description: 'The node stopped before it became active.' },
  telemetry_unavailable: { status: 503, description: 'The telemetry store (ClickHouse) did not take the data; retry.' },
  credential_unavailable: { status: 503, description: 'A resource\'s upstream credential cannot be read now.' },
  verification_pending: { status: 504, description: 'No verdict within the wait asked for; the verification goes on.' },
} as const satisfies Record<string, ErrorSpec>;

export type ApiErrorCode = keyof typeof API_ERRORS;

/** An API error: the status comes from the registry. */
export function apiError(code: ApiErrorCode, message: string, opts?: AppErrorOptions): AppError {
  return new AppError(code, API_ERRORS[code].status, message, opts);
}

/** Registered codes for the client errors Fastify raises itself (a body that is not JSON, an unknown content type). */
const BY_CLIENT_STATUS: ReadonlyMap<number, ApiErrorCode> = new Map<number, ApiErrorCode>([
  [401, 'unauthorized'], [403, 'forbidden'], [404, 'not_found'], [409, 'conflict'], [413, 'payload_too_large'], [415, 'unsupported_media_type'],
]);

/** A framework's 4xx as an API error: the registered code of its status, else bad_request (400). */
export function clientError(status: number, message: string): AppError {
  return apiError(BY_CLIENT_STATUS.get(status) ?? 'bad_request', message);
}

export const badRequest = (message: string, context?: Record<string, unknown>): AppError => apiError('bad_request', message, { context });

export const notFound = (message: string): AppError => apiError('not_found', message);

export const unauthorized = (message = 'missing or invalid token'): AppError => apiError('unauthorized', message);

export const forbidden = (message: string): AppError => apiError('forbidden', message);

export const conflict = (message: string): AppError => apiError('conflict', message);
