import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, stream } from '../api';
import { TimeChart } from '../chart';
import { useLoad } from '../hooks';
import type { ViewProps } from '../main';
import { href, patch } from '../router';
import { fmtTimeMs } from '../time';
import type { LogRow } from '../types';
import { Badge, ErrorBox, Field, KeyValues, LoadState, Panel } from '../ui';

/** Logs: search with filters, live tail (server-sent events), jump to the line's trace. */

const SEVERITIES = [['', 'any'], ['5', 'debug+'], ['9', 'info+'], ['13', 'warn+'], ['17', 'error+'], ['21', 'fatal']];
const TAIL_MAX = 500;
/** Lines a search shows (the histogram counts them all). */
const PAGE = 500;

export function severityName(l: Pick<LogRow, 'severityText' | 'severityNumber'>): string {
  if (l.severityText !== '') return l.severityText.toLowerCase();
  const n = l.severityNumber;
  return n >= 21 ? 'fatal' : n >= 17 ? 'error' : n >= 13 ? 'warning' : n >= 9 ? 'info' : n >= 5 ? 'debug' : n > 0 ? 'trace' : 'unset';
}

function LogRowView(props: { l: LogRow }): JSX.Element {
  const { l } = props;
  const [open, setOpen] = useState(false);
  return (
    <>
      <tr class={open ? 'selected' : ''}>
        <td><button type="button" class="sort" aria-expanded={open} aria-label={`${open ? 'Hide' : 'Show'} attributes`} onClick={() => setOpen(!open)}>{open ? '▾' : '▸'}</button> <code>{fmtTimeMs(l.timeUs / 1000)}</code></td>
        <td><Badge value={severityName(l)} /></td>
        <td>{l.service}</td>
        <td class="log-body">{l.body}</td>
        <td>{l.traceId !== '' && <a href={href(`/traces/${l.traceId}`, { span: l.spanId || undefined })} aria-label={`Open trace ${l.traceId}`}>{l.traceId.slice(0, 8)}…</a>}</td>
      </tr>
      {open && (
        <tr class="log-detail" data-log-detail>
          <td colSpan={5}>
            <div class="split">
              <div><h4>Attributes</h4><KeyValues data={l.attrs} label="Log attributes" /></div>
              <div><h4>Resource</h4><KeyValues data={{ 'service.name': l.service, 'service.version': l.version, 'deployment.environment': l.environment, trace_id: l.traceId, span_id: l.spanId, severity_number: l.severityNumber }} label="Log resource" /></div>
            </div>
          </td>
        </tr>
      )}
    </>
  );
}

function LogTable(props: { logs: LogRow[] }): JSX.Element {
  return (
    <div class="log-scroll">
      <table class="table logs">
        <thead><tr><th scope="col">Time</th><th scope="col">Level</th><th scope="col">Service</th><th scope="col">Message</th><th scope="col">Trace</th></tr></thead>
        <tbody>
          {props.logs.map((l, i) => <LogRowView key={`${l.timeUs}-${i}`} l={l} />)}
        </tbody>
      </table>
    </div>
  );
}

const BINS = 60;

/** GET /api/logs/volume: every matching line counted per bucket (not only the page's rows). */
export interface LogVolume { from: number; to: number; stepMs: number; total: number; buckets: Array<{ time: number; count: number; errors: number }> }

/** Lines per time bin over the range (all of them, counted by the server), errors apart; drag to zoom. */
function Volume(props: { volume: LogVolume; range: { fromMs: number; toMs: number }; theme: string }): JSX.Element {
  const v = props.volume;
  const all = new Array<number>(BINS).fill(0);
  const errors = new Array<number>(BINS).fill(0);
  for (const b of v.buckets) {
    const i = Math.round((b.time - v.from) / v.stepMs);
    if (i < 0 || i >= BINS) continue;
    all[i] += b.count;
    errors[i] += b.errors;
  }
  const times = all.map((_, i) => v.from + i * v.stepMs);
  return (
    <div data-log-total={v.total} data-log-drawn={all.reduce((a, n) => a + n, 0)}>
      <TimeChart theme={props.theme} title={`Log lines over time (${v.total.toLocaleString('en')} in the range)`} height={110} times={times} xRange={props.range}
        series={[{ label: 'lines', values: all }, { label: 'error+', values: errors }]} onZoom={(f, t) => patch({ from: String(f), to: String(t) })} />
    </div>
  );
}

