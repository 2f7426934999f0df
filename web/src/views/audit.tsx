import type { ComponentChildren, JSX } from 'preact';
import { useState } from 'preact/hooks';
import { api } from '../api';
import { useLoad } from '../hooks';
import type { ViewProps } from '../main';
import { href, patch } from '../router';
import { fmtIso } from '../time';
import { Badge, Field, LoadState, Panel } from '../ui';

/**
 * Audit: the hash-chained trail, newest first, as readable rows (a statement shows its SQL, the
 * decision and what was masked); ids link to their objects; filter by kind from the kinds in the
 * range, by actor, resource or session; `?seq=N` opens one record (timeline entries link there).
 */

interface AuditRecord { seq: number; id: string; at: string; kind: string; actor: string | null; resource: string | null; session: string | null; data: Record<string, unknown>; hash: string }
type Verify = { ok: true; records: number; head: { seq: number; hash: string } } | { ok: false; records?: number; brokenAt?: number; reason?: string; [k: string]: unknown };

/** Records read per query (the API's maximum); the newest SHOWN of them are listed. */
const READ = 5000;
const SHOWN = 500;

/** Data keys holding ids, and where each id leads. */
const ID_LINKS: Record<string, (v: string) => string> = {
  deployId: (v) => `/deploys/${encodeURIComponent(v)}`,
  rollbackDeployId: (v) => `/deploys/${encodeURIComponent(v)}`,
  incident: (v) => `/incidents/${encodeURIComponent(v)}`,
  incidentId: (v) => `/incidents/${encodeURIComponent(v)}`,
  traceId: (v) => `/traces/${encodeURIComponent(v)}`,
  groupId: (v) => `/errors/${encodeURIComponent(v)}`,
  request: () => '/access',
  grant: () => '/access',
};

function IdLinks(props: { data: Record<string, unknown> }): JSX.Element | null {
  const links = Object.entries(props.data).filter(([k, v]) => ID_LINKS[k] !== undefined && typeof v === 'string' && v !== '');
  if (links.length === 0) return null;
  return <>{links.map(([k, v]) => <a key={k} class="id-link" data-id-link={k} href={ID_LINKS[k](v as string)}>{k} {(v as string).slice(0, 10)}…</a>)}</>;
}

const scalar = (v: unknown): boolean => v === null || ['string', 'number', 'boolean'].includes(typeof v);

/** "masked 9 values: name 3, email 3, phone 3". */
function maskedText(m: unknown): string | null {
  if (m === null || typeof m !== 'object') return null;
  const e = Object.entries(m as Record<string, number>).filter(([, n]) => typeof n === 'number' && n > 0);
  if (e.length === 0) return null;
  const total = e.reduce((a, [, n]) => a + n, 0);
  return `masked ${total} value${total === 1 ? '' : 's'}: ${e.map(([k, n]) => `${k.replace(/^column:/, '')} ${n}`).join(', ')}`;
}

/** What a record says, in a sentence or two. */
function Summary(props: { r: AuditRecord }): JSX.Element {
  const d = props.r.data;
  if (props.r.kind === 'statement') {
    const masked = maskedText(d.masked);
    return (
      <div>
        <code class="sql">{String(d.sql ?? '')}</code>
        <div class="small">
          <Badge value={String(d.decision ?? '—')} tone={d.decision === 'allow' ? 'ok' : d.decision === 'deny' || d.decision === 'block' ? 'bad' : undefined} />
          {d.rule != null && <> rule <strong>{String(d.rule)}</strong></>}
          {typeof d.rows === 'number' && <> · {d.rows} row{d.rows === 1 ? '' : 's'}</>}
          {typeof d.durationMs === 'number' && <> · {Math.round(d.durationMs)} ms</>}
          {masked !== null && <> · <span data-masked>{masked}</span></>}
        </div>
      </div>
    );
  }
  const parts: ComponentChildren[] = [];
  for (const [k, v] of Object.entries(d)) {
    if (ID_LINKS[k] !== undefined || !scalar(v) || v === null || k === 'output') continue;
    const s = String(v);
    parts.push(<span key={k} class="kvp"><span class="muted">{k}</span> {s.length > 80 ? `${s.slice(0, 80)}…` : s}</span>);
  }
  return <div class="small">{parts}</div>;
}

