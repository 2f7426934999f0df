import type { JSX } from 'preact';
import { api, ApiError } from '../api';
import { TimeChart, type ChartBand, type ChartMarker } from '../chart';
import { useLoad } from '../hooks';
import type { ViewProps } from '../main';
import { href, patch } from '../router';

const zoomTo = (fromMs: number, toMs: number): void => patch({ from: String(fromMs), to: String(toMs) });
import { fmtDurationMs, fmtNum, fmtPct } from '../time';
import type { Alert, Deploy, RedBucket, ServiceSummary } from '../types';
import { LoadState, Panel } from '../ui';

/** Services: the RED table, and per service the RED charts by version with deploy markers and alert bands. */

function stepFor(fromMs: number, toMs: number): number {
  const s = (toMs - fromMs) / 1000 / 120; // ~120 points
  for (const c of [1, 5, 10, 15, 30, 60, 300, 600, 900, 1800, 3600, 21600, 86400]) if (c >= s) return c;
  return 86400;
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

const DEPLOY_TONE: Record<string, ChartMarker['tone']> = { passed: 'ok', failed: 'bad', rolled_back: 'bad', inconclusive: 'warn', verifying: 'warn', started: 'neutral' };

function ServiceCharts(props: ViewProps & { service: ServiceSummary }): JSX.Element {
  const { range, service } = props;
  const stepS = stepFor(range.fromMs, range.toMs);
  const loaded = useLoad(async (signal) => {
    const versions = service.versions.length > 0 ? service.versions : [''];
    const params = { from: range.fromMs, to: range.toMs, step: stepS };
    const [overall, byVersion, deploys, alerts] = await Promise.all([
      api<{ buckets: RedBucket[] }>(`/api/services/${encodeURIComponent(service.service)}/red`, { params, signal }),
      Promise.all(versions.slice(0, 6).map((v) => api<{ buckets: RedBucket[] }>(`/api/services/${encodeURIComponent(service.service)}/red`, { params: { ...params, version: v || undefined }, signal })
        .then((r) => ({ version: v, buckets: r.buckets })))),
      deploysFor(service.service, range.fromMs, range.toMs, signal),
      api<{ alerts: Alert[] }>('/api/alerts', { params: { state: 'all', limit: 500 }, signal }).then((r) => r.alerts),
    ]);
    return { overall: overall.buckets, byVersion, deploys, alerts };
  }, [service.service, service.versions.join(','), range.fromMs, range.toMs]);

  return (
    <LoadState loaded={loaded}>
      {(d) => {
        // One time axis for all series: the union of bucket starts.
        const times = [...new Set([...d.overall, ...d.byVersion.flatMap((v) => v.buckets)].map((b) => b.timeUs / 1000))].sort((a, b) => a - b);
        const at = (buckets: RedBucket[], f: (b: RedBucket) => number | null): Array<number | null> => {
          const m = new Map(buckets.map((b) => [b.timeUs / 1000, f(b)]));
          return times.map((t) => m.get(t) ?? null);
        };
        const markers: ChartMarker[] = d.deploys.map((dep) => ({ timeMs: Date.parse(dep.startedAt), label: dep.version, tone: DEPLOY_TONE[dep.status] ?? 'neutral' }));
        const bands: ChartBand[] = d.alerts
          .filter((a) => a.labels.service === service.service || a.series.service === service.service)
          .filter((a) => a.firedAt !== null)
          .map((a) => ({ fromMs: Date.parse(a.firedAt ?? a.activeAt), toMs: a.resolvedAt === null ? range.toMs : Date.parse(a.resolvedAt), label: a.ruleName }));
        const perVersion = (f: (b: RedBucket) => number | null) => d.byVersion.map((v) => ({ label: v.version === '' ? 'all' : `v${v.version}`, values: at(v.buckets, f) }));
        return (
          <div class="charts">
            <TimeChart theme={props.theme} title="Requests per second" times={times} series={perVersion((b) => b.rate)} markers={markers} bands={bands} unit="/s" onZoom={zoomTo} />
            <TimeChart theme={props.theme} title="Error rate" times={times} series={perVersion((b) => b.count === 0 ? null : b.errorRate * 100)} markers={markers} bands={bands} unit="%" onZoom={zoomTo} />
            <TimeChart theme={props.theme} title="Latency p50 / p95 / p99 (all versions)" times={times}
              series={[{ label: 'p50', values: at(d.overall, (b) => b.p50Ms) }, { label: 'p95', values: at(d.overall, (b) => b.p95Ms) }, { label: 'p99', values: at(d.overall, (b) => b.p99Ms) }]}
              markers={markers} bands={bands} unit=" ms" onZoom={zoomTo} />
            <TimeChart theme={props.theme} title="Latency p95 by version" times={times} series={perVersion((b) => b.p95Ms)} markers={markers} bands={bands} unit=" ms" onZoom={zoomTo} />
            <p class="muted legend-note">
              {markers.length} deploy marker{markers.length === 1 ? '' : 's'} (dashed lines) · {bands.length} alert band{bands.length === 1 ? '' : 's'} (shaded) · step {stepS}s · drag across a chart to zoom
            </p>
          </div>
        );
      }}
    </LoadState>
  );
}

export function ServicesView(props: ViewProps): JSX.Element {
  const { range, route } = props;
  const loaded = useLoad((signal) => api<{ services: ServiceSummary[] }>('/api/services', { params: { from: range.fromMs, to: range.toMs }, signal }), [range.fromMs, range.toMs]);
  const selected = route.query.get('service') ?? undefined;
  return (
    <>
      <h1>Services</h1>
      <Panel title="Services (RED over the time range)" id="svc">
        <LoadState loaded={loaded} empty={(d) => d.services.length === 0} emptyText="No service has sent traces in this time range.">
          {(d) => (
            <table class="table">
              <thead><tr><th scope="col">Service</th><th scope="col">Versions</th><th scope="col" class="num">Requests/s</th><th scope="col" class="num">Error rate</th><th scope="col" class="num">p50</th><th scope="col" class="num">p95</th><th scope="col" class="num">p99</th><th scope="col">Go to</th></tr></thead>
              <tbody>
                {d.services.map((s) => (
                  <tr key={s.service} aria-selected={s.service === selected} class={s.service === selected ? 'selected' : ''}>
                    <th scope="row"><a href={href('/services', { service: s.service })}>{s.service}</a></th>
                    <td>{s.versions.join(', ')}</td>
                    <td class="num">{fmtNum(s.rate)}</td>
                    <td class={`num ${s.errorRate > 0.05 ? 'bad-text' : ''}`}>{fmtPct(s.errorRate)}</td>
                    <td class="num">{fmtDurationMs(s.p50Ms)}</td>
                    <td class="num">{fmtDurationMs(s.p95Ms)}</td>
                    <td class="num">{fmtDurationMs(s.p99Ms)}</td>
                    <td class="links"><a href={href('/traces', { service: s.service })}>traces</a> <a href={href('/logs', { service: s.service })}>logs</a> <a href={href('/errors', { service: s.service })}>errors</a></td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </LoadState>
      </Panel>
      {loaded.data !== undefined && (() => {
        const svc = loaded.data.services.find((s) => s.service === selected) ?? loaded.data.services[0];
        if (svc === undefined) return null;
        return (
          <Panel title={`RED — ${svc.service}`} id="red" actions={
            <label class="field inline"><span>Service</span>
              <select value={svc.service} onChange={(e) => patch({ service: e.currentTarget.value })}>
                {loaded.data.services.map((s) => <option key={s.service}>{s.service}</option>)}
              </select>
            </label>}>
            <ServiceCharts {...props} service={svc} />
          </Panel>
        );
      })()}
    </>
  );
}
