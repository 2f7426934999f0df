import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { TimeChart } from '../chart';
import { can, useMe } from '../me';
import { deployMarker } from '../deploy-marks';
import type { Deploy, RedBucket } from '../types';
import { deploysFor, stepFor } from './services';
import { api } from '../api';
import { useLoad } from '../hooks';
import type { ViewProps } from '../main';
import { href, navigate } from '../router';
import { durationText } from '../../../src/cli/loop-figures';
import { ago, fmtDurationMs, fmtIso } from '../time';
import { Badge, LoadState, Panel } from '../ui';
import { chartsAt } from '../deploy-marks';

/** The first bad signal is a 1 s rollup bucket: a detection inside that second reads "< 1 s". */
// The incident's figures are written as `tightloop report`, `incident show` and the Loop view write them.
const fmtDetect = (ms: number): string => (ms < 1000 ? '< 1 s (same rollup second)' : durationText(ms));

/** Incidents: the list; one incident's timeline story; acknowledge, resolve, run a suggested action. */

interface Incident {
  id: string; title: string; service: string; environment: string; status: string; signal?: string;
  openedAt?: string; detectedAt: string; firstBadAt?: string | null; acknowledgedAt?: string | null; acknowledgedBy?: string | null;
  recoveredAt?: string | null; resolvedAt?: string | null; resolution?: string | null; suspectDeployId?: string | null;
  /** Alerts resolved, but the fix's verification was inconclusive: recovered, not verified. */
  recoveredUnverified?: boolean;
}
interface DeployLink { id: string; service: string; version: string; status: string }
interface TimelineLinks { traceIds?: string[]; errorGroups?: string[]; alert?: string; deploy?: DeployLink; suspectDeploy?: DeployLink; auditSeq?: number }
interface TimelineEntry { at: string; kind: string; title?: string; actor?: string | null; service?: string | null; links?: TimelineLinks; data?: Record<string, unknown> }
interface ParamSpec { type?: string; required?: boolean; default?: string | number | boolean; values?: string[]; description?: string }
interface ActionDef { name: string; kind: string; description: string | null; approval: string; params: Record<string, ParamSpec>; operation?: string }
interface ActionRun { id: string; action: string; status: string; exitCode: number | null; output?: string | null; error?: string | null; durationMs?: number | null }
/** MTTD / MTTA / MTTR of this incident, computed by the server's one function (the loop page and `tightloop report` show the same). */
interface Times { mttdMs: number | null; mttaMs: number | null; mttrMs: number | null }
interface IncidentDetail {
  incident?: Incident; timeline?: TimelineEntry[]; links?: TimelineLinks; suspectDeploy?: DeployLink | null; times?: Times;
}
interface Normalised { incident: Incident; timeline: TimelineEntry[]; links: TimelineLinks; suspect: DeployLink | null; times: Times | null }

/** Accepts the story (`{incident, timeline, links, suspectDeploy, times}`) or an incident with its timeline inline. */
function normalise(r: IncidentDetail & Partial<Incident>): Normalised {
  const incident = r.incident ?? (r as Incident);
  return { incident, timeline: r.timeline ?? [], links: r.links ?? {}, suspect: r.suspectDeploy ?? null, times: r.times ?? null };
}

/**
 * Values an action's parameters can take from the incident: service, environment, the suspect
 * deploy's version (VERSION, the one a rollback undoes) and the version it replaced
 * (PREVIOUS_VERSION, where a rollback goes back to). Names match case-insensitively.
 */
function contextValues(i: Incident, suspect: DeployLink | null, previousVersion: string | null): Record<string, string> {
  const v: Record<string, string> = { service: i.service, environment: i.environment, env: i.environment, incident: i.id, incident_id: i.id };
  if (suspect !== null) Object.assign(v, { deploy: suspect.id, deploy_id: suspect.id, deployid: suspect.id, version: suspect.version });
  if (previousVersion !== null) Object.assign(v, { previous_version: previousVersion, to_version: previousVersion, target_version: previousVersion });
  return v;
}

