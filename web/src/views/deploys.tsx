import type { JSX } from 'preact';
import { api } from '../api';
import { TimeChart } from '../chart';
import { useLoad } from '../hooks';
import type { ViewProps } from '../main';
import { href, navigate } from '../router';
import { fmtIso, fmtNum } from '../time';
import type { Deploy, RedBucket, Verification } from '../types';
import { Badge, LoadState, Panel } from '../ui';
import { chartsAt, deployDirection, deployMarker } from '../deploy-marks';
import { deploysFor, stepFor } from './services';
import { Scorecard, type RolloutView } from './scorecard';
import { DeployStory } from './story';

/** Deploys: the list with verdicts; one deploy's evidence — baseline vs new version, statistics. */

async function deployDetail(id: string, signal: AbortSignal): Promise<{ deploy: Deploy; verification: Verification | null; rollout: RolloutView | null }> {
  // GET /api/deploys/:id answers the Deploy with its verification inline.
  const r = await api<Deploy & { verification?: Verification | null }>(`/api/deploys/${encodeURIComponent(id)}`, { signal });
  const rollout = r.source !== 'rollout' ? null
    : await api<RolloutView>(`/api/deploys/rollouts/${encodeURIComponent(id)}`, { signal }).catch(() => null);
  return { deploy: r, verification: r.verification ?? null, rollout };
}

function Compare(props: ViewProps & { deploy: Deploy; verification: Verification | null }): JSX.Element {
  const { deploy, verification } = props;
  const baseline = verification?.baselineVersion ?? deploy.previousVersion;
  const start = Date.parse(deploy.startedAt);
  // The moment of the deploy: 2 minutes before it to 3 minutes after its verdict.
  const end = deploy.decidedAt !== null ? Date.parse(deploy.decidedAt) + 3 * 60_000 : Date.now();
  const from = start - 2 * 60_000;
  const to = Math.min(Date.now(), Math.max(end, start + 3 * 60_000));
  const step = stepFor(from, to);
  const loaded = useLoad(async (signal) => {
    const get = (version: string | null): Promise<RedBucket[]> => api<{ buckets: RedBucket[] }>(`/api/services/${encodeURIComponent(deploy.service)}/red`,
      { params: { version: version ?? undefined, environment: deploy.environment, from, to, step }, signal }).then((r) => r.buckets);
    const [b, c] = await Promise.all([baseline === null ? Promise.resolve([]) : get(baseline), get(deploy.version)]);
    return { b, c };
  }, [deploy.id, baseline]);
  return (
    <LoadState loaded={loaded}>
      {(d) => {
        const times = [...new Set([...d.b, ...d.c].map((x) => x.timeUs / 1000))].sort((x, y) => x - y);
        const at = (bs: RedBucket[], f: (x: RedBucket) => number | null): Array<number | null> => {
          const m = new Map(bs.map((x) => [x.timeUs / 1000, f(x)]));
          return times.map((t) => m.get(t) ?? null);
        };
        const marker = [deployMarker(deploy)];
        const series = (f: (x: RedBucket) => number | null) => [
          { label: `baseline ${baseline ?? '—'}`, values: at(d.b, f) }, { label: `new ${deploy.version}`, values: at(d.c, f) },
        ];
        return (
          <div class="charts">
            <TimeChart theme={props.theme} title="Requests per second: baseline vs new version" times={times} series={series((x) => x.count === 0 ? null : x.rate)} markers={marker} unit="/s" />
            <TimeChart theme={props.theme} title="Error rate: baseline vs new version" times={times} series={series((x) => x.count === 0 ? null : x.errorRate * 100)} markers={marker} unit="%" />
            <TimeChart theme={props.theme} title="Latency p95: baseline vs new version" times={times} series={series((x) => x.count === 0 ? null : x.p95Ms)} markers={marker} unit=" ms" />
          </div>
        );
      }}
    </LoadState>
  );
}

function DeployDetail(props: ViewProps & { id: string }): JSX.Element {
  const loaded = useLoad((signal) => deployDetail(props.id, signal), [props.id]);
  return (
    <>
      <p><a href={href('/deploys')}>← all deploys</a></p>
      <LoadState loaded={loaded}>
        {({ deploy, verification, rollout }) => (
          <>
            <h1>{deploy.service} {deployDirection(deploy)} <Badge value={deploy.status} /></h1>
            <p><a href={chartsAt(deploy.service, Date.parse(deploy.startedAt))} data-link="charts-at-deploy">Charts at this deploy (−2 min … +3 min)</a></p>
            <p class="muted">{deploy.environment} · from {deploy.previousVersion ?? '—'} · {deploy.source} by {deploy.actor ?? '—'} · started {fmtIso(deploy.startedAt)} · decided {fmtIso(deploy.decidedAt)}</p>
            <DeployStory deploy={deploy} verification={verification} />
            <Panel title="Verdict" id="verdict">
              {verification === null ? <p class="muted">No verification for this deploy.</p> : <Scorecard deploy={deploy} verification={verification} rollout={rollout} />}
            </Panel>
            <Panel title="Baseline vs new version" id="compare"><Compare {...props} deploy={deploy} verification={verification} /></Panel>
          </>
        )}
      </LoadState>
    </>
  );
}

export function DeploysView(props: ViewProps): JSX.Element {
  const m = /^\/deploys\/([^/]+)$/.exec(props.route.path);
  if (m !== null) return <DeployDetail {...props} id={decodeURIComponent(m[1])} />;
  return <DeployList {...props} />;
}

function DeployList(props: ViewProps): JSX.Element {
  const loaded = useLoad((signal) => deploysFor(props.route.query.get('service') ?? undefined, props.range.fromMs, props.range.toMs, signal), [props.range.fromMs, props.range.toMs, props.route.query.get('service')]);
  if (props.route.path !== '/deploys') navigate('/deploys', {}, true);
  return (
    <>
      <h1>Deploys</h1>
      <Panel title="Deploys and verdicts" id="deploys">
        <LoadState loaded={loaded} empty={(d) => d.length === 0} emptyText="No deploy recorded in this time range (tightloop deploy record, or POST /api/deploys).">
          {(d) => (
            <table class="table">
              <thead><tr><th scope="col">Started</th><th scope="col">Service</th><th scope="col">Version</th><th scope="col">Environment</th><th scope="col">Verdict</th><th scope="col">Source</th><th scope="col">By</th></tr></thead>
              <tbody>
                {d.map((x) => (
                  <tr key={x.id}>
                    <td>{fmtIso(x.startedAt)}</td>
                    <td>{x.service}</td>
                    <th scope="row"><a href={href(`/deploys/${encodeURIComponent(x.id)}`)}>{deployDirection(x)}</a></th>
                    <td>{x.environment}</td>
                    <td><Badge value={x.status} /></td>
                    <td>{x.source}{x.rollbackOf !== null && ' (rollback)'}</td>
                    <td>{x.actor ?? '—'}</td>
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
