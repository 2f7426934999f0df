import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { api } from '../api';
import { useLoad } from '../hooks';
import { can, useMe } from '../me';
import type { ViewProps } from '../main';
import { href, navigate, patch } from '../router';
import { ago, fmtIso, fmtTime } from '../time';
import type { ErrorEventLite, ErrorGroup } from '../types';
import { Badge, Bars, Field, LoadState, Panel, Sparkline } from '../ui';
import { IntroducedIn } from './story';

/** Errors: groups with counts and a sparkline; a group's stack trace, releases, traces; resolve / ignore. */

const STATUSES = ['', 'unresolved', 'regressed', 'resolved', 'resolved-in-next-release', 'ignored'];
const BINS = 24;

function GroupSpark(props: { id: string; fromMs: number; toMs: number }): JSX.Element {
  const loaded = useLoad((signal) => api<{ events: ErrorEventLite[] }>(`/api/errors/${props.id}/events`, { params: { limit: 500 }, signal }), [props.id]);
  const bins = new Array<number>(BINS).fill(0);
  const w = (props.toMs - props.fromMs) / BINS;
  for (const e of loaded.data?.events ?? []) {
    const i = Math.floor((e.time - props.fromMs) / w);
    if (i >= 0 && i < BINS) bins[i]++;
  }
  return <Sparkline values={bins} label={`events over time: ${bins.reduce((a, b) => a + b, 0)} in range`} />;
}

interface Frame { filename?: string; abs_path?: string; function?: string; module?: string; lineno?: number; colno?: number; in_app?: boolean }
interface ExceptionValue { type?: string; value?: string; stacktrace?: { frames?: Frame[] } }

/** The stack trace from the event payload: a Sentry event, or an OTel exception's attributes. */
function StackTrace(props: { payload: unknown }): JSX.Element {
  const p = props.payload as { exception?: { values?: ExceptionValue[] }; attributes?: Record<string, unknown> } | null;
  const values = p?.exception?.values;
  if (values !== undefined && values.length > 0) {
    return (
      <div class="stack">
        {values.slice().reverse().map((v, i) => (
          <div key={i}>
            <p><strong>{v.type}</strong>: {v.value}</p>
            <ol class="frames">
              {(v.stacktrace?.frames ?? []).slice().reverse().map((f, j) => (
                <li key={j} class={f.in_app === true ? 'in-app' : 'lib'}>
                  <code>{f.function ?? '?'}</code> <span class="muted">{f.filename ?? f.abs_path ?? f.module}{f.lineno !== undefined ? `:${f.lineno}` : ''}{f.colno !== undefined ? `:${f.colno}` : ''}</span>
                </li>
              ))}
            </ol>
          </div>
        ))}
      </div>
    );
  }
  const st = p?.attributes?.['exception.stacktrace'];
  if (typeof st === 'string') return <pre class="stack">{st}</pre>;
  return <p class="muted">No stack trace in the latest event.</p>;
}