/** Suggested: actions whose every required parameter the incident can fill; rollbacks first when a deploy is suspect. */
function suggest(defs: ActionDef[], ctx: Record<string, string>, suspect: DeployLink | null): Array<{ def: ActionDef; params: Record<string, string | number | boolean> }> {
  const out: Array<{ def: ActionDef; params: Record<string, string | number | boolean>; score: number }> = [];
  for (const def of defs) {
    const params: Record<string, string | number | boolean> = {};
    let ok = true;
    for (const [name, spec] of Object.entries(def.params)) {
      const v = ctx[name] ?? ctx[name.toLowerCase()];
      if (v !== undefined) params[name] = v;
      else if (spec.required === true && spec.default === undefined) ok = false;
    }
    if (!ok) continue;
    const rollback = /rollback/.test(def.name) || def.operation === 'rollback';
    // Shipping a version is not an incident response; a rollback needs a deploy to undo.
    if (def.operation === 'deploy' || /(^|[-_.])deploy$/.test(def.name)) continue;
    if (rollback && suspect === null) continue;
    out.push({ def, params, score: (rollback ? 2 : 0) + Object.keys(params).length });
  }
  return out.sort((a, b) => b.score - a.score).slice(0, 5);
}

const FINISHED = new Set(['succeeded', 'failed', 'denied', 'cancelled', 'timed_out', 'error']);

/** Polls a run until it finishes (or waits for an approval), at most ~2 minutes. */
async function settle(run: ActionRun): Promise<ActionRun> {
  let r = run;
  for (let i = 0; i < 240 && !FINISHED.has(r.status) && r.status !== 'pending_approval'; i++) {
    await new Promise((ok) => setTimeout(ok, 500));
    r = await api<ActionRun>(`/api/actions/runs/${encodeURIComponent(r.id)}`);
  }
  return r;
}

function SuggestedActions(props: { incident: Incident; suspect: DeployLink | null; onDone: () => void }): JSX.Element {
  const suspectId = props.suspect?.id;
  const catalogue = useLoad(async (signal) => {
    const actions = await api<{ actions: ActionDef[] }>('/api/actions', { signal }).then((r) => r.actions).catch(() => [] as ActionDef[]);
    const previous = suspectId === undefined ? null
      // The version tightloop would roll back to (seen serving healthily), not the record's previousVersion.
      : await api<{ rollbackTarget: string | null }>(`/api/deploys/${encodeURIComponent(suspectId)}`, { signal }).then((d) => d.rollbackTarget).catch(() => null);
    return { actions, previous };
  }, [suspectId]);
  const [confirming, setConfirming] = useState<string | undefined>();
  const [result, setResult] = useState<{ action: string; run?: ActionRun; error?: string; busy: boolean } | undefined>();
  const ctx = contextValues(props.incident, props.suspect, catalogue.data?.previous ?? null);
  const list = suggest(catalogue.data?.actions ?? [], ctx, props.suspect);
  const run = async (def: ActionDef, params: Record<string, string | number | boolean>): Promise<void> => {
    setConfirming(undefined);
    setResult({ action: def.name, busy: true });
    try {
      const started = await api<ActionRun>(`/api/actions/${encodeURIComponent(def.name)}/runs`, { method: 'POST', body: { params, deployId: props.suspect?.id } });
      setResult({ action: def.name, run: started, busy: true });
      const done = await settle(started);
      setResult({ action: def.name, run: done, busy: false });
    } catch (e) {
      setResult({ action: def.name, error: (e as Error).message, busy: false });
    }
    props.onDone(); // the run lands on the timeline
  };
  if (catalogue.data === undefined) return <p class="muted placeholder">Loading…</p>;
  return (
    <>
      {list.length === 0 ? <p class="muted">Nothing suggested (no action in the catalogue fits this incident).</p> : (
        <ul class="plain" aria-label="Suggested actions">
          {list.map(({ def, params }) => {
            const args = Object.entries(params).map(([k, v]) => `${k}=${String(v)}`).join(', ');
            return (
              <li key={def.name}>
                {confirming === def.name ? (
                  <div class="confirm" role="group" aria-label={`Confirm ${def.name}`}>
                    <span>Run <strong>{def.name}</strong>{args !== '' && <> with <code>{args}</code></>}{def.approval === 'required' && ' (an admin must approve it)'}?</span>{' '}
                    <button type="button" class="primary" onClick={() => run(def, params)}>Confirm {def.name}</button>{' '}
                    <button type="button" onClick={() => setConfirming(undefined)}>Cancel</button>
                  </div>
                ) : (
                  <>
                    <button type="button" disabled={result?.busy === true} onClick={() => setConfirming(def.name)}>Run {def.name}…</button>
                    {' '}<span class="muted small">{def.description ?? def.kind}{args !== '' && ` (${args})`}{def.approval === 'required' && ' · needs approval'}</span>
                  </>
                )}
              </li>
            );
          })}
        </ul>
      )}
      {result !== undefined && (
        <div class="run-result" role="status" data-run-status={result.run?.status ?? (result.error !== undefined ? 'error' : 'starting')}>
          {result.error !== undefined ? <p class="error-box">{result.action}: {result.error}</p> : (
            <p>
              {result.busy ? `Started ${result.action}` : `${result.action}`}{result.run !== undefined && <>: run <code>{result.run.id.slice(0, 10)}…</code> <Badge value={result.run.status.replace('_', ' ')} /></>}
              {result.run?.exitCode != null && <> exit {result.run.exitCode}</>}{result.run?.durationMs != null && <> in {fmtDurationMs(result.run.durationMs)}</>}
            </p>
          )}
          {result.run?.output != null && result.run.output !== '' && <pre class="small">{result.run.output}</pre>}
          {result.run?.error != null && <p class="error-box small">{result.run.error}</p>}
        </div>
      )}
    </>
  );
}

