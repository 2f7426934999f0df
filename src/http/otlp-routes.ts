import { gunzip, inflate } from 'node:zlib';
import { promisify } from 'node:util';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { decodeRequest, encodeExportResponse, encodeStatus, OtlpDecodeError } from '../otlp/index.js';
import { rowCount, type TelemetryBatches } from '../telemetry/index.js';
import { apiError, AppError } from '../core/app-error.js';
import { registerCors, type CorsPolicy } from './cors.js';
import { metrics } from '../core/metrics.js';

/**
 * OTLP/HTTP ingest: POST /v1/traces|logs|metrics, protobuf or JSON, optionally gzip.
 * Answers in the request's content type; errors carry a google.rpc.Status body
 * (https://opentelemetry.io/docs/specs/otlp/#failures-1).
 */

type Format = 'protobuf' | 'json';
type SignalPath = 'traces' | 'logs' | 'metrics';

export interface OtlpRouteOptions {
  /** Largest accepted body, checked before and after decompression. */
  maxBodyBytes: number;
  submit: (batches: TelemetryBatches) => Promise<void>;
  /** Called after a successful submit with the committed batches; must not reject (errors/ derives error events). */
  onIngested?: (batches: TelemetryBatches) => Promise<void>;
  /** Called before decoding; throws AppError to refuse (e.g. ingest auth). */
  authorize: (req: FastifyRequest) => Promise<void>;
  /** Which browser origins may send (cors.ts); others are refused with 403. */
  cors: CorsPolicy;
}

const gunzipAsync = promisify(gunzip);
const inflateAsync = promisify(inflate);

// gRPC status codes used in google.rpc.Status bodies.
const GRPC_INVALID_ARGUMENT = 3;
const GRPC_RESOURCE_EXHAUSTED = 8;
const GRPC_UNAVAILABLE = 14;
const GRPC_UNAUTHENTICATED = 16;
const GRPC_PERMISSION_DENIED = 7;
const GRPC_UNIMPLEMENTED = 12;

function formatOf(contentType: string | undefined): Format | null {
  if (contentType === undefined) return null;
  const semi = contentType.indexOf(';');
  const mime = (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  if (mime === 'application/x-protobuf' || mime === 'application/protobuf') return 'protobuf';
  if (mime === 'application/json') return 'json';
  return null;
}

function contentTypeOf(format: Format): string {
  return format === 'json' ? 'application/json' : 'application/x-protobuf';
}

function grpcCodeFor(status: number): number {
  if (status === 429) return GRPC_RESOURCE_EXHAUSTED;
  if (status === 503) return GRPC_UNAVAILABLE;
  if (status === 401) return GRPC_UNAUTHENTICATED;
  if (status === 403) return GRPC_PERMISSION_DENIED;
  if (status === 415) return GRPC_UNIMPLEMENTED;
  return GRPC_INVALID_ARGUMENT;
}

function sendStatus(reply: FastifyReply, format: Format, status: number, message: string, retryAfterS?: number): FastifyReply {
  if (retryAfterS !== undefined) void reply.header('retry-after', String(retryAfterS));
  return reply
    .code(status)
    .header('content-type', contentTypeOf(format))
    .send(encodeStatus(format, grpcCodeFor(status), message));
}

async function decompress(body: Buffer, encoding: string | undefined, max: number): Promise<Buffer> {
  const enc = (encoding ?? 'identity').trim().toLowerCase();
  if (enc === 'identity' || enc === '') return body;
  const opts = { maxOutputLength: max };
  try {
    if (enc === 'gzip' || enc === 'x-gzip') return await gunzipAsync(body, opts);
    if (enc === 'deflate') return await inflateAsync(body, opts);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' || err instanceof RangeError) {
      throw apiError('payload_too_large', `decompressed body exceeds the limit of ${max} bytes`);
    }
    throw apiError('bad_request', `invalid ${enc} body: ${(err as Error).message}`);
  }
  throw apiError('unsupported_encoding', `unsupported Content-Encoding '${enc}' (use gzip, deflate or identity)`);
}

export function registerOtlpRoutes(app: FastifyInstance, opts: OtlpRouteOptions): void {
  // OTLP bodies are read raw: the decoders want bytes, and JSON is parsed by the OTLP JSON decoder.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: opts.maxBodyBytes }, (_req, body, done) => {
    done(null, body);
  });

  registerCors(app, opts.cors, ['/v1/traces', '/v1/logs', '/v1/metrics'], true, (reply, origin) =>
    sendStatus(reply, 'json', 403, `origin '${origin}' may not send OTLP here (tightloop up --cors-origins)`));

  const counted = (signal: SignalPath, status: number): void => {
    metrics.inc('tightloop_otlp_requests_total', 'OTLP export requests by signal and HTTP status (429: refused, write queue full).', { signal, status: String(status) });
  };
  const handle = (signal: SignalPath) => async (req: FastifyRequest, reply: FastifyReply) => {
    const format = formatOf(req.headers['content-type']);
    if (format === null) {
      counted(signal, 415);
      return sendStatus(reply, 'json', 415,
        `unsupported Content-Type '${req.headers['content-type'] ?? ''}': use application/x-protobuf or application/json`);
    }
    try {
      await opts.authorize(req);
      const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const body = await decompress(raw, req.headers['content-encoding'], opts.maxBodyBytes);
      if (body.length > opts.maxBodyBytes) {
        throw apiError('payload_too_large', `body exceeds the limit of ${opts.maxBodyBytes} bytes`);
      }
      const { batches, rejected, rejectMessage } = decodeRequest(signal, format, body);
      if (rowCount(batches) > 0) {
        await opts.submit(batches);
        if (opts.onIngested !== undefined) await opts.onIngested(batches);
        metrics.inc('tightloop_otlp_accepted_items_total', 'Spans, log records and metric points accepted over OTLP.', { signal }, rowCount(batches));
      }
      counted(signal, 200);
      return reply
        .code(200)
        .header('content-type', contentTypeOf(format))
        .send(encodeExportResponse(signal, format, rejected, rejectMessage));
    } catch (err) {
      if (err instanceof OtlpDecodeError) {
        counted(signal, 400);
        return sendStatus(reply, format, 400, `invalid OTLP ${format} ${signal} request: ${err.message}`);
      }
      if (err instanceof AppError) {
        if (err.status >= 500 && err.status !== 503) req.log.error({ err }, 'ingest failed');
        counted(signal, err.status);
        return sendStatus(reply, format, err.status, err.message, err.retryAfterS);
      }
      req.log.error({ err }, 'ingest failed');
      counted(signal, 503);
      return sendStatus(reply, format, 503, 'ingest temporarily unavailable', 1);
    }
  };

  app.post('/v1/traces', handle('traces'));
  app.post('/v1/logs', handle('logs'));
  app.post('/v1/metrics', handle('metrics'));

  // Fastify rejects bodies over bodyLimit before our handler runs; answer in OTLP's shape.
  app.setErrorHandler((err: { statusCode?: number; code?: string; message: string }, req, reply) => {
    const format = formatOf(req.headers['content-type']) ?? 'json';
    const status = err.statusCode ?? 500;
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || status === 413) {
      return sendStatus(reply, format, 413, `body exceeds the limit of ${opts.maxBodyBytes} bytes`);
    }
    if (status >= 400 && status < 500) return sendStatus(reply, format, status, err.message);
    req.log.error({ err }, 'ingest failed');
    return sendStatus(reply, format, 503, 'ingest temporarily unavailable', 1);
  });
}
