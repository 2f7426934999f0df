import type { JSX } from 'preact';
import { api, ApiError } from '../api';
import { TimeChart, type ChartBand } from '../chart';
import { deployDirection, deployMarker } from '../deploy-marks';
import { useLoad } from '../hooks';
import type { ViewProps } from '../main';
import { href, patch } from '../router';
import { fmtDurationMs, fmtIso, fmtNum, fmtPct, type TimeRange } from '../time';
import type { Alert, Deploy, RedBucket, ServiceSummary } from '../types';
import { Badge, LoadState, Panel, Sparkline } from '../ui';

/**
 * Services: the RED table (current rate and a sparkline per service), and per service the RED
 * charts by version with deploy markers and alert bands. The range comes from the URL: `from` and
 * `to` are epoch ms, ISO times or `now-15m`-style relative times (docs/console.md).
 */

const zoomTo = (fromMs: number, toMs: number): void => patch({ from: String(fromMs), to: String(toMs) });
const STEPS = [1, 5, 10, 15, 30, 60, 300, 600, 900, 1800, 3600, 21600, 86400];

/** The smallest step giving at most `points` buckets over the range. */
export function stepFor(fromMs: number, toMs: number, points = 120): number {
  const s = (toMs - fromMs) / 1000 / points;
  return STEPS.find((c) => c >= s) ?? 86400;
}

/** Deploys are optional (the pillar may not be on this server yet): a 404 means none. */
export async function deploysFor(service: string | undefined, fromMs: number, toMs: number, signal: AbortSignal): Promise<Deploy[]> {
  try {
    const r = await api<{ deploys: Deploy[] }>('/api/deploys', { params: { service, from: new Date(fromMs).toISOString(), to: new Date(toMs).toISOString(), limit: 200 }, signal });
    return r.deploys;
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return [];
    throw e;
  }
}

const red = (service: string, params: Record<string, string | number | undefined>, signal: AbortSignal): Promise<RedBucket[]> =>
  api<{ buckets: RedBucket[] }>(`/api/services/${encodeURIComponent(service)}/red`, { params, signal }).then((r) => r.buckets);

/** Sparklines for at most this many services (one small query each). */
const MAX_SPARKS = 20;
/** "Current" rate: the last minute of the range. */
const CURRENT_MS = 60_000;

interface Charts { service: ServiceSummary; overall: RedBucket[]; byVersion: Array<{ version: string; buckets: RedBucket[] }>; deploys: Deploy[]; alerts: Alert[]; stepS: number }
interface Loaded { services: ServiceSummary[]; current: Map<string, number>; sparks: Map<string, number[]>; charts: Charts | undefined }

/** One query chain per navigation: the table, then the selected service's charts. */
async function load(range: TimeRange, selected: string | undefined, signal: AbortSignal): Promise<Loaded> {
  const { services } = await api<{ services: ServiceSummary[] }>('/api/services', { params: { from: range.fromMs, to: range.toMs }, signal });
  const sparkStep = stepFor(range.fromMs, range.toMs, 30);
  const svc = services.find((s) => s.service === selected) ?? services[0];
  const [current, sparks, charts] = await Promise.all([
    currentRates(range, signal),
    Promise.all(services.slice(0, MAX_SPARKS).map((s) => red(s.service, { from: range.fromMs, to: range.toMs, step: sparkStep }, signal)
      .then((b): [string, number[]] => [s.service, b.map((x) => x.count)]))).then((e) => new Map(e)),
    svc === undefined ? Promise.resolve(undefined) : loadCharts(svc, range, signal),
  ]);
  return { services, current, sparks, charts };
}

/** Requests per second over the last minute of the range that has happened (none if it has not begun). */
async function currentRates(range: TimeRange, signal: AbortSignal): Promise<Map<string, number>> {
  const to = Math.min(range.toMs, Date.now());
  const from = Math.max(range.fromMs, to - CURRENT_MS);
  if (to <= from) return new Map();
  const r = await api<{ services: ServiceSummary[] }>('/api/services', { params: { from, to }, signal });
  return new Map(r.services.map((s) => [s.service, s.rate]));
}

async function loadCharts(service: ServiceSummary, range: TimeRange, signal: AbortSignal): Promise<Charts> {
  const stepS = stepFor(range.fromMs, range.toMs);
  const versions = service.versions.length > 0 ? service.versions : [''];
  const params = { from: range.fromMs, to: range.toMs, step: stepS };
  const [overall, byVersion, deploys, alerts] = await Promise.all([
    red(service.service, params, signal),
    Promise.all(versions.slice(0, 6).map((v) => red(service.service, { ...params, version: v || undefined }, signal).then((buckets) => ({ version: v, buckets })))),
    deploysFor(service.service, range.fromMs, range.toMs, signal),
    api<{ alerts: Alert[] }>('/api/alerts', { params: { state: 'all', limit: 500 }, signal }).then((r) => r.alerts),
  ]);
  return { service, overall, byVersion, deploys, alerts, stepS };
}

