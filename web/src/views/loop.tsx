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

export function LoopView(props: ViewProps): JSX.Element {
  const service = props.route.query.get('service') ?? undefined;
  // Trends need weeks: the loop view looks back at least 12 weeks whatever the picker says.
  const from = Math.min(props.range.fromMs, props.range.toMs - 84 * 86_400_000);
  const loaded = useLoad((signal) => api<LoopMetrics>('/api/loop-metrics', { params: { service, from: new Date(from).toISOString(), to: new Date(props.range.toMs).toISOString() }, signal }),
    [service, from, props.range.toMs]);
  return (
    <>
      <h1>Loop</h1>
      <LoadState loaded={loaded}>
        {(m) => {
          const times = m.weeks.map((w) => Date.parse(w.weekStart));
          const h = (v: number | null): number | null => v === null ? null : v / 3_600_000;
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
                  <TimeChart theme={props.theme} title="MTTD / MTTR median (hours)" times={times} series={[{ label: 'MTTD', values: m.weeks.map((w) => h(w.mttdMedianMs)) }, { label: 'MTTR', values: m.weeks.map((w) => h(w.mttrMedianMs)) }]} unit=" h" />
                  <TimeChart theme={props.theme} title="Deployments and incidents per week" times={times} series={[{ label: 'deployments', values: m.weeks.map((w) => w.deployments) }, { label: 'incidents', values: m.weeks.map((w) => w.incidents) }]} />
                  <TimeChart theme={props.theme} title="Change fail rate (%)" times={times} series={[{ label: 'change fail rate', values: m.weeks.map((w) => w.changeFailRate === null ? null : w.changeFailRate * 100) }]} unit="%" />
                  <TimeChart theme={props.theme} title="Lead time median (hours)" times={times} series={[{ label: 'lead time', values: m.weeks.map((w) => h(w.leadTimeMedianMs)) }]} unit=" h" />
                </div>
              </Panel>
            </>
          );
        }}
      </LoadState>
    </>
  );
}
