import type { JSX } from 'preact';
import { api } from '../api';
import { TimeChart } from '../chart';
import { useLoad } from '../hooks';
import type { ViewProps } from '../main';
import { durationText, pctText, perDayText } from '../../../src/cli/loop-figures';
import { fmtTime } from '../time';
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

/** A figure; `figure` and `raw` (the API's number) let a test hold it against `tightloop report`. */
function Tile(props: { label: string; value: string; sub?: string; figure: string; raw: number | null }): JSX.Element {
  return (
    <div class="tile" data-figure={props.figure} data-raw={props.raw === null ? '' : String(props.raw)}>
      <div class="tile-label">{props.label}</div><div class="tile-value">{props.value}</div>{props.sub !== undefined && <div class="muted small">{props.sub}</div>}
    </div>
  );
}

const statSub = (s: Stat): string => `p90 ${durationText(s.p90Ms)} · n=${s.count}`;

/** The command that prints the same figures in a terminal (same range and service, as sent to the API). */
function reportCommand(fromIso: string, toIso: string, service: string | undefined): string {
  return `tightloop report --from ${fromIso} --to ${toIso}${service === undefined ? '' : ` --service '${service.replace(/'/g, "'\\''")}'`}`;
}

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
              <p class="muted" data-loop-range>
                Figures for {fmtTime(Date.parse(m.from))} → {fmtTime(Date.parse(m.to))}{m.service !== null && ` (${m.service})`}, the time range above.
                {' '}The same in a terminal: <code data-report-command>{reportCommand(m.from, m.to, m.service ?? undefined)}</code>
              </p>
              <Panel title="Incidents: detect, acknowledge, recover" id="mtt">
                <div class="tiles">
                  <Tile figure="incidents" raw={m.incidents.count} label="Incidents" value={String(m.incidents.count)} />
                  <Tile figure="mttd" raw={m.incidents.mttd.medianMs} label="MTTD (median)" value={durationText(m.incidents.mttd.medianMs)} sub={statSub(m.incidents.mttd)} />
                  <Tile figure="mtta" raw={m.incidents.mtta.medianMs} label="MTTA (median)" value={durationText(m.incidents.mtta.medianMs)} sub={statSub(m.incidents.mtta)} />
                  <Tile figure="mttr" raw={m.incidents.mttr.medianMs} label="MTTR (median)" value={durationText(m.incidents.mttr.medianMs)} sub={statSub(m.incidents.mttr)} />
                </div>
              </Panel>
              <Panel title="DORA" id="dora">
                <div class="tiles">
                  <Tile figure="deploymentFrequency" raw={m.dora.deploymentFrequency.perDay} label="Deployment frequency" value={perDayText(m.dora.deploymentFrequency.perDay)} sub={`${m.dora.deployments} deploys`} />
                  <Tile figure="leadTime" raw={m.dora.leadTime.medianMs} label="Lead time (median)" value={durationText(m.dora.leadTime.medianMs)} sub={statSub(m.dora.leadTime)} />
                  <Tile figure="changeFailRate" raw={m.dora.changeFailRate} label="Change fail rate" value={pctText(m.dora.changeFailRate)} sub={`${m.dora.failedDeployments} of ${m.dora.deployments} failed`} />
                  <Tile figure="failedDeploymentRecovery" raw={m.dora.failedDeploymentRecovery.medianMs} label="Failed deploy recovery" value={durationText(m.dora.failedDeploymentRecovery.medianMs)} sub={`${m.dora.failedDeploymentRecovery.unrecovered} unrecovered`} />
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
