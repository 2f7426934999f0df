import { AppError } from '../../core/app-error.js';

/** SQLSTATEs the gateway answers with (from the PostgreSQL error code appendix). */
export const SQLSTATE = {
  protocolViolation: '08P01',
  connectionFailure: '08006',
  sqlclientUnableToEstablishSqlconnection: '08001',
  cannotConnectNow: '57P03',
  tooManyConnections: '53300',
  programLimitExceeded: '54000',
  adminShutdown: '57P01',
  invalidPassword: '28P01',
  invalidAuthorization: '28000',
  invalidCatalogName: '3D000',
  insufficientPrivilege: '42501',
  featureNotSupported: '0A000',
  internalError: 'XX000',
} as const;

type Sqlstate = (typeof SQLSTATE)[keyof typeof SQLSTATE];

interface GatewayErrorSpec {
  /** What the client reads in the ErrorResponse's code field. */
  readonly sqlstate: Sqlstate;
  /** The HTTP status should the error reach the API (e.g. an upstream probe). */
  readonly status: number;
  readonly description: string;
}

/**
 * Every gateway error code, once: its SQLSTATE on the wire, its HTTP status and meaning. A
 * GatewayError takes its code only; nothing pairs a code with a SQLSTATE by hand.
 */
export const GATEWAY_ERRORS = {
  protocol_violation: { sqlstate: SQLSTATE.protocolViolation, status: 400, description: 'The peer broke the framing or sent a message that makes no sense at this point.' },
  tls_failed: { sqlstate: SQLSTATE.protocolViolation, status: 400, description: 'The TLS handshake with the client failed.' },
  unsupported_protocol: { sqlstate: SQLSTATE.featureNotSupported, status: 400, description: 'The client speaks a frontend protocol version other than 3.0.' },
  bad_startup: { sqlstate: SQLSTATE.invalidAuthorization, status: 400, description: 'The startup message names no user.' },
  tls_required: { sqlstate: SQLSTATE.invalidAuthorization, status: 400, description: 'A first login with a token came without TLS.' },
  auth_failed: { sqlstate: SQLSTATE.invalidPassword, status: 401, description: 'The password or token did not authenticate the user.' },
  unsupported: { sqlstate: SQLSTATE.featureNotSupported, status: 400, description: 'The session asks for something the gateway does not do (replication, a client encoding other than UTF8).' },
  unknown_resource: { sqlstate: SQLSTATE.invalidCatalogName, status: 400, description: 'The database name is no registered resource.' },
  no_grant: { sqlstate: SQLSTATE.insufficientPrivilege, status: 400, description: 'The user holds no active access grant on the resource.' },
  too_many_sessions: { sqlstate: SQLSTATE.tooManyConnections, status: 400, description: 'The user holds gateway.maxSessionsPerUser sessions on the resource already.' },
  session_limit: { sqlstate: SQLSTATE.insufficientPrivilege, status: 400, description: 'The client asked at startup for session limits above the resource\'s (guardrails/session-limits.ts).' },
  lexing_mismatch: { sqlstate: SQLSTATE.featureNotSupported, status: 400, description: 'A setting would make the server read statement text otherwise than the gateway does.' },
  masking_unsupported: { sqlstate: SQLSTATE.featureNotSupported, status: 400, description: 'A binary column of a type the masker cannot read would need masking.' },
  message_too_large: { sqlstate: SQLSTATE.programLimitExceeded, status: 400, description: 'A protocol message is over the gateway\'s limit for its type.' },
  connection_closed: { sqlstate: SQLSTATE.connectionFailure, status: 400, description: 'The peer closed the connection.' },
  timeout: { sqlstate: SQLSTATE.connectionFailure, status: 400, description: 'The peer sent nothing in time.' },
  catalog: { sqlstate: SQLSTATE.connectionFailure, status: 400, description: 'The catalog lookup on the upstream failed.' },
  upstream_unavailable: { sqlstate: SQLSTATE.sqlclientUnableToEstablishSqlconnection, status: 503, description: 'The gateway cannot reach or log in to the upstream database (not the client\'s own login failing).' },
  session_terminated: { sqlstate: SQLSTATE.adminShutdown, status: 400, description: 'The gateway ended the session (grant expired or revoked, resource removed, shutdown).' },
  // API errors met during a session (a token or grant lookup), by their HTTP status.
  unauthorized: { sqlstate: SQLSTATE.invalidPassword, status: 401, description: 'An API check during the session answered 401.' },
  forbidden: { sqlstate: SQLSTATE.insufficientPrivilege, status: 403, description: 'An API check during the session answered 403.' },
  not_found: { sqlstate: SQLSTATE.invalidCatalogName, status: 404, description: 'An API check during the session answered 404.' },
  unavailable: { sqlstate: SQLSTATE.cannotConnectNow, status: 503, description: 'A dependency (the state database) was unavailable during the session.' },
  internal: { sqlstate: SQLSTATE.internalError, status: 500, description: 'An unexpected failure (logged with its cause); the client reads a vague message.' },
} as const satisfies Record<string, GatewayErrorSpec>;

export type GatewayErrorCode = keyof typeof GATEWAY_ERRORS;

export interface GatewayErrorOptions {
  /** FATAL ends the connection; ERROR leaves it usable. */
  fatal?: boolean;
  cause?: unknown;
  context?: Record<string, unknown>;
}

/**
 * Gateway failures carry a SQLSTATE as well as the project's stable code, so the same error can
 * be answered as an ErrorResponse on the wire and as JSON in the API. Both come from
 * GATEWAY_ERRORS.
 */
export class GatewayError extends AppError {
  override readonly code: GatewayErrorCode;
  readonly sqlstate: Sqlstate;
  /** FATAL ends the connection; ERROR leaves it usable. */
  readonly fatal: boolean;

  constructor(code: GatewayErrorCode, message: string, opts: GatewayErrorOptions = {}) {
    const spec: GatewayErrorSpec = GATEWAY_ERRORS[code];
    super(code, spec.status, message, { cause: opts.cause, context: opts.context });
    this.name = 'GatewayError';
    this.code = code;
    this.sqlstate = spec.sqlstate;
    this.fatal = opts.fatal ?? false;
  }
}

/** The peer broke the framing or sent a message that makes no sense at this point. */
export class ProtocolViolation extends GatewayError {
  constructor(message: string) {
    super('protocol_violation', message, { fatal: true });
  }
}

/** The gateway code an API error raised during a session is answered with, by its HTTP status. */
const BY_STATUS: ReadonlyMap<number, GatewayErrorCode> = new Map([
  [401, 'unauthorized'], [403, 'forbidden'], [404, 'not_found'], [503, 'unavailable'],
]);

/** Maps any thrown value to what the client should see; unknown failures stay vague. */
export function toGatewayError(err: unknown): GatewayError {
  if (err instanceof GatewayError) return err;
  if (err instanceof AppError) {
    return new GatewayError(BY_STATUS.get(err.status) ?? 'internal', err.message, { fatal: true, cause: err });
  }
  return new GatewayError('internal', 'internal gateway error', { fatal: true, cause: err });
}
