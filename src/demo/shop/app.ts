import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { context, metrics, SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api';
import { logs, SeverityNumber } from '@opentelemetry/api-logs';
import * as Sentry from '@sentry/node';
import pg from 'pg';

/**
 * The demo's shop: a tiny HTTP service over the orders database. Version 1 is healthy. Version 2
 * adds loyalty discounts with two bugs a real team could ship: the loyalty lookup is slow (it
 * waits 120 ms in PostgreSQL, standing in for a missing index), and customers without a loyalty
 * record (every fifth customer) crash checkout with a TypeError.
 *
 * Every request is a SERVER span with the HTTP semantic-convention attributes; every query a
 * CLIENT span; failures are reported to Sentry (with the trace id) and logged in the trace.
 */

export interface ShopOptions {
  version: string;
  databaseUrl: string;
  port: number;
  host?: string;
}

export interface RunningShop {
  port: number;
  close(): Promise<void>;
}

const tracer = trace.getTracer('shop');
const logger = logs.getLogger('shop');
const meter = metrics.getMeter('shop');
const checkouts = meter.createCounter('shop.checkouts', { description: 'checkouts attempted, by outcome' });

/** Whether this version has the loyalty-discount feature (and its bugs). */
function hasLoyalty(version: string): boolean {
  return version.startsWith('2');
}

async function query<R extends pg.QueryResultRow>(pool: pg.Pool, name: string, text: string, values: unknown[] = []): Promise<pg.QueryResult<R>> {
  return tracer.startActiveSpan(name, { kind: SpanKind.CLIENT, attributes: {
    'db.system.name': 'postgresql', 'db.namespace': 'orders', 'db.query.text': text, 'db.operation.name': name.split(' ')[0],
  } }, async (span) => {
    try {
      const r = await pool.query<R>(text, values);
      span.setAttribute('db.response.returned_rows', r.rowCount ?? 0);
      return r;
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
      throw err;
    } finally {
      span.end();
    }
  });
}

interface Loyalty { discount_pct: number }

async function checkout(pool: pg.Pool, version: string, customerId: number, productId: number, qty: number): Promise<{ orderId: number; totalCents: number }> {
  const product = await query<{ price_cents: number }>(pool, 'SELECT products', 'SELECT price_cents FROM products WHERE id = $1', [productId]);
  if (product.rows.length === 0) throw Object.assign(new Error(`no product ${productId}`), { status: 404 });
  let totalCents = product.rows[0].price_cents * qty;
  if (hasLoyalty(version)) {
    const loyalty = await query<Loyalty>(pool, 'SELECT loyalty',
      'SELECT l.discount_pct FROM loyalty l, pg_sleep(0.12) WHERE l.customer_id = $1', [customerId]);
    // The v2 bug: customers without a loyalty record have no row here.
    const row = loyalty.rows[0];
    totalCents = Math.round(totalCents * (100 - row.discount_pct) / 100);
  }
  const order = await query<{ id: number }>(pool, 'INSERT orders',
    'INSERT INTO orders (customer_id, product_id, qty, total_cents) VALUES ($1, $2, $3, $4) RETURNING id', [customerId, productId, qty, totalCents]);
  return { orderId: Number(order.rows[0].id), totalCents };
}

function send(res: ServerResponse, status: number, body: unknown, version: string): void {
  res.writeHead(status, { 'content-type': 'application/json', 'x-shop-version': version });
  res.end(JSON.stringify(body));
}

function reportError(err: Error, span: Span, version: string, route: string): void {
  const { traceId, spanId } = span.spanContext();
  span.setStatus({ code: SpanStatusCode.ERROR, message: err.message });
  span.setAttribute('error.type', err.name);
  logger.emit({ severityNumber: SeverityNumber.ERROR, severityText: 'ERROR', body: `checkout failed: ${err.message}`,
    attributes: { 'http.route': route }, context: trace.setSpan(context.active(), span) });
  Sentry.withScope((scope) => {
    scope.setPropagationContext({ traceId, propagationSpanId: spanId, sampleRand: Math.random() });
    scope.setContext('otel', { resource: { 'service.name': process.env.OTEL_SERVICE_NAME ?? 'shop', 'service.version': version } });
    scope.setTag('route', route);
    Sentry.captureException(err);
  });
}

async function handle(pool: pg.Pool, version: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://shop');
  const route = `${req.method ?? 'GET'} ${url.pathname}`;
  if (url.pathname === '/health') return send(res, 200, { status: 'ok', version }, version);
  await tracer.startActiveSpan(route, { kind: SpanKind.SERVER, attributes: {
    'http.request.method': req.method ?? 'GET', 'http.route': url.pathname, 'url.path': url.pathname,
  } }, async (span) => {
    let status = 200;
    try {
      if (req.method === 'GET' && url.pathname === '/products') {
        const r = await query(pool, 'SELECT products', 'SELECT id, name, price_cents, stock FROM products ORDER BY id');
        send(res, 200, { products: r.rows }, version);
      } else if (req.method === 'POST' && url.pathname === '/checkout') {
        const customerId = Number(url.searchParams.get('customer') ?? 1);
        const productId = Number(url.searchParams.get('product') ?? 1);
        const qty = Number(url.searchParams.get('qty') ?? 1);
        if (![customerId, productId, qty].every((n) => Number.isInteger(n) && n > 0)) {
          status = 400;
          send(res, 400, { error: 'customer, product and qty must be positive integers' }, version);
        } else {
          const order = await checkout(pool, version, customerId, productId, qty);
          checkouts.add(1, { outcome: 'ok' });
          send(res, 200, order, version);
        }
      } else {
        status = 404;
        send(res, 404, { error: 'not found' }, version);
      }
    } catch (err) {
      const e = err as Error & { status?: number };
      status = e.status ?? 500;
      if (status >= 500) {
        checkouts.add(1, { outcome: 'error' });
        reportError(e, span, version, url.pathname);
      }
      if (!res.headersSent) send(res, status, { error: e.message }, version);
    } finally {
      span.setAttribute('http.response.status_code', status);
      span.end();
    }
  });
}

export async function startShop(opts: ShopOptions): Promise<RunningShop> {
  const pool = new pg.Pool({ connectionString: opts.databaseUrl, max: 8 });
  pool.on('error', () => undefined); // a dropped idle connection must not crash the shop
  let inFlight = 0;
  let drained: (() => void) | undefined;
  const server: Server = createServer((req, res) => {
    inFlight++;
    // handle() reports its routes' failures (span, log, Sentry); what escapes it is answered 500.
    handle(pool, opts.version, req, res).catch(() => {
      if (!res.headersSent) send(res, 500, { error: 'internal' }, opts.version);
    }).finally(() => {
      if (--inFlight === 0) drained?.();
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  return {
    port: typeof addr === 'object' && addr !== null ? addr.port : opts.port,
    /** Stops accepting, lets requests in flight finish (up to 5 s), then closes the pool. */
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      if (inFlight > 0) {
        await new Promise<void>((resolve) => {
          drained = resolve;
          setTimeout(resolve, 5_000).unref();
        });
      }
      server.closeAllConnections();
      await closed;
      await pool.end();
    },
  };
}