/** Where an entry points: its deploy, alert, error group or first trace. */
function entryLinks(e: TimelineEntry): JSX.Element[] {
  const l = e.links ?? {};
  const out: JSX.Element[] = [];
  const d = l.deploy ?? l.suspectDeploy;
  if (d !== undefined) out.push(<a key="d" href={href(`/deploys/${encodeURIComponent(d.id)}`)}>deploy {d.version}</a>);
  if (l.alert !== undefined) out.push(<a key="a" href={href('/alerts', { state: 'all', alert: l.alert })}>alert</a>);
  for (const g of (l.errorGroups ?? []).slice(0, 3)) out.push(<a key={`g${g}`} href={href(`/errors/${g}`)}>error group</a>);
  for (const t of (l.traceIds ?? []).slice(0, 2)) out.push(<a key={`t${t}`} href={href(`/traces/${t}`)}>trace {t.slice(0, 8)}</a>);
  if (l.auditSeq !== undefined) out.push(<a key="au" href={href('/audit', { seq: String(l.auditSeq) })}>audit #{l.auditSeq}</a>);
  return out;
}

/** "+12.2 s" from the first entry, and the gap since the previous one. */
function Timeline(props: { entries: TimelineEntry[] }): JSX.Element {
  const t0 = props.entries.length === 0 ? 0 : Date.parse(props.entries[0].at);
  return (
    <ol class="timeline" aria-label="Incident timeline">
      {props.entries.map((e, k) => {
        const at = Date.parse(e.at);
        const gap = k === 0 ? 0 : at - Date.parse(props.entries[k - 1].at);
        return (
          <li key={k} data-kind={e.kind}>
            {k > 0 && gap >= 1000 && <div class="gap muted small" data-gap-ms={gap}>{fmtDurationMs(gap)} later</div>}
            <time dateTime={e.at} title={fmtIso(e.at)} data-rel-ms={at - t0}>{k === 0 ? fmtIso(e.at) : `+${fmtDurationMs(at - t0)}`}</time> <Badge value={e.kind} tone="neutral" /> {e.title ?? e.kind}
            {e.actor != null && <span class="muted"> — {e.actor}</span>}
            <span class="entry-links">{entryLinks(e)}</span>
          </li>
        );
      })}
    </ol>
  );
}

const SIGNAL_CHART: Record<string, { title: string; unit: string; value: (b: RedBucket) => number | null }> = {
  error_rate: { title: 'Error rate', unit: '%', value: (b) => (b.count === 0 ? null : b.errorRate * 100) },
  latency: { title: 'Latency p95', unit: ' ms', value: (b) => b.p95Ms },
  rate: { title: 'Requests per second', unit: '/s', value: (b) => (b.count === 0 ? null : b.rate) },
};

/** The incident's signal for its service, by version, from before the first bad request to after it resolved. */
function SignalChart(props: { incident: Incident; theme: string }): JSX.Element {
  const i = props.incident;
  const start = Date.parse(i.firstBadAt ?? i.detectedAt);
  const spec = SIGNAL_CHART[i.signal ?? ''] ?? SIGNAL_CHART.error_rate;
  const loaded = useLoad(async (signal) => {
    // The window is fixed when the query starts (an open incident's end is now).
    const from = start - 2 * 60_000;
    const to = Math.min(Date.now(), Math.max(start + 3 * 60_000, (i.resolvedAt != null ? Date.parse(i.resolvedAt) : Date.now()) + 60_000));
    const step = stepFor(from, to);
    const { services } = await api<{ services: Array<{ service: string; versions: string[] }> }>('/api/services', { params: { from, to }, signal });
    const versions = services.find((x) => x.service === i.service)?.versions ?? [];
    const [series, deploys] = await Promise.all([
      Promise.all(versions.slice(0, 6).map((v) => api<{ buckets: RedBucket[] }>(`/api/services/${encodeURIComponent(i.service)}/red`, { params: { from, to, step, version: v, environment: i.environment }, signal })
        .then((r) => ({ version: v, buckets: r.buckets })))),
      deploysFor(i.service, from, to, signal) as Promise<Deploy[]>,
    ]);
    return { series, deploys, from, to };
  }, [i.id, start, i.resolvedAt]);
  return (
    <LoadState loaded={loaded} empty={(d) => d.series.length === 0} emptyText={`${i.service} sent no request around the incident.`}>
      {(d) => {
        const times = (d.series[0]?.buckets ?? []).map((b) => b.timeUs / 1000);
        return <TimeChart theme={props.theme} title={`${spec.title} of ${i.service} by version`} times={times} unit={spec.unit} height={160}
          series={d.series.map((x) => ({ label: `v${x.version}`, values: x.buckets.map((b) => (b.count === 0 ? null : spec.value(b))) }))}
          markers={d.deploys.map(deployMarker)} bands={[{ fromMs: start, toMs: i.resolvedAt != null ? Date.parse(i.resolvedAt) : d.to, label: 'incident' }]} xRange={{ fromMs: d.from, toMs: d.to }} />;
      }}
    </LoadState>
  );
}

/** A person's note on the timeline (members; viewers read notes withheld). */
function NoteForm(props: { onAdd: (note: string) => Promise<boolean> }): JSX.Element {
  const [text, setText] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    if (text.trim() === '') return;
    setBusy(true);
    try {
      if (await props.onAdd(text.trim())) setText(''); // kept on failure (the error shows above)
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="note-form" aria-label="Add a note" onSubmit={submit}>
      <label class="field"><span>Note</span>
        <textarea name="note" rows={2} maxLength={2000} required value={text} onInput={(e) => setText(e.currentTarget.value)} />
      </label>
      <button type="submit" disabled={busy || text.trim() === ''}>Add note</button>
    </form>
  );
}

function IncidentDetailView(props: ViewProps & { id: string }): JSX.Element {
  const loaded = useLoad((signal) => api<IncidentDetail & Partial<Incident>>(`/api/incidents/${encodeURIComponent(props.id)}`, { signal }).then(normalise), [props.id]);
  const me = useMe();
  const [err, setErr] = useState<string | undefined>();
  const [notice, setNotice] = useState<string | undefined>();
  const act = async (path: string, body: unknown, done: string): Promise<boolean> => {
    setErr(undefined);
    try {
      await api(`/api/incidents/${encodeURIComponent(props.id)}/${path}`, { method: 'POST', body });
      setNotice(done);
      loaded.reload();
      return true;
    } catch (e) {
      setErr((e as Error).message);
      return false;
    }
  };
  return (
    <>
      <p><a href={href('/incidents')}>← all incidents</a></p>
      <LoadState loaded={loaded}>
        {({ incident: i, timeline, links, suspect, times }) => {
          const resolved = i.resolvedAt != null;
          return (
            <>
              <h1>{i.title} <Badge value={i.status} />{i.recoveredUnverified === true && <> <Badge value="recovered, unverified" tone="warn" /></>}</h1>
              <p class="muted">{i.service} · {i.environment} · signal {i.signal ?? '—'} · detected {fmtIso(i.detectedAt)} ({ago(Date.parse(i.detectedAt))}){suspect !== null && <> · suspect deploy <a href={href(`/deploys/${encodeURIComponent(suspect.id)}`)}>{suspect.service} {suspect.version}</a> <Badge value={suspect.status} /></>}</p>
              {can(me, 'member') && !resolved && (
                <div class="toolbar" role="group" aria-label="Incident actions">
                  <button type="button" disabled={i.acknowledgedAt != null} onClick={() => act('ack', {}, 'Acknowledged.')}>Acknowledge</button>
                  <button type="button" onClick={() => act('resolve', {}, 'Resolved.')}>Resolve</button>
                </div>
              )}
              {notice !== undefined && <p class="notice" role="status">{notice}</p>}
              {err !== undefined && <p class="error-box" role="alert">{err}</p>}
              <dl class="kv figures" aria-label="Times">
                <div><dt>time to detect</dt><dd data-metric="mttd">{times?.mttdMs != null ? fmtDetect(times.mttdMs) : '—'}</dd></div>
                <div><dt>time to acknowledge</dt><dd data-metric="mtta">{times?.mttaMs != null ? durationText(times.mttaMs) : '—'}{i.acknowledgedBy != null && ` by ${i.acknowledgedBy}`}</dd></div>
                <div><dt>time to recover</dt><dd data-metric="mttr">{times?.mttrMs != null ? durationText(times.mttrMs) : resolved ? '—' : 'not recovered yet'}</dd></div>
                <div><dt>resolved</dt><dd>{fmtIso(i.resolvedAt)}{i.resolution != null && ` (${i.resolution})`}</dd></div>
              </dl>
              <Panel title="Signal" id="signal" actions={<a data-link="charts-at-incident" href={chartsAt(i.service, Date.parse(i.firstBadAt ?? i.detectedAt), Math.max(3 * 60_000, (resolved ? Date.parse(i.resolvedAt ?? '') : Date.now()) - Date.parse(i.firstBadAt ?? i.detectedAt) + 60_000))}>all charts of {i.service} at the incident</a>}>
                <SignalChart incident={i} theme={props.theme} />
              </Panel>
              <div class="split">
                <Panel title="Timeline" id="timeline">
                  {timeline.length === 0 ? <p class="muted">No entry yet.</p> : <Timeline entries={timeline} />}
                  {can(me, 'member') && <NoteForm onAdd={(note) => act('notes', { note }, 'Note added.')} />}
                </Panel>
                <div>
                  {can(me, 'member') && !resolved && (
                    <Panel title="Suggested actions" id="actions">
                      <SuggestedActions incident={i} suspect={suspect} onDone={() => loaded.reload()} />
                    </Panel>
                  )}
                  <Panel title="Evidence" id="evidence">
                    {(links.traceIds ?? []).length > 0 && (
                      <>
                        <h4>Failing traces in the first minutes</h4>
                        <ul class="plain">{(links.traceIds ?? []).map((t) => <li key={t}><a href={href(`/traces/${t}`)}><code>{t}</code></a></li>)}</ul>
                      </>
                    )}
                    {(links.errorGroups ?? []).length > 0 && (
                      <ul class="plain">{(links.errorGroups ?? []).map((g) => <li key={g}><a href={href(`/errors/${g}`)}>error group {g.slice(0, 8)}</a></li>)}</ul>
                    )}
                    <p><a href={href('/logs', { service: i.service, severity: '13', from: String(Date.parse(i.firstBadAt ?? i.detectedAt) - 60_000), to: resolved ? String(Date.parse(i.resolvedAt ?? '') + 60_000) : undefined })}>Logs of {i.service} around the incident</a></p>
                  </Panel>
                </div>
              </div>
            </>
          );
        }}
      </LoadState>
    </>
  );
}

export function IncidentsView(props: ViewProps): JSX.Element {
  const m = /^\/incidents\/([^/]+)$/.exec(props.route.path);
  if (m !== null) return <IncidentDetailView {...props} id={decodeURIComponent(m[1])} />;
  return <IncidentList {...props} />;
}

function IncidentList(props: ViewProps): JSX.Element {
  const status = props.route.query.get('status') ?? '';
  const loaded = useLoad((signal) => api<{ incidents: Incident[] }>('/api/incidents', { params: { status, limit: 200 }, signal }), [status]);
  if (props.route.path !== '/incidents') navigate('/incidents', {}, true);
  return (
    <>
      <h1>Incidents</h1>
      <Panel title="Incidents" id="incidents">
        <LoadState loaded={loaded} empty={(d) => d.incidents.length === 0} emptyText="No incident yet: one opens when an alert fires or a deploy fails verification.">
          {(d) => (
            <table class="table">
              <thead><tr><th scope="col">Detected</th><th scope="col">Incident</th><th scope="col">Service</th><th scope="col">Status</th><th scope="col">Acknowledged</th><th scope="col">Resolved</th></tr></thead>
              <tbody>
                {d.incidents.map((i) => (
                  <tr key={i.id}>
                    <td>{fmtIso(i.detectedAt)}</td>
                    <th scope="row"><a href={href(`/incidents/${encodeURIComponent(i.id)}`)}>{i.title}</a></th>
                    <td>{i.service}</td>
                    <td><Badge value={i.status} />{i.recoveredUnverified === true && <> <Badge value="recovered, unverified" tone="warn" /></>}</td>
                    <td>{fmtIso(i.acknowledgedAt)}</td>
                    <td>{fmtIso(i.resolvedAt)}</td>
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
