import type { UpstreamConnection } from './upstream.js';
import { decodeErrorFields } from './wire/decode.js';
import { queryMessage } from './wire/encode.js';
import { GatewayError, SQLSTATE } from './wire/errors.js';
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
  if (up.leftover.length > 0) throw new GatewayError('catalog', SQLSTATE.connectionFailure, 'upstream sent data before the catalog lookup', { fatal: true });
  const reader = new SocketReader(up.socket, 64 * 1024 * 1024);
  up.socket.resume(); // paused since the login; detach() pauses it again
  const views: ViewDefinition[] = [];
  let error: string | undefined;
  try {
    up.socket.write(queryMessage(VIEWS_SQL));
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
        if (cols[0] !== null && cols[0] !== undefined && typeof cols[1] === 'string') views.push({ name: cols[0], definition: cols[1] });
      } else if (m.type === 'E') error = decodeErrorFields(m.body).get('M') ?? 'error';
      else if (m.type === 'Z') break;
    }
  } finally {
    up.leftover = reader.detach();
  }
  if (error !== undefined) throw new GatewayError('catalog', SQLSTATE.connectionFailure, `catalog lookup failed upstream: ${error}`, { fatal: true });
  return views;
}
