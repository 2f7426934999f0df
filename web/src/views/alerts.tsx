import { Fragment, type JSX } from 'preact';
import { useState } from 'preact/hooks';
import { api } from '../api';
import { useLoad } from '../hooks';
import { can, useMe } from '../me';
import type { ViewProps } from '../main';
import { href, patch } from '../router';
import { fmtIso, fmtNum } from '../time';
import type { Alert } from '../types';
import { Badge, Field, LoadState, Panel } from '../ui';

/** Alerts: firing / pending / resolved / all, an alert's history, rules, silences (create one from an alert). */

const TABS = ['firing', 'pending', 'resolved', 'all'];

interface Silence { id: string; matchers: Array<{ name: string; value: string; op: string }>; startsAt: string; endsAt: string; comment: string; createdBy: string; state: string }
interface RuleSpec { name: string; type?: string; signal?: string; op?: string; threshold?: number; objective?: number; select?: Record<string, string> }
interface Rule { id: string; source?: string; spec: RuleSpec }

function SilenceForm(props: { alert: Alert; onDone: (created: boolean) => void }): JSX.Element {
  const labels = Object.entries(props.alert.labels);
  const [use, setUse] = useState<Record<string, boolean>>(Object.fromEntries(labels.map(([k]) => [k, true])));
  const [duration, setDuration] = useState('1h');
  const [comment, setComment] = useState(`silenced from alert ${props.alert.ruleName}`);
  const [err, setErr] = useState<string | undefined>();
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    try {
      const matchers = labels.filter(([k]) => use[k]).map(([name, value]) => ({ name, value, op: '=' }));
      await api('/api/silences', { method: 'POST', body: { matchers, duration, comment } });
      props.onDone(true);
    } catch (x) {
      setErr((x as Error).message);
    }
  };
  return (
    <form class="silence-form" onSubmit={submit} aria-label={`Silence alert ${props.alert.ruleName}`}>
      <fieldset>
        <legend>Match labels</legend>
        {labels.map(([k, v]) => (
          <label key={k} class="check"><input type="checkbox" checked={use[k]} onChange={(e) => setUse({ ...use, [k]: e.currentTarget.checked })} /> <code>{k}="{v}"</code></label>
        ))}
      </fieldset>
      <Field label="Duration">
        <select name="duration" value={duration} onChange={(e) => setDuration(e.currentTarget.value)}>
          {['15m', '1h', '4h', '1d', '7d'].map((d) => <option key={d}>{d}</option>)}
        </select>
      </Field>
      <Field label="Comment"><input name="comment" value={comment} onInput={(e) => setComment(e.currentTarget.value)} /></Field>
      {err !== undefined && <p class="error-box" role="alert">{err}</p>}
      <button type="submit" class="primary">Create silence</button>
      <button type="button" onClick={() => props.onDone(false)}>Cancel</button>
    </form>
  );
}

function AlertHistory(props: { id: string }): JSX.Element {
  const loaded = useLoad((signal) => api<Alert & { history: Array<{ state: string; value: number | null; at: string }> }>(`/api/alerts/${props.id}`, { signal }), [props.id]);
  return (
    <LoadState loaded={loaded}>
      {(d) => (
        <ol class="timeline" aria-label="Alert history">
          {d.history.map((h, i) => <li key={i}><time>{fmtIso(h.at)}</time> <Badge value={h.state} /> value {fmtNum(h.value)}</li>)}
        </ol>
      )}
    </LoadState>
  );
}

