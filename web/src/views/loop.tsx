import type { JSX } from 'preact';
import { api } from '../api';
import { TimeChart } from '../chart';
import { useLoad } from '../hooks';
import type { ViewProps } from '../main';
import { fmtDurationMs, fmtNum, fmtPct } from '../time';
import { LoadState, Panel } from '../ui';

/** Loop: how fast the loop closes — MTTD / MTTA / MTTR and the DORA figures, with weekly trends. */

interface Stat { count: number; medianMs: number | null; p90Ms: number | null }
interface WeekTrend { weekStart: string; deployments: number; changeFailRate: number | null; leadTimeMedianMs: number | null; incidents: number; mttdMedianMs: number | null; mttrMedianMs: number | null }
interface LoopMetrics {
  from: string; to: string; service: string | null;
  incidents: { count: number; mttd: Stat; mtta: Stat; mttr: Stat };
  dora: { deployments: number; deploymentFrequency: { perDay: number; perWeek: number }; leadTime: Stat; failedDeployments: number; changeFailRate: number | null; failedDeploymentRecovery: Stat & { unrecovered: number } };
  weeks: WeekTrend[];
}

function Tile(props: { label: string; value: string; sub?: string }): JSX.Element {
  return <div class="tile"><div class="tile-label">{props.label}</div><div class="tile-value">{props.value}</div>{props.sub !== undefined && <div class="muted small">{props.sub}</div>}</div>;
}

const statSub = (s: Stat): string => `p90 ${fmtDurationMs(s.p90Ms)} · n=${s.count}`;

/** A unit that keeps durations readable: seconds under 2 minutes, minutes under 2 hours, else hours. */
function durationUnit(values: Array<number | null>): { div: number; unit: string; name: string } {
  const max = Math.max(0, ...values.filter((v): v is number => v !== null));
  if (max < 120_000) return { div: 1000, unit: ' s', name: 'seconds' };
  if (max < 7_200_000) return { div: 60_000, unit: ' min', name: 'minutes' };
  return { div: 3_600_000, unit: ' h', name: 'hours' };
}

const allEmpty = (values: Array<number | null>): boolean => values.every((v) => v === null || v === 0);

/** A chart, or why there is nothing to draw. */
function TrendChart(props: { theme: string; title: string; times: number[]; series: Array<{ label: string; values: Array<number | null> }>; unit?: string; empty: string }): JSX.Element {
  if (props.times.length === 0 || props.series.every((x) => allEmpty(x.values))) {
    return <figure class="chart"><figcaption>{props.title}</figcaption><p class="muted placeholder" data-empty-chart>{props.empty}</p></figure>;
  }
  return <TimeChart theme={props.theme} title={props.title} times={props.times} series={props.series} unit={props.unit} />;
}

export function LoopView(props: ViewProps): JSX.Element {
  const service = props.route.query.get('service') ?? undefined;
  const { fromMs, toMs } = props.range;
  // The figures cover the picked range; the weekly trends need weeks, so they look back 12 weeks from its end.
  const loaded = useLoad(async (signal) => {
    const q = (from: number): Promise<LoopMetrics> => api<LoopMetrics>('/api/loop-metrics', { params: { service, from: new Date(from).toISOString(), to: new Date(toMs).toISOString() }, signal });
    const trendFrom = Math.min(fromMs, toMs - 84 * 86_400_000);
    const [range, trends] = await Promise.all([q(fromMs), trendFrom === fromMs ? null : q(trendFrom)]);
    return { ...range, weeks: (trends ?? range).weeks };
  }, [service, fromMs, toMs]);
  return (
    <>
      <h1>Loop</h1>
      <LoadState loaded={loaded}>
        {(m) => {
          const times = m.weeks.map((w) => Date.parse(w.weekStart));
          const mttx = durationUnit(m.weeks.flatMap((w) => [w.mttdMedianMs, w.mttrMedianMs]));
          const lead = durationUnit(m.weeks.map((w) => w.leadTimeMedianMs));
          const per = (u: { div: number }) => (v: number | null): number | null => v === null ? null : v / u.div;
          return (
            <>
              <Panel title="Incidents: detect, acknowledge, recover" id="mtt">
                <div class="tiles">
                  <Tile label="Incidents" value={String(m.incidents.count)} />
                  <Tile label="MTTD (median)" value={fmtDurationMs(m.incidents.mttd.medianMs)} sub={statSub(m.incidents.mttd)} />
                  <Tile label="MTTA (median)" value={fmtDurationMs(m.incidents.mtta.medianMs)} sub={statSub(m.incidents.mtta)} />
                  <Tile label="MTTR (median)" value={fmtDurationMs(m.incidents.mttr.medianMs)} sub={statSub(m.incidents.mttr)} />
                </div>
              </Panel>
              <Panel title="DORA" id="dora">
                <div class="tiles">
                  <Tile label="Deployment frequency" value={`${fmtNum(m.dora.deploymentFrequency.perDay)}/day`} sub={`${m.dora.deployments} deploys`} />
                  <Tile label="Lead time (median)" value={fmtDurationMs(m.dora.leadTime.medianMs)} sub={statSub(m.dora.leadTime)} />
                  <Tile label="Change fail rate" value={fmtPct(m.dora.changeFailRate)} sub={`${m.dora.failedDeployments} failed`} />
                  <Tile label="Failed deploy recovery" value={fmtDurationMs(m.dora.failedDeploymentRecovery.medianMs)} sub={`${m.dora.failedDeploymentRecovery.unrecovered} unrecovered`} />
                </div>
              </Panel>
              <Panel title="Weekly trends" id="weeks">
                <div class="charts">
                  <TrendChart theme={props.theme} title={`MTTD / MTTR median (${mttx.name})`} times={times} unit={mttx.unit}
                    series={[{ label: 'MTTD', values: m.weeks.map((w) => per(mttx)(w.mttdMedianMs)) }, { label: 'MTTR', values: m.weeks.map((w) => per(mttx)(w.mttrMedianMs)) }]}
                    empty="No incident was detected and recovered in these weeks: nothing to chart." />
                  <TrendChart theme={props.theme} title="Deployments and incidents per week" times={times} series={[{ label: 'deployments', values: m.weeks.map((w) => w.deployments) }, { label: 'incidents', values: m.weeks.map((w) => w.incidents) }]}
                    empty="No deploy and no incident in these weeks." />
                  <TrendChart theme={props.theme} title="Change fail rate (%)" times={times} series={[{ label: 'change fail rate', values: m.weeks.map((w) => w.changeFailRate === null ? null : w.changeFailRate * 100) }]} unit="%"
                    empty="No verified deploy in these weeks, so no change fail rate." />
                  <TrendChart theme={props.theme} title={`Lead time median (${lead.name})`} times={times} series={[{ label: 'lead time', values: m.weeks.map((w) => per(lead)(w.leadTimeMedianMs)) }]} unit={lead.unit}
                    empty="No deploy carried a commit time in these weeks, so no lead time (tightloop deploy record --commit-time)." />
                </div>
              </Panel>
            </>
          );
        }}
      </LoadState>
    </>
  );
}