function LiveTail(props: { filters: Record<string, string> }): JSX.Element {
  const [lines, setLines] = useState<LogRow[]>([]);
  const [dropped, setDropped] = useState(0);
  const [status, setStatus] = useState<'connecting' | 'live' | Error>('connecting');
  const key = JSON.stringify(props.filters);
  useEffect(() => {
    const ctl = new AbortController();
    setLines([]);
    setStatus('connecting');
    const run = async (): Promise<void> => {
      setStatus('live');
      await stream('/api/logs/tail', props.filters, (event, data) => {
        if (event === 'logs') {
          const rows = (JSON.parse(data) as LogRow[]).reverse();
          setLines((old) => [...rows, ...old].slice(0, TAIL_MAX));
        } else if (event === 'dropped') {
          setDropped((n) => n + (JSON.parse(data) as { count: number }).count);
        }
      }, ctl.signal);
    };
    run().catch((e: Error) => { if (e.name !== 'AbortError') setStatus(e); });
    return () => ctl.abort();
  }, [key]);
  return (
    <Panel title="Live tail" id="tail" actions={<span class="muted" data-tail-status={status instanceof Error ? 'error' : status}>
      {status instanceof Error ? 'disconnected' : status === 'live' ? `● live · ${lines.length} lines${dropped > 0 ? ` · ${dropped} dropped` : ''}` : 'connecting…'}
    </span>}>
      {status instanceof Error && <ErrorBox error={status} />}
      {/* A fixed-height box whatever arrives: new lines never move the rest of the page. */}
      {lines.length === 0 ? <div class="log-scroll"><p class="muted placeholder">Waiting for new log lines…</p></div> : <LogTable logs={lines} />}
    </Panel>
  );
}

export function LogsView(props: ViewProps): JSX.Element {
  const { route, range } = props;
  const q = route.query;
  const filters = { q: q.get('q') ?? '', service: q.get('service') ?? '', severity: q.get('severity') ?? '', traceId: q.get('traceId') ?? '' };
  const [form, setForm] = useState(filters);
  const live = q.get('live') === '1';
  const loaded = useLoad(async (signal) => {
    const params = { ...filters, from: range.fromMs, to: range.toMs };
    const [page, volume] = await Promise.all([
      api<{ logs: LogRow[] }>('/api/logs', { params: { ...params, limit: PAGE }, signal }),
      api<LogVolume>('/api/logs/volume', { params: { ...params, buckets: BINS }, signal }),
    ]);
    return { logs: page.logs, volume };
  }, [filters.q, filters.service, filters.severity, filters.traceId, range.fromMs, range.toMs]);
  const submit = (e: Event): void => {
    e.preventDefault();
    patch({ ...form });
  };
  const tailFilters = Object.fromEntries(Object.entries(filters).filter(([, v]) => v !== ''));
  return (
    <>
      <h1>Logs</h1>
      <form class="filters" onSubmit={submit} role="search" aria-label="Search logs">
        <Field label="Text"><input name="q" type="search" value={form.q} onInput={(e) => setForm({ ...form, q: e.currentTarget.value })} /></Field>
        <Field label="Service"><input name="service" value={form.service} onInput={(e) => setForm({ ...form, service: e.currentTarget.value })} /></Field>
        <Field label="Severity">
          <select name="severity" value={form.severity} onChange={(e) => setForm({ ...form, severity: e.currentTarget.value })}>
            {SEVERITIES.map(([v, l]) => <option key={v} value={v}>{l}</option>)}
          </select>
        </Field>
        <Field label="Trace id"><input name="traceId" value={form.traceId} onInput={(e) => setForm({ ...form, traceId: e.currentTarget.value })} /></Field>
        <button type="submit" class="primary">Search</button>
        <label class="check"><input type="checkbox" name="live" checked={live} onChange={(e) => patch({ live: e.currentTarget.checked ? '1' : undefined })} /> Live tail</label>
      </form>
      {live && <LiveTail filters={tailFilters} />}
      <Panel title="Search results" id="logs">
        <LoadState loaded={loaded} empty={(d) => d.logs.length === 0} emptyText="No log line matches in this time range.">
          {(d) => (
            <>
              <Volume volume={d.volume} range={range} theme={props.theme} />
              <LogTable logs={d.logs} />
              {d.volume.total > d.logs.length && <p class="muted small" data-shown={d.logs.length}>The newest {d.logs.length} of {d.volume.total.toLocaleString('en')} lines; narrow the range or the filters to see older ones.</p>}
            </>
          )}
        </LoadState>
      </Panel>
    </>
  );
}