function ServiceCharts(props: ViewProps & { charts: Charts }): JSX.Element {
  const { range, charts: d } = props;
  const service = d.service.service;
  const times = d.overall.map((b) => b.timeUs / 1000);
  const at = (buckets: RedBucket[], f: (b: RedBucket) => number | null): Array<number | null> => {
    const m = new Map(buckets.map((b) => [b.timeUs / 1000, f(b)]));
    return times.map((t) => m.get(t) ?? null);
  };
  const markers = d.deploys.map(deployMarker);
  const bands: ChartBand[] = d.alerts
    .filter((a) => a.labels.service === service || a.series.service === service)
    .filter((a) => a.firedAt !== null)
    .map((a) => ({ fromMs: Date.parse(a.firedAt ?? a.activeAt), toMs: a.resolvedAt === null ? range.toMs : Date.parse(a.resolvedAt), label: a.ruleName }));
  // A version with no request in a bucket has no rate, error rate or latency there: a gap, not a zero.
  const perVersion = (f: (b: RedBucket) => number | null) => d.byVersion.map((v) => ({ label: v.version === '' ? 'all' : `v${v.version}`, values: at(v.buckets, (b) => b.count === 0 ? null : f(b)) }));
  const xRange = { fromMs: range.fromMs, toMs: range.toMs };
  return (
    <div>
      <div class="charts">
        <TimeChart theme={props.theme} title="Requests per second" times={times} series={perVersion((b) => b.rate)} markers={markers} bands={bands} unit="/s" onZoom={zoomTo} xRange={xRange} />
        <TimeChart theme={props.theme} title="Error rate" times={times} series={perVersion((b) => b.errorRate * 100)} markers={markers} bands={bands} unit="%" onZoom={zoomTo} xRange={xRange} />
        <TimeChart theme={props.theme} title="Latency p50 / p95 / p99 (all versions)" times={times}
          series={[{ label: 'p50', values: at(d.overall, (b) => b.p50Ms) }, { label: 'p95', values: at(d.overall, (b) => b.p95Ms) }, { label: 'p99', values: at(d.overall, (b) => b.p99Ms) }]}
          markers={markers} bands={bands} unit=" ms" onZoom={zoomTo} xRange={xRange} />
        <TimeChart theme={props.theme} title="Latency p95 by version" times={times} series={perVersion((b) => b.p95Ms)} markers={markers} bands={bands} unit=" ms" onZoom={zoomTo} xRange={xRange} />
      </div>
      <p class="muted legend-note">
        {markers.length} deploy marker{markers.length === 1 ? '' : 's'} (dashed lines; labels link to the verdict) · {bands.length} alert band{bands.length === 1 ? '' : 's'} (shaded) · step {d.stepS}s · drag across a chart to zoom
      </p>
      {d.deploys.length > 0 && (
        <ul class="deploy-list" aria-label="Deploys in this range">
          {d.deploys.map((dep) => (
            <li key={dep.id}>
              <a href={href(`/deploys/${encodeURIComponent(dep.id)}`)}>{deployDirection(dep)}</a> <Badge value={dep.status} /> <span class="muted small">{fmtIso(dep.startedAt)}</span>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

export function ServicesView(props: ViewProps): JSX.Element {
  const { range, route } = props;
  const selected = route.query.get('service') ?? undefined;
  const loaded = useLoad((signal) => load(range, selected, signal), [range.fromMs, range.toMs, selected]);
  const spanMs = range.toMs - range.fromMs;
  return (
    <>
      <h1>Services</h1>
      <Panel title="RED by service" id="svc">
        <LoadState loaded={loaded} empty={(d) => d.services.length === 0} emptyText="No service has sent traces in this time range.">
          {(d) => (
            <div class="table-scroll">
              <table class="table">
                <thead><tr>
                  <th scope="col">Service</th><th scope="col">Versions</th>
                  <th scope="col" class="num" title="Requests per second over the last minute of the range (up to now)">Requests/s now</th>
                  <th scope="col">Requests over the range</th>
                  <th scope="col" class="num">Error rate</th><th scope="col" class="num">p50</th><th scope="col" class="num">p95</th><th scope="col" class="num">p99</th><th scope="col">Go to</th>
                </tr></thead>
                <tbody>
                  {d.services.map((s) => (
                    <tr key={s.service} aria-selected={s.service === d.charts?.service.service} class={s.service === d.charts?.service.service ? 'selected' : ''}>
                      <th scope="row"><a href={href('/services', { service: s.service })}>{s.service}</a></th>
                      <td>{s.versions.join(', ')}</td>
                      <td class="num" data-current-rate={d.current.get(s.service) ?? 0} title={`average over the range: ${fmtNum(s.rate)}/s`}>{fmtNum(d.current.get(s.service) ?? 0)}</td>
                      <td>{d.sparks.has(s.service) && <Sparkline values={d.sparks.get(s.service) ?? []} label={`${s.service}: ${s.count} requests over ${fmtDurationMs(spanMs)}`} />}</td>
                      <td class={`num ${s.errorRate > 0.05 ? 'bad-text' : ''}`}>{fmtPct(s.errorRate)}</td>
                      <td class="num">{fmtDurationMs(s.p50Ms)}</td>
                      <td class="num">{fmtDurationMs(s.p95Ms)}</td>
                      <td class="num">{fmtDurationMs(s.p99Ms)}</td>
                      <td class="links"><a href={href('/traces', { service: s.service })}>traces</a> <a href={href('/logs', { service: s.service })}>logs</a> <a href={href('/errors', { service: s.service })}>errors</a></td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </LoadState>
      </Panel>
      {loaded.data?.charts !== undefined && (
        <Panel title={`RED — ${loaded.data.charts.service.service}`} id="red" actions={
          <label class="field inline"><span>Service</span>
            <select value={loaded.data.charts.service.service} onChange={(e) => patch({ service: e.currentTarget.value })}>
              {loaded.data.services.map((s) => <option key={s.service}>{s.service}</option>)}
            </select>
          </label>}>
          <ServiceCharts {...props} charts={loaded.data.charts} />
        </Panel>
      )}
    </>
  );
}
