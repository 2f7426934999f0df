import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { api } from '../api';
import { useLoad } from '../hooks';
import { can, useMe } from '../me';
import type { ViewProps } from '../main';
import { fmtIso } from '../time';
import { Badge, LoadState, Panel } from '../ui';

/** Access: database resources, pending requests (approve / deny), grants, live gateway sessions. */

interface Resource { id: string; name: string; host: string; port: number; database: string; tls?: { mode: string }; policy?: Record<string, unknown> }
interface AccessRequest { id: string; kind: string; userId: string; userName?: string; resourceId: string; mode: string | null; durationS: number | null; reason: string; sql: string | null; status: string; breakGlass: boolean; createdAt: string; decidedBy: string | null; note: string | null }
interface Grant { id: string; subjectKind: string; subject: string; resourceId: string; mode: string; expiresAt: string | null; createdBy: string; createdAt: string; revokedAt: string | null }
interface Session { id: string; user: string | null; resource: string | null; mode: string | null; grantExpiresAt: string | null }
interface User { id: string; name: string }

function duration(s: number | null): string {
  if (s === null) return '—';
  return s >= 86400 ? `${s / 86400}d` : s >= 3600 ? `${s / 3600}h` : s >= 60 ? `${s / 60}m` : `${s}s`;
}

export function AccessView(_props: ViewProps): JSX.Element {
  const me = useMe();
  const resources = useLoad((signal) => api<{ resources: Resource[] }>('/api/resources', { signal }), []);
  const requests = useLoad((signal) => api<{ requests: AccessRequest[] }>('/api/access/requests', { signal }), []);
  const grants = useLoad((signal) => api<{ grants: Grant[] }>('/api/access/grants', { signal }), []);
  const sessions = useLoad((signal) => api<{ sessions: Session[] }>('/api/gateway/sessions', { signal }), []);
  const users = useLoad((signal) => api<{ users: User[] }>('/api/users', { signal }), []);
  const [notice, setNotice] = useState<string | undefined>();
  const [err, setErr] = useState<string | undefined>();
  const names = new Map((resources.data?.resources ?? []).map((r) => [r.id, r.name]));
  // Grants and requests carry user ids; people read names (the id stays the fallback).
  const userNames = new Map((users.data?.users ?? []).map((u) => [u.id, u.name]));
  const userName = (id: string): string => userNames.get(id) ?? id;

  const decide = async (r: AccessRequest, verb: 'approve' | 'deny'): Promise<void> => {
    setErr(undefined);
    try {
      await api(`/api/access/requests/${r.id}/${verb}`, { method: 'POST', body: {} });
      setNotice(`Request ${r.id} ${verb === 'approve' ? 'approved' : 'denied'}.`);
      requests.reload();
      grants.reload();
    } catch (e) {
      setErr((e as Error).message);
    }
  };
  const revoke = async (g: Grant): Promise<void> => {
    try {
      await api(`/api/access/grants/${g.id}`, { method: 'DELETE' });
      grants.reload();
      sessions.reload();
    } catch (e) {
      setErr((e as Error).message);
    }
  };

  return (
    <>
      <h1>Access</h1>
      {notice !== undefined && <p class="notice" role="status">{notice}</p>}
      {err !== undefined && <p class="error-box" role="alert">{err}</p>}
      <Panel title="Access requests" id="requests">
        <LoadState loaded={requests} empty={(d) => d.requests.length === 0} emptyText="No access request.">
          {(d) => (
            <table class="table">
              <thead><tr><th scope="col">Requested</th><th scope="col">Who</th><th scope="col">Resource</th><th scope="col">What</th><th scope="col">Reason</th><th scope="col">Status</th><th scope="col">Actions</th></tr></thead>
              <tbody>
                {d.requests.map((r) => (
                  <tr key={r.id} data-request={r.id}>
                    <td>{fmtIso(r.createdAt)}</td>
                    <td>{r.userName ?? userName(r.userId)}</td>
                    <td>{names.get(r.resourceId) ?? r.resourceId}</td>
                    <td>{r.kind === 'statement' ? <code>{r.sql}</code> : `${r.mode ?? ''} for ${duration(r.durationS)}`}{r.breakGlass && <Badge value="break-glass" tone="bad" />}</td>
                    <td>{r.reason}</td>
                    <td><Badge value={r.status} />{r.decidedBy !== null && <span class="muted small"> by {userName(r.decidedBy)}</span>}</td>
                    <td>
                      {r.status === 'pending' && can(me, 'member') && (
                        <span class="toolbar">
                          <button type="button" class="primary" onClick={() => decide(r, 'approve')} aria-label={`Approve request ${r.id}`}>Approve</button>
                          <button type="button" onClick={() => decide(r, 'deny')} aria-label={`Deny request ${r.id}`}>Deny</button>
                        </span>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </LoadState>
      </Panel>
      <div class="split">
        <Panel title="Grants" id="grants">
          <LoadState loaded={grants} empty={(d) => d.grants.length === 0} emptyText="No active grant.">
            {(d) => (
              <table class="table">
                <thead><tr><th scope="col">Subject</th><th scope="col">Resource</th><th scope="col">Mode</th><th scope="col">Expires</th><th scope="col">By</th><th scope="col">Actions</th></tr></thead>
                <tbody>
                  {d.grants.map((g) => (
                    <tr key={g.id} data-grant={g.id}>
                      <td>{g.subjectKind}: {g.subjectKind === 'user' ? userName(g.subject) : g.subject}</td>
                      <td>{names.get(g.resourceId) ?? g.resourceId}</td>
                      <td><Badge value={g.mode} tone="neutral" /></td>
                      <td>{g.expiresAt === null ? 'never' : fmtIso(g.expiresAt)}</td>
                      <td>{userName(g.createdBy)}</td>
                      <td>{g.revokedAt === null && can(me, 'member') && <button type="button" onClick={() => revoke(g)}>Revoke</button>}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </LoadState>
        </Panel>
        <Panel title="Live gateway sessions" id="sessions">
          <LoadState loaded={sessions} empty={(d) => d.sessions.length === 0} emptyText="No client is connected to the gateway.">
            {(d) => (
              <table class="table">
                <thead><tr><th scope="col">User</th><th scope="col">Resource</th><th scope="col">Mode</th><th scope="col">Grant ends</th></tr></thead>
                <tbody>{d.sessions.map((s) => <tr key={s.id}><td>{s.user ?? '—'}</td><td>{s.resource ?? '—'}</td><td>{s.mode ?? '—'}</td><td>{fmtIso(s.grantExpiresAt)}</td></tr>)}</tbody>
              </table>
            )}
          </LoadState>
        </Panel>
      </div>
      <Panel title="Resources" id="resources">
        <LoadState loaded={resources} empty={(d) => d.resources.length === 0} emptyText="No database resource registered (POST /api/resources).">
          {(d) => (
            <table class="table">
              <thead><tr><th scope="col">Name</th><th scope="col">Upstream</th><th scope="col">Database</th><th scope="col">TLS</th></tr></thead>
              <tbody>{d.resources.map((r) => <tr key={r.id}><th scope="row">{r.name}</th><td>{r.host}:{r.port}</td><td>{r.database}</td><td>{r.tls?.mode ?? '—'}</td></tr>)}</tbody>
            </table>
          )}
        </LoadState>
      </Panel>
    </>
  );
}
