/**
 * The one error an OTLP decoder throws: the request as a whole is malformed (truncated protobuf,
 * bad wire type, wrong JSON types). Items that are merely unacceptable (a span with an invalid
 * trace id) are not errors: they are dropped and counted as rejected.
 */
export class OtlpDecodeError extends Error {
  /** Where it went wrong: a JSON path (`resourceSpans[0].scopeSpans[1]...`) or `byte N`. */
  path: string;
  /** What went wrong, without the path. */
  readonly reason: string;

  constructor(reason: string, path = '') {
    super(path === '' ? reason : `${path}: ${reason}`);
    this.name = 'OtlpDecodeError';
    this.reason = reason;
    this.path = path;
  }

  /**
   * Prepends a path segment (`spans[3]`, `status`) as the error bubbles out of nested
   * objects, so decoders only pay for path bookkeeping when something is actually wrong.
   */
  under(segment: string): this {
    this.path = this.path === '' ? segment : this.path[0] === '[' ? segment + this.path : `${segment}.${this.path}`;
    this.message = `${this.path}: ${this.reason}`;
    return this;
  }
}

/** Rethrows `err` with `segment` prepended when it is an OtlpDecodeError; anything else as is. */
export function rethrowUnder(err: unknown, segment: string): never {
  if (err instanceof OtlpDecodeError) throw err.under(segment);
  throw err;
}
