import type { JSX } from 'preact';
import { api, ApiError } from '../api';
import { chartsAt, deployDirection } from '../deploy-marks';
import { useLoad } from '../hooks';
import { href } from '../router';
import type { Deploy, ErrorGroup, Verification } from '../types';
import { Badge } from '../ui';

/**
 * One story, linked: a deploy ↔ its incident ↔ its rollback ↔ its new error groups ↔ their
 * example traces ↔ its commit; an error group ↔ the deploy that introduced it.
 */

interface IncidentLite { id: string; title: string; status: string; suspectDeployId?: string | null }

const STATUS_WORDS: Record<string, string> = { rolled_back: 'rolled back', failed: 'failed verification', passed: 'verified', inconclusive: 'inconclusive', verifying: 'verifying', started: 'started' };

/** Optional pillars answer 404 when absent: nothing to link then. */
async function optional<T>(p: Promise<T>, empty: T): Promise<T> {
  try {
    return await p;
  } catch (e) {
    if (e instanceof ApiError && (e.status === 404 || e.status === 403)) return empty;
    throw e;
  }
}

const incidentsOf = (service: string, signal: AbortSignal): Promise<IncidentLite[]> =>
  optional(api<{ incidents: IncidentLite[] }>('/api/incidents', { params: { service, limit: 200 }, signal }).then((r) => r.incidents), []);

/** "Introduced in 2.0.0 (rolled back)", linked to that deploy, its incident and its charts. */
export function IntroducedIn(props: { group: ErrorGroup }): JSX.Element | null {
  const { service, firstRelease } = props.group;
  const loaded = useLoad(async (signal) => {
    const deploys = await optional(api<{ deploys: Deploy[] }>('/api/deploys', { params: { service, version: firstRelease, limit: 20 }, signal }).then((r) => r.deploys), []);
    const deploy = deploys.find((d) => d.rollbackOf === null && d.source !== 'rollback') ?? deploys[0];
    if (deploy === undefined) return { deploy: undefined, incident: undefined, rollback: undefined };
    const [incidents, later] = await Promise.all([incidentsOf(service, signal), deploysAfter(deploy, signal)]);
    return { deploy, incident: incidents.find((i) => i.suspectDeployId === deploy.id), rollback: later.find((x) => x.rollbackOf === deploy.id) };
  }, [service, firstRelease]);
  const d = loaded.data?.deploy;
  if (firstRelease === '' || loaded.data === undefined) return null;
  if (d === undefined) return <p data-introduced="unknown">Introduced in <strong>{firstRelease}</strong> <span class="muted">(no deploy of it is recorded)</span></p>;
  const { incident: inc, rollback } = loaded.data;
  // A rollback replaced it whatever its own status says (a rollback recorded by hand leaves it "failed").
  const fate = d.status === 'rolled_back' || rollback === undefined ? STATUS_WORDS[d.status] ?? d.status
    : d.status === 'failed' || d.status === 'verifying' || d.status === 'started' ? 'rolled back' : `${STATUS_WORDS[d.status] ?? d.status}, rolled back`;
  return (
    <p data-introduced={d.status} data-rolled-back={d.status === 'rolled_back' || rollback !== undefined ? 'yes' : 'no'}>
      Introduced in <a href={href(`/deploys/${encodeURIComponent(d.id)}`)}>{firstRelease}</a> ({fate})
      {rollback !== undefined && <> · <a href={href(`/deploys/${encodeURIComponent(rollback.id)}`)}>its rollback</a></>}
      {inc !== undefined && <> · incident <a href={href(`/incidents/${encodeURIComponent(inc.id)}`)}>{inc.title}</a> <Badge value={inc.status} /></>}
      {' · '}<a href={chartsAt(d.service, Date.parse(d.startedAt))}>charts at that deploy</a>
    </p>
  );
}

const HEX32_G = /\b[0-9a-f]{32}\b/g;

/** The deploy's relations, each a link: rollback of / rolled back by, incident, new error groups and their traces, commit. */
export function DeployStory(props: { deploy: Deploy & { url?: string | null }; verification: Verification | null }): JSX.Element {
  const { deploy, verification } = props;
  const newGroupIds = [...new Set(verification?.evidence.filter((e) => e.signal === 'new_error_groups').flatMap((e) => (e.detail ?? '').match(HEX32_G) ?? []) ?? [])];
  const loaded = useLoad(async (signal) => {
    const [deploys, incidents, groups] = await Promise.all([
      deploysAfter(deploy, signal),
      incidentsOf(deploy.service, signal),
      Promise.all(newGroupIds.slice(0, 5).map((id) => optional(api<{ group: ErrorGroup; traceIds: string[] }>(`/api/errors/${id}`, { signal }), null))),
    ]);
    return {
      rolledBackBy: deploys.find((d) => d.rollbackOf === deploy.id),
      rollbackOf: deploy.rollbackOf === null ? undefined : await optional(api<Deploy>(`/api/deploys/${encodeURIComponent(deploy.rollbackOf)}`, { signal }), undefined),
      incident: incidents.find((i) => i.suspectDeployId === deploy.id || (deploy.rollbackOf !== null && i.suspectDeployId === deploy.rollbackOf)),
      groups: groups.filter((g): g is { group: ErrorGroup; traceIds: string[] } => g !== null),
    };
  }, [deploy.id, newGroupIds.join(',')]);
  const s = loaded.data;
  return (
    <dl class="kv story" aria-label="Deploy story">
      <div><dt>commit</dt><dd>{deploy.commit === null ? '—' : deploy.url != null ? <a href={deploy.url} rel="noreferrer" target="_blank"><code>{deploy.commit}</code></a> : <code>{deploy.commit}</code>}</dd></div>
      {s?.rollbackOf !== undefined && <div><dt>rolls back</dt><dd><a data-story="rollback-of" href={href(`/deploys/${encodeURIComponent(s.rollbackOf.id)}`)}>{deployDirection(s.rollbackOf)}</a> <Badge value={s.rollbackOf.status} /></dd></div>}
      {s?.rolledBackBy !== undefined && <div><dt>rolled back by</dt><dd><a data-story="rolled-back-by" href={href(`/deploys/${encodeURIComponent(s.rolledBackBy.id)}`)}>{deployDirection(s.rolledBackBy)}</a> <Badge value={s.rolledBackBy.status} /></dd></div>}
      {s?.incident !== undefined && <div><dt>incident</dt><dd><a data-story="incident" href={href(`/incidents/${encodeURIComponent(s.incident.id)}`)}>{s.incident.title}</a> <Badge value={s.incident.status} /></dd></div>}
      {(s?.groups.length ?? 0) > 0 && (
        <div><dt>new error groups</dt><dd>
          <ul class="plain">
            {s?.groups.map(({ group, traceIds }) => (
              <li key={group.id}>
                <a data-story="error-group" href={href(`/errors/${group.id}`)}>{group.title}</a> <span class="muted small">{group.count} events</span>
                {traceIds.slice(0, 3).map((t) => <> <a key={t} data-story="trace" href={href(`/traces/${t}`)}>trace {t.slice(0, 8)}</a></>)}
              </li>
            ))}
          </ul>
        </dd></div>
      )}
    </dl>
  );
}

/** The service's deploys from this one's start on (where its rollback is). */
function deploysAfter(deploy: Deploy, signal: AbortSignal): Promise<Deploy[]> {
  return optional(api<{ deploys: Deploy[] }>('/api/deploys', { params: { service: deploy.service, environment: deploy.environment, from: deploy.startedAt, limit: 200 }, signal }).then((r) => r.deploys), []);
}
