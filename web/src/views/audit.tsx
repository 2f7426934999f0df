import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { api } from '../api';
import { useLoad } from '../hooks';
import type { ViewProps } from '../main';
import { patch } from '../router';
import { fmtIso } from '../time';
import { Badge, Field, LoadState, Panel } from '../ui';

/** Audit: the hash-chained trail, filterable, with the chain's verification state. */

interface AuditRecord { seq: number; id: string; at: string; kind: string; actor: string | null; resource: string | null; session: string | null; data: Record<string, unknown>; hash: string }
type Verify = { ok: true; records: number; head: { seq: number; hash: string } } | { ok: false; records?: number; brokenAt?: number; reason?: string; [k: string]: unknown };

export function AuditView(props: ViewProps): JSX.Element {
  const { route, range } = props;
  const q = route.query;
  const filters = { kind: q.get('kind') ?? '', actor: q.get('actor') ?? '', resource: q.get('resource') ?? '' };
  const [form, setForm] = useState(filters);
  const records = useLoad((signal) => api<{ records: AuditRecord[] }>('/api/audit', { params: { ...filters, from: range.fromMs, to: range.toMs, limit: 500 }, signal }),
    [filters.kind, filters.actor, filters.resource, range.fromMs, range.toMs]);
  const verify = useLoad((signal) => api<Verify>('/api/audit/verify', { signal }), []);
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
      <form class="filters" role="search" aria-label="Filter the audit trail" onSubmit={(e) => { e.preventDefault(); patch(form); }}>
        <Field label="Kind"><input name="kind" value={form.kind} placeholder="e.g. access.approved" onInput={(e) => setForm({ ...form, kind: e.currentTarget.value })} /></Field>
        <Field label="Actor"><input name="actor" value={form.actor} onInput={(e) => setForm({ ...form, actor: e.currentTarget.value })} /></Field>
        <Field label="Resource"><input name="resource" value={form.resource} onInput={(e) => setForm({ ...form, resource: e.currentTarget.value })} /></Field>
        <button type="submit" class="primary">Filter</button>
      </form>
      <Panel title="Trail" id="trail">
        <LoadState loaded={records} empty={(d) => d.records.length === 0} emptyText="No audit record matches in this time range.">
          {(d) => (
            <table class="table">
              <thead><tr><th scope="col" class="num">#</th><th scope="col">At</th><th scope="col">Kind</th><th scope="col">Actor</th><th scope="col">Resource</th><th scope="col">Data</th></tr></thead>
              <tbody>
                {d.records.map((r) => (
                  <tr key={r.seq}>
                    <td class="num">{r.seq}</td>
                    <td>{fmtIso(r.at)}</td>
                    <td><code>{r.kind}</code></td>
                    <td>{r.actor ?? '—'}</td>
                    <td>{r.resource ?? '—'}</td>
                    <td class="data"><code>{JSON.stringify(r.data)}</code></td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </LoadState>
      </Panel>
    </>
  );
}
