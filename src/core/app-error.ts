/**
 * The one error type of tightloop. Every failure a caller should see carries a stable `code`,
 * an HTTP status (the gateway maps codes to SQLSTATE) and optional context. One central handler
 * turns it into `{error:{code,message}}`.
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
    opts: { context?: Record<string, unknown>; cause?: unknown; retryAfterS?: number } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'AppError';
    this.code = code;
    this.status = status;
    this.context = opts.context;
    this.retryAfterS = opts.retryAfterS;
  }
}

export const badRequest = (message: string, context?: Record<string, unknown>): AppError =>
  new AppError('bad_request', 400, message, { context });

export const notFound = (message: string): AppError => new AppError('not_found', 404, message);

export const unauthorized = (message = 'missing or invalid token'): AppError =>
  new AppError('unauthorized', 401, message);
