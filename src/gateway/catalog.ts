import type { Logger } from 'pino';
import { COLUMNS_SQL, CONSTRAINT_NAMES_SQL, samplePlan, SYSTEM_COLUMNS_SQL, SYSTEM_RELATIONS_SQL, type CatalogColumn, type SamplePlan } from './masking/classify.js';
import type { Masker } from './masking/index.js';
import { resolveCredential, type CredentialSources, type Resource } from './resources.js';
import { connectUpstream, type UpstreamConnection } from './upstream.js';
import { TERMINATE } from './wire/encode.js';
import { decodeErrorFields } from './wire/decode.js';
import { queryMessage } from './wire/encode.js';
import { GatewayError } from './wire/errors.js';
import { SocketReader } from './wire/socket-reader.js';

/**
 * Catalog lookups on a fresh upstream connection, before the relay takes it over: the views
 * (and materialized views) of the database with their definitions, so masking's column rules
 * follow lineage through them (masking/masker.ts).
 */

export interface ViewDefinition {
  name: string;
  definition: string;
}

const VIEWS_SQL = `SELECT c.relname, pg_catalog.pg_get_viewdef(c.oid) FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('v', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'`;

/** Runs the views query; the connection is left idle, paused, with nothing unread. */
export async function loadViews(up: UpstreamConnection): Promise<ViewDefinition[]> {
  const rows = await runQuery(up, VIEWS_SQL);
  return rows.flatMap(([name, definition]) => (typeof name === 'string' && typeof definition === 'string' ? [{ name, definition }] : []));
}

export interface CatalogSnapshot {
  views: ViewDefinition[];
  /** Every column of every table and view the login may read. */
  columns: CatalogColumn[];
  /** Relation names of pg_catalog and information_schema. */
  system: string[];
  /** Columns of the system relations, as [relation, column]. */
  systemColumns: [string, string][];
  /** Names of constraints and indexes. */
  constraints: string[];
  /** The columns of the tables sampled this time (new ones, and those sampled too long ago). */
  fresh: CatalogColumn[];
  plan: SamplePlan;
  /** Rows of the sampling query (masking/classify.ts). */
  samples: (string | null)[][];
}

/**
 * What masking needs from the catalog: view definitions, the columns of tables and views, and a
 * sample of every table's values for classification. Any failure throws (the session is refused:
 * masking never runs on less than it was told to know).
 */
export async function loadCatalog(up: UpstreamConnection, wanted: (table: string) => boolean = () => true): Promise<CatalogSnapshot> {
  const views = await loadViews(up);
  const columns = (await runQuery(up, COLUMNS_SQL)).flatMap(([schema, table, column, kind, type]) =>
    schema === null || table === null || column === null || kind === null || type === null ? [] : [{ schema, table, column, kind, type }]);
  const system = (await runQuery(up, SYSTEM_RELATIONS_SQL)).flatMap(([name]) => (name === null ? [] : [name]));
  const systemColumns = (await runQuery(up, SYSTEM_COLUMNS_SQL)).flatMap(([rel, col]): [string, string][] => (rel === null || col === null ? [] : [[rel, col]]));
  const constraints = (await runQuery(up, CONSTRAINT_NAMES_SQL)).flatMap(([name]) => (name === null ? [] : [name]));
  const fresh = columns.filter((c) => wanted(`${c.schema}.${c.table}`));
  const plan = samplePlan(fresh);
  const samples = plan.sql === undefined ? [] : await runQuery(up, plan.sql);
  return { views, columns, system, systemColumns, constraints, fresh, plan, samples };
}

/**
 * Refreshes a masker's catalog on a connection of its own, once at a time per masker; a failure
 * is logged and the old catalog stays until it is too old (masker.catalogState: `missing`), when
 * sessions load it themselves again or are refused.
 */
export function refreshCatalog(resource: Resource, password: string, masker: Masker, log: Logger): void {
  if (!masker.beginRefresh()) return;
  let up: UpstreamConnection | undefined;
  const run = async (): Promise<void> => {
    up = await connectUpstream(resource, resource.user, password, { database: resource.database }, 10_000);
    masker.setCatalog(await loadCatalog(up, (t) => masker.sampleWanted(t)));
  };
  void run().catch((err: unknown) => log.warn({ resource: resource.name, err: (err as Error).message }, 'masking catalog refresh failed'))
    .finally(() => {
      masker.endRefresh();
      if (up !== undefined) {
        up.socket.end(TERMINATE);
        up.socket.destroy();
      }
    });
}

/**
 * Whether the upstream login is more powerful than the gateway needs (a superuser, or one that
 * bypasses row-level security): warnings for `resource add`.
 */
export async function loginWarnings(up: UpstreamConnection): Promise<string[]> {
  const rows = await runQuery(up, 'SELECT rolsuper::text, rolbypassrls::text, current_user FROM pg_catalog.pg_roles WHERE rolname = current_user');
  const [superuser, bypassRls, user] = rows[0] ?? [];
  const out: string[] = [];
  if (superuser === 'true') {
    out.push(`upstream login "${user ?? '?'}" is a superuser: a superuser can read server files and every session's queries, past any guardrail; give the gateway a least-privilege role (docs/gateway.md, "The upstream login")`);
  } else if (bypassRls === 'true') out.push(`upstream login "${user ?? '?'}" bypasses row-level security`);
  return out;
}

/** One simple query on an idle upstream connection before (or instead of) the relay: its rows as text. */
export async function runQuery(up: UpstreamConnection, sql: string): Promise<(string | null)[][]> {
  if (up.leftover.length > 0) throw new GatewayError('catalog', 'upstream sent data before the catalog lookup', { fatal: true });
  const reader = new SocketReader(up.socket, 64 * 1024 * 1024);
  up.socket.resume(); // paused since the login; detach() pauses it again
  const rows: (string | null)[][] = [];
  let error: string | undefined;
  try {
    up.socket.write(queryMessage(sql));
    for (;;) {
      const m = await reader.next(false, 10_000);
      if (m.type === 'D') {
        const cols: (string | null)[] = [];
        let off = 2;
        for (let i = 0; i < m.body.readInt16BE(0); i++) {
          const len = m.body.readInt32BE(off);
          cols.push(len < 0 ? null : m.body.toString('utf8', off + 4, off + 4 + len));
          off += 4 + Math.max(len, 0);
        }
        rows.push(cols);
      } else if (m.type === 'E') error = decodeErrorFields(m.body).get('M') ?? 'error';
      else if (m.type === 'Z') break;
    }
  } finally {
    up.leftover = reader.detach();
  }
  if (error !== undefined) throw new GatewayError('catalog', `catalog lookup failed upstream: ${error}`, { fatal: true });
  return rows;
}

/** Logs in upstream as the resource's login and returns loginWarnings, or why it could not check. */
export async function checkLogin(resource: Resource, sources: CredentialSources): Promise<string[]> {
  let up: UpstreamConnection | undefined;
  try {
    up = await connectUpstream(resource, resource.user, await resolveCredential(resource.credentialRef, sources), { database: resource.database }, 5_000);
    return await loginWarnings(up);
  } catch (err) {
    return [`could not check the upstream login: ${(err as Error).message}`];
  } finally {
    if (up !== undefined) {
      up.socket.end(TERMINATE);
      up.socket.destroy();
    }
  }
}
