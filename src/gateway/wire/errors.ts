import { AppError } from '../../core/app-error.js';

/**
 * Gateway failures carry a SQLSTATE as well as the project's stable code, so the same error can
 * be answered as an ErrorResponse on the wire and as JSON in the API.
 */
export class GatewayError extends AppError {
  readonly sqlstate: string;
  /** FATAL ends the connection; ERROR leaves it usable. */
  readonly fatal: boolean;

  constructor(
    code: string,
    sqlstate: string,
    message: string,
    opts: { fatal?: boolean; status?: number; cause?: unknown; context?: Record<string, unknown> } = {},
  ) {
    super(code, opts.status ?? 400, message, { cause: opts.cause, context: opts.context });
    this.name = 'GatewayError';
    this.sqlstate = sqlstate;
    this.fatal = opts.fatal ?? false;
  }
}

/** The peer broke the framing or sent a message that makes no sense at this point. */
export class ProtocolViolation extends GatewayError {
  constructor(message: string) {
    super('protocol_violation', '08P01', message, { fatal: true });
  }
}

/** SQLSTATEs the gateway answers with (from the PostgreSQL error code appendix). */
export const SQLSTATE = {
  protocolViolation: '08P01',
  connectionFailure: '08006',
  cannotConnectNow: '57P03',
  tooManyConnections: '53300',
  adminShutdown: '57P01',
  invalidPassword: '28P01',
  invalidAuthorization: '28000',
  invalidCatalogName: '3D000',
  insufficientPrivilege: '42501',
  featureNotSupported: '0A000',
  internalError: 'XX000',
} as const;

/** Maps any thrown value to what the client should see; unknown failures stay vague. */
export function toGatewayError(err: unknown): GatewayError {
  if (err instanceof GatewayError) return err;
  if (err instanceof AppError) {
    const sqlstate =
      err.status === 401 ? SQLSTATE.invalidPassword
      : err.status === 403 ? SQLSTATE.insufficientPrivilege
      : err.status === 404 ? SQLSTATE.invalidCatalogName
      : err.status === 503 ? SQLSTATE.cannotConnectNow
      : SQLSTATE.internalError;
    return new GatewayError(err.code, sqlstate, err.message, { fatal: true, cause: err });
  }
  return new GatewayError('internal', SQLSTATE.internalError, 'internal gateway error', { fatal: true, cause: err });
}