function GroupDetail(props: ViewProps & { id: string }): JSX.Element {
  const loaded = useLoad((signal) => api<{ group: ErrorGroup; releases: Record<string, number>; environments: Record<string, number>; services?: Record<string, number>; latestEvent: ErrorEventLite | null; traceIds: string[] }>(`/api/errors/${props.id}`, { signal }), [props.id]);
  const me = useMe();
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState<string | undefined>();
  const setStatus = async (status: string): Promise<void> => {
    setBusy(true);
    setErr(undefined);
    try {
      await api(`/api/errors/${props.id}`, { method: 'PATCH', body: { status } });
      loaded.reload();
    } catch (e) {
      setErr((e as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <p><a href={href('/errors')}>← all error groups</a></p>
      <LoadState loaded={loaded}>
        {(d) => (
          <>
            <h1>{d.group.title}</h1>
            <p class="muted">{d.group.culprit} · {d.group.service} · <Badge value={d.group.status} /> · {d.group.count} events · first {fmtIso(d.group.firstSeen)} ({d.group.firstRelease}) · last {fmtIso(d.group.lastSeen)} ({d.group.lastRelease})</p>
            <IntroducedIn group={d.group} />
            {can(me, 'member') && <div class="toolbar" role="group" aria-label="Change status">
              <button type="button" disabled={busy || d.group.status === 'resolved'} onClick={() => setStatus('resolved')}>Resolve</button>
              <button type="button" disabled={busy} onClick={() => setStatus('resolved-in-next-release')}>Resolve in next release</button>
              <button type="button" disabled={busy || d.group.status === 'ignored'} onClick={() => setStatus('ignored')}>Ignore</button>
              <button type="button" disabled={busy || d.group.status === 'unresolved'} onClick={() => setStatus('unresolved')}>Reopen</button>
            </div>}
            {err !== undefined && <p class="error-box" role="alert">{err}</p>}
            <div class="split">
              <Panel title="Stack trace (latest event)" id="stack">
                {d.latestEvent === null ? <p class="muted">No event stored.</p> : <StackTrace payload={d.latestEvent.payload} />}
              </Panel>
              <div>
                <Panel title="Events by release" id="releases"><Bars items={Object.entries(d.releases).map(([label, value]) => ({ label, value }))} label="Events by release" /></Panel>
                <Panel title="Events by environment" id="envs"><Bars items={Object.entries(d.environments).map(([label, value]) => ({ label, value }))} label="Events by environment" /></Panel>
                {Object.keys(d.services ?? {}).length > 1 && (
                  <Panel title="Events by service" id="services"><Bars items={Object.entries(d.services ?? {}).map(([label, value]) => ({ label, value }))} label="Events by service" /></Panel>
                )}
                <Panel title="Linked traces" id="linked">
                  {d.traceIds.length === 0 ? <p class="muted">No event carried a trace id.</p> : (
                    <ul class="plain">{d.traceIds.map((t) => <li key={t}><a href={href(`/traces/${t}`)}><code>{t}</code></a></li>)}</ul>
                  )}
                </Panel>
              </div>
            </div>
          </>
        )}
      </LoadState>
    </>
  );
}

function GroupList(props: ViewProps): JSX.Element {
  const { route, range } = props;
  const q = route.query;
  const filters = { service: q.get('service') ?? '', status: q.get('status') ?? '', q: q.get('q') ?? '' };
  const [form, setForm] = useState(filters);
  const loaded = useLoad((signal) => api<{ groups: ErrorGroup[] }>('/api/errors', { params: { ...filters, from: range.fromMs, to: range.toMs, limit: 100 }, signal }),
    [filters.service, filters.status, filters.q, range.fromMs, range.toMs]);
  return (
    <>
      <h1>Errors</h1>
      <form class="filters" role="search" aria-label="Filter error groups" onSubmit={(e) => { e.preventDefault(); patch(form); }}>
        <Field label="Text"><input name="q" type="search" value={form.q} onInput={(e) => setForm({ ...form, q: e.currentTarget.value })} /></Field>
        <Field label="Service"><input name="service" value={form.service} onInput={(e) => setForm({ ...form, service: e.currentTarget.value })} /></Field>
        <Field label="Status">
          <select name="status" value={form.status} onChange={(e) => setForm({ ...form, status: e.currentTarget.value })}>
            {STATUSES.map((s) => <option key={s} value={s}>{s === '' ? 'any' : s}</option>)}
          </select>
        </Field>
        <button type="submit" class="primary">Filter</button>
      </form>
      <Panel title="Error groups" id="groups">
        <LoadState loaded={loaded} empty={(d) => d.groups.length === 0} emptyText="No error group was seen in this time range.">
          {(d) => (
            <table class="table">
              <thead><tr><th scope="col">Error</th><th scope="col">Service</th><th scope="col">Status</th><th scope="col" class="num">Events</th><th scope="col">Trend</th><th scope="col">Last seen</th><th scope="col">Releases</th></tr></thead>
              <tbody>
                {d.groups.map((g) => (
                  <tr key={g.id}>
                    <th scope="row"><a href={href(`/errors/${g.id}`)}>{g.title}</a><div class="muted small">{g.culprit}</div></th>
                    <td>{g.service}</td>
                    <td><Badge value={g.status} /></td>
                    <td class="num">{g.count}</td>
                    <td><GroupSpark id={g.id} fromMs={range.fromMs} toMs={range.toMs} /></td>
                    <td title={fmtTime(Date.parse(g.lastSeen))}>{ago(Date.parse(g.lastSeen))}</td>
                    <td>{g.firstRelease === g.lastRelease ? g.firstRelease : `${g.firstRelease} → ${g.lastRelease}`}</td>
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

export function ErrorsView(props: ViewProps): JSX.Element {
  const m = /^\/errors\/([0-9a-f]{32})$/.exec(props.route.path);
  if (m !== null) return <GroupDetail {...props} id={m[1]} />;
  if (props.route.path !== '/errors') navigate('/errors', {}, true);
  return <GroupList {...props} />;
}
