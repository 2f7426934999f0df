import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { api } from '../api';
import { TimeChart } from '../chart';
import { useLoad } from '../hooks';
import type { ViewProps } from '../main';
import { href, navigate, patch } from '../router';
import { fmtDurationMs, fmtTimeMs } from '../time';
import type { ErrorEventLite, LogRow, SpanRow, TraceSummary } from '../types';
import { Badge, Field, KeyValues, LoadState, Panel } from '../ui';
import { severityName } from './logs';
import { Waterfall } from './waterfall';

/** Traces: search, then one trace as a waterfall with span details, its logs and errors. */

const KINDS = ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'];

function TraceSearch(props: ViewProps): JSX.Element {
  const { route, range } = props;
  const q = route.query;
  const service = q.get('service') ?? '';
  const operation = q.get('operation') ?? '';
  const minMs = q.get('minDurationMs') ?? '';
  const status = q.get('status') ?? '';
  const sort = q.get('sort') ?? 'start';
  const desc = q.get('dir') !== 'asc';
  const limit = Math.min(1000, Math.max(PAGE, Number(q.get('limit') ?? PAGE) || PAGE));
  const [form, setForm] = useState({ service, operation, minMs, status });
  const loaded = useLoad((signal) => api<{ traces: TraceSummary[]; truncated?: boolean }>('/api/traces', {
    params: { service, operation, minDurationMs: minMs, status, from: range.fromMs, to: range.toMs, limit }, signal,
  }), [service, operation, minMs, status, range.fromMs, range.toMs, limit]);
  const header = (key: string, label: string, num = false): JSX.Element => (
    <th scope="col" class={num ? 'num' : ''} aria-sort={sort === key ? (desc ? 'descending' : 'ascending') : undefined}>
      <button type="button" class="sort" onClick={() => patch({ sort: key, dir: sort === key && desc ? 'asc' : undefined }, true)}>{label}{sort === key ? (desc ? ' ▼' : ' ▲') : ''}</button>
    </th>
  );
  const submit = (e: Event): void => {
    e.preventDefault();
    patch({ service: form.service, operation: form.operation, minDurationMs: form.minMs, status: form.status });
  };
  return (
    <>
      <h1>Traces</h1>
      <form class="filters" onSubmit={submit} role="search" aria-label="Search traces">
        <Field label="Service"><input name="service" value={form.service} onInput={(e) => setForm({ ...form, service: e.currentTarget.value })} /></Field>
        <Field label="Operation"><input name="operation" value={form.operation} onInput={(e) => setForm({ ...form, operation: e.currentTarget.value })} /></Field>
        <Field label="Min duration (ms)"><input name="minDurationMs" inputMode="numeric" value={form.minMs} onInput={(e) => setForm({ ...form, minMs: e.currentTarget.value })} /></Field>
        <Field label="Status">
          <select name="status" value={form.status} onChange={(e) => setForm({ ...form, status: e.currentTarget.value })}>
            <option value="">any</option><option value="error">error</option><option value="ok">ok</option>
          </select>
        </Field>
        <button type="submit" class="primary">Search</button>
      </form>
      <Panel title="Matching traces" id="traces">
        <LoadState loaded={loaded} empty={(d) => d.traces.length === 0} emptyText="No trace matches in this time range.">
          {(d) => (
            <>
            <DurationScatter traces={d.traces} theme={props.theme} range={range} />
            <div class="table-scroll">
            <table class="table">
              <thead><tr>{header('start', 'Start')}<th scope="col">Root</th>{header('version', 'Version')}<th scope="col">Services</th>{header('duration', 'Duration', true)}{header('spans', 'Spans', true)}{header('errors', 'Errors', true)}</tr></thead>
              <tbody>
                {sorted(d.traces, sort, desc).map((t) => (
                  <tr key={t.traceId}>
                    <td>{fmtTimeMs(t.startUs / 1000)}</td>
                    <th scope="row"><a href={href(`/traces/${t.traceId}`)} data-trace={t.traceId}>{t.rootService}: {t.rootName}</a></th>
                    <td data-version>{t.rootVersion ?? ''}</td>
                    <td>{t.services.join(', ')}</td>
                    <td class="num">{fmtDurationMs(t.durationNs / 1e6)}</td>
                    <td class="num">{t.spanCount}</td>
                    <td class="num">{t.errorCount > 0 ? <Badge value={String(t.errorCount)} tone="bad" /> : 0}</td>
                  </tr>
                ))}
              </tbody>
            </table>
            </div>
            <p class="muted small" data-trace-count={d.traces.length}>
              {d.traces.length} trace{d.traces.length === 1 ? '' : 's'}, the newest first from the server{d.traces.length >= limit || d.truncated === true ? '; more match' : ''}.
              {' '}{(d.traces.length >= limit || d.truncated === true) && limit < 1000 && <button type="button" onClick={() => patch({ limit: String(Math.min(1000, limit + PAGE)) }, true)}>Load {PAGE} more</button>}
            </p>
            </>
          )}
        </LoadState>
      </Panel>
    </>
  );
}

const PAGE = 100;

const SORT: Record<string, (a: TraceSummary, b: TraceSummary) => number> = {
  start: (a, b) => a.startUs - b.startUs,
  duration: (a, b) => a.durationNs - b.durationNs,
  spans: (a, b) => a.spanCount - b.spanCount,
  errors: (a, b) => a.errorCount - b.errorCount,
  // 1.10.0 after 1.9.0; ties keep start order.
  version: (a, b) => (a.rootVersion ?? '').localeCompare(b.rootVersion ?? '', 'en', { numeric: true }) || a.startUs - b.startUs,
};

function sorted(traces: TraceSummary[], key: string, desc: boolean): TraceSummary[] {
  const f = SORT[key] ?? SORT.start;
  return [...traces].sort((a, b) => (desc ? f(b, a) : f(a, b)));
}