export function AuditView(props: ViewProps): JSX.Element {
  const { route, range } = props;
  const q = route.query;
  const seq = q.get('seq');
  const kind = q.get('kind') ?? '';
  const filters = { actor: q.get('actor') ?? '', resource: q.get('resource') ?? '', session: q.get('session') ?? '' };
  const [form, setForm] = useState(filters);
  const records = useLoad((signal) => (seq !== null && /^\d+$/.test(seq)
    ? api<{ records: AuditRecord[] }>('/api/audit', { params: { after: Number(seq) - 1, limit: 1 }, signal })
    : api<{ records: AuditRecord[] }>('/api/audit', { params: { ...filters, from: range.fromMs, to: range.toMs, limit: READ }, signal })),
  [seq, filters.actor, filters.resource, filters.session, range.fromMs, range.toMs]);
  const verify = useLoad((signal) => api<Verify>('/api/audit/verify', { signal }), []);
  const kinds = new Map<string, number>();
  for (const r of records.data?.records ?? []) kinds.set(r.kind, (kinds.get(r.kind) ?? 0) + 1);
  return (
    <>
      <h1>Audit</h1>
      <Panel title="Chain verification" id="verify" actions={<button type="button" onClick={verify.reload}>Verify again</button>}>
        <LoadState loaded={verify}>
          {(v) => v.ok ? (
            <p data-chain="ok"><Badge value="verified" tone="ok" /> {v.records} records, head #{v.head.seq} <code class="small">{v.head.hash.slice(0, 16)}…</code></p>
          ) : (
            <p data-chain="broken"><Badge value="broken" tone="bad" /> {JSON.stringify(v)}</p>
          )}
        </LoadState>
      </Panel>
      {seq !== null ? <p>Record #{seq} · <a href={href('/audit')}>the whole trail</a></p> : (
        <form class="filters" role="search" aria-label="Filter the audit trail" onSubmit={(e) => { e.preventDefault(); patch(form); }}>
          <Field label="Kind">
            <select name="kind" value={kind} onChange={(e) => patch({ kind: e.currentTarget.value })}>
              <option value="">any ({records.data?.records.length ?? 0})</option>
              {kind !== '' && !kinds.has(kind) && <option value={kind}>{kind} (0)</option>}
              {[...kinds.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([k, n]) => <option key={k} value={k}>{k} ({n})</option>)}
            </select>
          </Field>
          <Field label="Actor"><input name="actor" value={form.actor} onInput={(e) => setForm({ ...form, actor: e.currentTarget.value })} /></Field>
          <Field label="Resource"><input name="resource" value={form.resource} onInput={(e) => setForm({ ...form, resource: e.currentTarget.value })} /></Field>
          <Field label="Session"><input name="session" value={form.session} onInput={(e) => setForm({ ...form, session: e.currentTarget.value })} /></Field>
          <button type="submit" class="primary">Filter</button>
        </form>
      )}
      <Panel title="Trail (newest first)" id="trail">
        <LoadState loaded={records} empty={(d) => d.records.filter((r) => kind === '' || r.kind === kind).length === 0} emptyText="No audit record matches in this time range.">
          {(d) => {
            const rows = d.records.filter((r) => kind === '' || r.kind === kind).reverse();
            return (
              <div class="table-scroll">
                {d.records.length === READ && <p class="muted small">The range holds more than {READ} records: the newest of the first {READ} are shown; narrow the range.</p>}
                <table class="table">
                  <thead><tr><th scope="col" class="num">#</th><th scope="col">At</th><th scope="col">Kind</th><th scope="col">Actor</th><th scope="col">Resource</th><th scope="col">What</th><th scope="col">Links</th></tr></thead>
                  <tbody>
                    {rows.slice(0, SHOWN).map((r) => (
                      <tr key={r.seq} data-seq={r.seq}>
                        <td class="num"><a href={href('/audit', { seq: String(r.seq) })}>{r.seq}</a></td>
                        <td class="nowrap">{fmtIso(r.at)}</td>
                        <td><code>{r.kind}</code></td>
                        <td>{r.actor ?? '—'}</td>
                        <td>{r.resource ?? '—'}</td>
                        <td class="data">
                          <Summary r={r} />
                          <details><summary class="muted small">all fields</summary><code>{JSON.stringify(r.data)}</code></details>
                        </td>
                        <td class="links">
                          <IdLinks data={r.data} />
                          {r.session !== null && <a class="id-link" href={href('/audit', { session: r.session })}>session</a>}
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            );
          }}
        </LoadState>
      </Panel>
    </>
  );
}
