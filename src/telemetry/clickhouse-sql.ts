/**
 * The ClickHouse connection of the telemetry store: `@clickhouse/client` over the HTTP interface,
 * every user value a bound query parameter (`{name:Type}` in the SQL text), rows as JSONEachRow.
 */
import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import { Readable } from 'node:stream';
import { apiError } from '../core/app-error.js';

export type ChParams = Record<string, unknown>;

/**
 * The µs range of stored times: 1970-01-01 … 2106-02-07, what the tables' day partitions and
 * minute keys (`Date`, `DateTime`) hold without wrapping (a wrapped key would make ClickHouse skip
 * the granules that hold the row), inside DateTime64(9)'s 1900 … 2262.
 */
export const MIN_TIME_US = 0;
export const MAX_TIME_US = 4_294_967_295_000_000;
export type ChRow = Record<string, unknown>;

/** Where and as whom: parsed from `clickhouse://user:pass@host:8123/db` (or `clickhouses://` for TLS). */
export interface ClickHouseLocation {
  url: string;
  username: string;
  password: string;
  database: string;
}

/** Parses a `--telemetry` ClickHouse URL; the password never appears in what describe() returns. */
export function parseClickHouseUrl(raw: string): ClickHouseLocation {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw apiError('bad_telemetry_url', 'telemetry: not a URL (expected clickhouse://user:pass@host:8123/db)');
  }
  const scheme = u.protocol.replace(/:$/, '');
  const tls = scheme === 'clickhouses' || scheme === 'https';
  if (!['clickhouse', 'clickhouses', 'http', 'https'].includes(scheme)) {
    throw apiError('bad_telemetry_url', `telemetry: unknown scheme ${scheme}: (expected clickhouse:// or clickhouses://)`);
  }
  if (u.hostname === '') throw apiError('bad_telemetry_url', 'telemetry: the ClickHouse URL has no host');
  const database = decodeURIComponent(u.pathname.replace(/^\//, '')) || 'default';
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(database)) {
    throw apiError('bad_telemetry_url', `telemetry: database name ${JSON.stringify(database)} is not a plain identifier`);
  }
  const port = u.port || (tls ? '8443' : '8123');
  return {
    url: `${tls ? 'https' : 'http'}://${u.hostname}:${port}`,
    username: decodeURIComponent(u.username) || 'default',
    password: decodeURIComponent(u.password),
    database,
  };
}

/** True for the URLs `--telemetry` reads as ClickHouse. */
export function isClickHouseUrl(raw: string): boolean {
  return /^(clickhouses?|https?):\/\//i.test(raw);
}

/** `clickhouse://user@host:port/db`, for logs and banners (no password). */
export function describeClickHouse(loc: ClickHouseLocation): string {
  return `${loc.url.replace(/^https:/, 'clickhouses:').replace(/^http:/, 'clickhouse:')}/${loc.database} (user ${loc.username})`;
}

export class ChSql {
  readonly client: ClickHouseClient;

  constructor(readonly location: ClickHouseLocation, database = location.database) {
    this.client = createClient({
      url: location.url, username: location.username, password: location.password, database,
      // The store reports failures itself (typed errors, logs); the client would print each one.
      log: { level: ClickHouseLogLevel.OFF },
      compression: { request: false, response: false },
      request_timeout: 60_000,
      clickhouse_settings: { output_format_json_quote_64bit_integers: 0, date_time_output_format: 'iso' },
    });
  }

  async rows<T = ChRow>(query: string, query_params: ChParams = {}): Promise<T[]> {
    const r = await this.client.query({ query, query_params, format: 'JSONEachRow' });
    return r.json<T>();
  }

  /** A SELECT's result as RowBinary bytes (`query` ends in `FORMAT RowBinary`), read with RowBinaryReader. */
  async rowBinary(query: string, query_params: ChParams = {}): Promise<Buffer> {
    const r = await this.client.exec({ query, query_params });
    const parts: Buffer[] = [];
    for await (const chunk of r.stream) parts.push(chunk as Buffer);
    return parts.length === 1 ? parts[0] : Buffer.concat(parts);
  }

  async command(query: string, query_params: ChParams = {}): Promise<void> {
    await this.client.command({ query, query_params });
  }

  /**
   * Runs an `INSERT ... FORMAT` statement with `body` (chunks, in order) as its data. `token` is the INSERT's
   * deduplication token: ClickHouse stores a block once per token, so a retry after a lost
   * response cannot store it twice.
   */
  async insert(query: string, body: Buffer[], token: string, settings: Record<string, string | number> = {}): Promise<void> {
    const r = await this.client.exec({
      query, values: Readable.from(body),
      clickhouse_settings: { ...settings, insert_deduplication_token: token, insert_deduplicate: 1 },
    });
    // The response of an INSERT is empty; reading it to the end releases the socket.
    for await (const chunk of r.stream) void chunk;
  }

  close(): Promise<void> {
    return this.client.close();
  }
}

export const num = (v: unknown): number => (typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : v === null || v === undefined ? 0 : Number(v));
export const str = (v: unknown): string => (v === null || v === undefined ? '' : String(v));

/** An attribute map as stored (values are their JSON text) back to an object. */
export function attrsOf(v: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (v === null || typeof v !== 'object') return out;
  for (const [k, raw] of Object.entries(v as Record<string, string>)) {
    try {
      out[k] = JSON.parse(raw);
    } catch { // a value stored as plain text
      out[k] = raw;
    }
  }
  return out;
}

export function parseJsonText<T>(v: unknown, fallback: T): T {
  if (typeof v !== 'string' || v === '') return fallback;
  try {
    return JSON.parse(v) as T;
  } catch { // not written by this code as JSON: the caller's default
    return fallback;
  }
}