export function AlertsView(props: ViewProps): JSX.Element {
  const me = useMe();
  const q = props.route.query;
  const tab = q.get('state') ?? 'firing';
  const open = q.get('alert') ?? undefined;
  const [silencing, setSilencing] = useState<string | undefined>();
  const [notice, setNotice] = useState<string | undefined>();
  const alerts = useLoad((signal) => api<{ alerts: Alert[] }>('/api/alerts', { params: { state: tab, limit: 500 }, signal }), [tab]);
  const silences = useLoad((signal) => api<{ silences: Silence[] }>('/api/silences', { signal }), []);
  const rules = useLoad((signal) => api<{ rules: Rule[] }>('/api/rules', { signal }), []);
  return (
    <>
      <h1>Alerts</h1>
      <div class="tabs" role="tablist" aria-label="Alert state">
        {TABS.map((t) => (
          <button key={t} type="button" role="tab" aria-selected={t === tab} class={t === tab ? 'active' : ''} onClick={() => patch({ state: t, alert: undefined })}>{t}</button>
        ))}
      </div>
      {notice !== undefined && <p class="notice" role="status">{notice}</p>}
      <Panel title={`Alerts: ${tab}`} id="alerts">
        <LoadState loaded={alerts} empty={(d) => d.alerts.length === 0} emptyText={`No ${tab === 'all' ? '' : tab + ' '}alerts.`}>
          {(d) => (
            <table class="table">
              <thead><tr><th scope="col">Rule</th><th scope="col">State</th><th scope="col">Labels</th><th scope="col" class="num">Value</th><th scope="col">Since</th><th scope="col">Resolved</th><th scope="col">Actions</th></tr></thead>
              <tbody>
                {d.alerts.map((a) => (
                  <Fragment key={a.id}>
                    <tr class={open === a.id ? 'selected' : ''}>
                      <th scope="row"><a href={href('/alerts', { state: tab, alert: a.id })}>{a.ruleName}</a></th>
                      <td><Badge value={a.state} />{a.muted !== null && a.muted !== undefined && <Badge value="silenced" tone="neutral" />}</td>
                      <td>{Object.entries(a.labels).map(([k, v]) => <code key={k} class="label">{k}={v}</code>)}</td>
                      <td class="num">{fmtNum(a.value)}</td>
                      <td>{fmtIso(a.firedAt ?? a.activeAt)}</td>
                      <td>{fmtIso(a.resolvedAt)}</td>
                      <td class="nowrap">
                        {a.state !== 'resolved' && can(me, 'member') && <button type="button" onClick={() => setSilencing(silencing === a.id ? undefined : a.id)} aria-expanded={silencing === a.id}>Silence…</button>}
                        {a.labels.service !== undefined && <a class="after-button" href={href('/services', { service: a.labels.service })}>service</a>}
                      </td>
                    </tr>
                    {silencing === a.id && (
                      <tr key={`${a.id}-s`}><td colSpan={7}>
                        <SilenceForm alert={a} onDone={(created) => {
                          setSilencing(undefined);
                          if (created) { setNotice(`Silence created for ${a.ruleName}.`); silences.reload(); alerts.reload(); }
                        }} />
                      </td></tr>
                    )}
                    {open === a.id && <tr key={`${a.id}-h`}><td colSpan={7}><AlertHistory id={a.id} /></td></tr>}
                  </Fragment>
                ))}
              </tbody>
            </table>
          )}
        </LoadState>
      </Panel>
      <div class="split">
        <Panel title="Silences" id="silences">
          <LoadState loaded={silences} empty={(d) => d.silences.length === 0} emptyText="No active or pending silence.">
            {(d) => (
              <table class="table">
                <thead><tr><th scope="col">Matchers</th><th scope="col">State</th><th scope="col">Ends</th><th scope="col">By</th><th scope="col">Comment</th><th scope="col">Actions</th></tr></thead>
                <tbody>
                  {d.silences.map((s) => (
                    <tr key={s.id}>
                      <td>{s.matchers.map((m, i) => <code key={i} class="label">{m.name}{m.op}"{m.value}"</code>)}</td>
                      <td><Badge value={s.state} /></td>
                      <td>{fmtIso(s.endsAt)}</td>
                      <td>{s.createdBy}</td>
                      <td>{s.comment}</td>
                      <td>{s.state !== 'expired' && can(me, 'member') && <button type="button" onClick={() => { void api(`/api/silences/${s.id}`, { method: 'DELETE' }).then(() => silences.reload()); }}>Expire</button>}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </LoadState>
        </Panel>
        <Panel title="Rules" id="rules">
          <LoadState loaded={rules} empty={(d) => d.rules.length === 0} emptyText="No rule defined (rules.yaml or POST /api/rules).">
            {(d) => (
              <table class="table">
                <thead><tr><th scope="col">Rule</th><th scope="col">Type</th><th scope="col">Condition</th><th scope="col">Selects</th></tr></thead>
                <tbody>
                  {d.rules.map(({ id, source, spec: r }) => (
                    <tr key={id}>
                      <th scope="row">{r.name}{source !== undefined && <span class="muted small"> ({source})</span>}</th>
                      <td>{r.type ?? '—'}</td>
                      <td>{r.signal !== undefined && r.threshold !== undefined ? `${r.signal} ${r.op ?? '>'} ${r.threshold}` : r.objective !== undefined ? `objective ${r.objective}` : '—'}</td>
                      <td>{Object.entries(r.select ?? {}).map(([k, v]) => <code key={k} class="label">{k}={v}</code>)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </LoadState>
        </Panel>
      </div>
    </>
  );
}