/** Duration over time, one dot per trace (failed traces red); drag to zoom into a burst. */
function DurationScatter(props: { traces: TraceSummary[]; theme: string; range: { fromMs: number; toMs: number } }): JSX.Element {
  const byTime = [...props.traces].sort((a, b) => a.startUs - b.startUs);
  const times = byTime.map((t) => t.startUs / 1000);
  const ok = byTime.map((t) => (t.errorCount === 0 ? t.durationNs / 1e6 : null));
  const bad = byTime.map((t) => (t.errorCount > 0 ? t.durationNs / 1e6 : null));
  return (
    <TimeChart theme={props.theme} title="Duration over time (one dot per trace)" times={times} scatter height={150} unit=" ms"
      series={[{ label: 'ok', values: ok }, { label: 'with errors', values: bad }]} xRange={props.range}
      onZoom={(fromMs, toMs) => patch({ from: String(fromMs), to: String(toMs) })} />
  );
}

function SpanDetails(props: { span: SpanRow }): JSX.Element {
  const s = props.span;
  return (
    <div class="span-details" aria-label="Span details">
      <h3>{s.name}</h3>
      <dl class="kv">
        <div><dt>service</dt><dd>{s.service} {s.version !== '' && `v${s.version}`} {s.environment}</dd></div>
        <div><dt>kind</dt><dd>{KINDS[s.kind] ?? s.kind}</dd></div>
        <div><dt>start</dt><dd>{fmtTimeMs(s.startUs / 1000)}</dd></div>
        <div><dt>duration</dt><dd>{fmtDurationMs(s.durationNs / 1e6)}</dd></div>
        <div><dt>status</dt><dd><Badge value={s.statusCode === 2 ? 'error' : s.statusCode === 1 ? 'ok' : 'unset'} /> {s.statusMessage}</dd></div>
        <div><dt>span id</dt><dd><code>{s.spanId}</code></dd></div>
      </dl>
      <h4>Attributes</h4>
      <KeyValues data={s.attrs} label="Span attributes" />
      {s.events.length > 0 && (
        <>
          <h4>Events</h4>
          <ul class="plain">{s.events.map((e, i) => <li key={i}><code>{fmtTimeMs(e.timeUs / 1000)}</code> {e.name} <KeyValues data={e.attrs} label={`Event ${e.name}`} /></li>)}</ul>
        </>
      )}
      <h4>Resource</h4>
      <KeyValues data={s.resourceAttrs} label="Resource attributes" />
    </div>
  );
}

function TraceDetail(props: ViewProps & { traceId: string }): JSX.Element {
  const loaded = useLoad((signal) => api<{ traceId: string; spans: SpanRow[]; logs: LogRow[]; errors?: ErrorEventLite[] }>(`/api/traces/${props.traceId}`, { signal }), [props.traceId]);
  const selected = props.route.query.get('span') ?? undefined;
  const select = (spanId: string): void => patch({ span: spanId }, true);
  return (
    <>
      <h1>Trace <code class="id">{props.traceId}</code></h1>
      <p><a href={href('/traces')}>← back to search</a></p>
      <LoadState loaded={loaded}>
        {(d) => {
          const span = d.spans.find((s) => s.spanId === selected) ?? d.spans.find((s) => s.parentSpanId === '') ?? d.spans[0];
          return (
            <>
              <div class="split">
                <Panel title={`Waterfall (${d.spans.length} spans)`} id="wf">
                  <Waterfall spans={d.spans} selected={span?.spanId} onSelect={select} />
                </Panel>
                <Panel title="Span" id="span">{span !== undefined && <SpanDetails span={span} />}</Panel>
              </div>
              {(d.errors ?? []).length > 0 && (
                <Panel title={`Errors in this trace (${(d.errors ?? []).length})`} id="trace-errors">
                  <ul class="plain">
                    {(d.errors ?? []).map((e) => (
                      <li key={e.eventId}>
                        <Badge value="error" /> {e.groupId !== undefined ? <a href={href(`/errors/${e.groupId}`)}>{e.title}</a> : e.title}
                        {' '}<span class="muted">{e.service} {e.release} · span <button type="button" class="link" onClick={() => select(e.spanId)}>{e.spanId}</button></span>
                      </li>
                    ))}
                  </ul>
                </Panel>
              )}
              <Panel title={`Logs in this trace (${d.logs.length})`} id="trace-logs">
                {d.logs.length === 0 ? <p class="muted">No log line carries this trace id.</p> : (
                  <table class="table logs">
                    <thead><tr><th scope="col">Time</th><th scope="col">Level</th><th scope="col">Service</th><th scope="col">Message</th><th scope="col">Span</th></tr></thead>
                    <tbody>
                      {d.logs.map((l, i) => (
                        <tr key={i} class={l.spanId === span?.spanId ? 'selected' : ''}>
                          <td><code>{fmtTimeMs(l.timeUs / 1000)}</code></td>
                          <td><Badge value={severityName(l)} /></td>
                          <td>{l.service}</td>
                          <td class="log-body">{l.body}</td>
                          <td>{l.spanId !== '' && <button type="button" class="link" onClick={() => select(l.spanId)}>{l.spanId.slice(0, 8)}</button>}</td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                )}
              </Panel>
            </>
          );
        }}
      </LoadState>
    </>
  );
}

export function TracesView(props: ViewProps): JSX.Element {
  const m = /^\/traces\/([0-9a-f]{32})$/.exec(props.route.path);
  if (m !== null) return <TraceDetail {...props} traceId={m[1]} />;
  if (props.route.path !== '/traces') navigate('/traces', {}, true);
  return <TraceSearch {...props} />;
}
