import type { ComponentChildren, JSX } from 'preact';
import { href } from '../router';
import { fmtDurationMs, fmtNum, fmtPct } from '../time';
import type { Deploy, SignalEvidence, Verification } from '../types';
import { Badge } from '../ui';

/**
 * The verdict as a scorecard: one plain sentence per signal ("2 of 11 requests failed vs 0 of 15
 * in the baseline"), why a signal is still inconclusive, the raw statistics folded away, and the
 * rollout's steps with their verdicts. A failed verdict is explained by its failing signals, never
 * by an empty measurement ("0 requests" is said as "no request measured").
 */

export interface RolloutStep { weight: number; runId: string | null; verdicts?: Array<{ outcome: string; verificationId?: string; reason: string | null; at: string }> }
export interface RolloutView {
  id: string; status: string; reason: string | null; promotedWithoutEvidence?: boolean; steps?: RolloutStep[];
  rollbackTo?: string | null; rollbackDeployId?: string | null; rollbackVerdict?: string | null; startedAt?: string; finishedAt?: string | null;
}

const n = (r: Record<string, number>, k: string): number | undefined => (typeof r[k] === 'number' && Number.isFinite(r[k]) ? r[k] : undefined);
const HEX32 = /^([0-9a-f]{32}): (.*)$/;
/** The server's detail line of a new group: `<id>: <title> (<k> event(s) in <n> requests[, share shown above x %])`. */
const GROUP_COUNTS = /^(.*) \((\d+) event\(s\) in (\d+) requests(?:, share shown above [^)]*)?\)$/;

/** A new group's title and, in words, how often it was seen: never "in 0 requests" (the verdict can come before any request is counted). */
function groupWords(line: string): { title: string; counts: string } {
  const m = GROUP_COUNTS.exec(line);
  if (m === null) return { title: line, counts: '' };
  const events = Number(m[2]), requests = Number(m[3]);
  const ev = `${events} event${events === 1 ? '' : 's'}`;
  return { title: m[1], counts: requests === 0 ? ` (${ev}, before any request of the new version was counted)` : ` (${ev} in ${requests} request${requests === 1 ? '' : 's'})` };
}

/** How far a sequential test has come towards its bound, as a share (0 … 1). */
function progress(log: number | undefined, bound: number | undefined): number | null {
  if (log === undefined || bound === undefined || bound <= 0) return null;
  return Math.max(0, Math.min(1, log / bound));
}

function whyInconclusive(toFail: number | null, toPass: number | null, requests: number | undefined): string {
  if (requests === 0) return 'No request of the new version was measured, so nothing could be compared.';
  const parts: string[] = [];
  if (toFail !== null) parts.push(`evidence that it is worse: ${Math.round(toFail * 100)} % of what a fail needs`);
  if (toPass !== null) parts.push(`that it is not worse: ${Math.round(toPass * 100)} % of what a pass needs`);
  const few = requests !== undefined && requests < 100 ? `Only ${requests} request${requests === 1 ? '' : 's'} of the new version: ` : 'Not enough evidence either way: ';
  return few + (parts.length > 0 ? parts.join('; ') + '.' : 'the tests have not reached a decision.');
}

const reqs = (k: number | undefined): string => (k === undefined ? '?' : String(k));

/** One sentence (and, when undecided, why) for a signal. */
export function describe(e: SignalEvidence, baselineName: string): { text: ComponentChildren; why?: string } {
  const b = e.baseline, c = e.candidate, s = e.stats;
  const undecided = e.outcome === 'inconclusive' || e.outcome === 'pending';
  if (e.signal === 'error_rate') {
    const cn = n(c, 'requests'), bn = n(b, 'requests');
    const text = cn === 0 ? `No request of the new version was measured (${reqs(bn)} in the baseline).`
      : `${reqs(n(c, 'errors'))} of ${reqs(cn)} requests failed (${fmtPct(n(c, 'rate'))}) vs ${reqs(n(b, 'errors'))} of ${reqs(bn)} in the baseline ${baselineName} (${fmtPct(n(b, 'rate'))}).`;
    return { text, why: undecided ? whyInconclusive(progress(n(s, 'failLogLr'), n(s, 'failThreshold')), progress(Math.max(n(s, 'passLogLr') ?? 0, n(s, 'absPassLogLr') ?? 0), n(s, 'passThreshold')), cn) : undefined };
  }
  if (e.signal === 'latency') {
    const cn = n(c, 'requests');
    const tail = n(s, 'tailThresholdMs');
    const text = cn === 0 ? 'No request of the new version was measured.'
      : <>p95 {fmtDurationMs(n(c, 'p95Ms'))} vs {fmtDurationMs(n(b, 'p95Ms'))} in the baseline {baselineName}; {fmtPct(n(c, 'slowRate'))} of requests slower than the baseline's p95{tail !== undefined && tail > 0 ? ` (${fmtDurationMs(tail)})` : ''} vs {fmtPct(n(b, 'slowRate'))}.</>;
    return { text, why: undecided ? whyInconclusive(progress(n(s, 'tailFailLogLr'), n(s, 'failThreshold')), progress(n(s, 'tailPassLogLr'), n(s, 'passThreshold')), cn) : undefined };
  }
  if (e.signal === 'new_error_groups') {
    const count = n(c, 'newGroups') ?? 0;
    const groups = (e.detail ?? '').split('\n').map((l) => HEX32.exec(l)).filter((m): m is RegExpExecArray => m !== null);
    if (count === 0) return { text: 'No error group appeared only in the new version.' };
    return {
      text: <>{count} error group{count === 1 ? '' : 's'} seen only in the new version{groups.length > 0 && ': '}
        {groups.map((m, i) => {
          const w = groupWords(m[2]);
          return <span key={m[1]}>{i > 0 && ', '}<a href={href(`/errors/${m[1]}`)}>{w.title}</a>{w.counts}</span>;
        })}.</>,
    };
  }
  if (e.signal === 'baseline') {
    const conc = n(b, 'concurrentRequests'), pre = n(b, 'preDeployRequests');
    const counts = [conc !== undefined && conc > 0 ? `${conc} requests at the same time` : '', pre !== undefined && pre > 0 ? `${pre} from before the deploy` : ''].filter((x) => x !== '');
    return { text: `${e.detail ?? 'Baseline'}${counts.length > 0 ? ` — ${counts.join(', ')}` : ''}.` };
  }
  // Metric checks and anything newer: the numbers side by side, in words.
  const pair = Object.keys(c).map((k) => `${k} ${fmtNum(c[k])}${b[k] !== undefined ? ` vs ${fmtNum(b[k])}` : ''}`).join(', ');
  return { text: `${e.signal.replace(/^metric:/, 'metric ')}: ${pair || e.detail || 'no figures'}${pair !== '' && b !== undefined && Object.keys(b).length > 0 ? ' (new vs baseline)' : ''}.`, why: undecided ? 'Not enough points to decide.' : undefined };
}

function RawStats(props: { e: SignalEvidence }): JSX.Element {
  const { e } = props;
  const rows = (label: string, r: Record<string, number>): JSX.Element[] => Object.entries(r).map(([k, v]) => <tr key={label + k}><td class="muted">{label}</td><td>{k}</td><td class="num">{fmtNum(v, 4)}</td></tr>);
  const p = Object.entries(e.stats).find(([k]) => /ValidP$|^p$|p_?value/i.test(k));
  return (
    <details class="raw">
      <summary class="muted small">statistics{p !== undefined && <> · <span data-pvalue>p {p[1] < 1e-4 ? p[1].toExponential(1) : Number(p[1].toPrecision(3))}</span></>}</summary>
      <table class="table compact"><tbody>{rows('baseline', e.baseline)}{rows('new', e.candidate)}{rows('test', e.stats)}</tbody></table>
      {e.detail !== undefined && <p class="small muted">{e.detail}</p>}
    </details>
  );
}

const ORDER: Record<string, number> = { fail: 0, inconclusive: 1, pending: 2, pass: 3 };

export function Scorecard(props: { deploy: Deploy; verification: Verification; rollout: RolloutView | null }): JSX.Element {
  const { verification: v, deploy } = props;
  const baselineName = v.baselineVersion ?? deploy.previousVersion ?? '';
  const failing = v.evidence.filter((e) => e.outcome === 'fail');
  const signals = [...v.evidence].sort((a, b) => (ORDER[a.outcome] ?? 4) - (ORDER[b.outcome] ?? 4));
  return (
    <>
      <p data-verdict={v.outcome ?? 'pending'} class="verdict-line">
        <Badge value={v.outcome ?? 'pending'} /> {v.reason ?? ''} <span class="muted">(baseline: {v.baselineKind}{v.baselineVersion !== null ? ` ${v.baselineVersion}` : ''})</span>
      </p>
      {failing.length > 0 && (
        <ul class="plain decided-by" aria-label="Decided by">
          {failing.map((e) => <li key={e.signal}><strong>{e.signal}</strong>: {describe(e, baselineName).text}</li>)}
        </ul>
      )}
      {props.rollout?.promotedWithoutEvidence === true && <p class="notice" data-rollout="promoted-without-evidence"><Badge value="promoted without evidence" tone="warn" /> the service's <code>onInconclusive: promote</code> took this rollout past an inconclusive verdict.</p>}
      {props.rollout?.status === 'held' && <p class="notice" data-rollout="held"><Badge value="held" tone="warn" /> {props.rollout.reason ?? ''}</p>}
      {props.rollout !== null && (props.rollout.steps ?? []).length > 0 && <RolloutSteps rollout={props.rollout} startMs={Date.parse(deploy.startedAt)} />}
      <div class="table-scroll">
        <table class="table scorecard">
          <thead><tr><th scope="col">Signal</th><th scope="col">Outcome</th><th scope="col">What was seen</th></tr></thead>
          <tbody>
            {signals.map((e) => {
              const d = describe(e, baselineName);
              return (
                <tr key={e.signal} data-signal={e.signal}>
                  <th scope="row">{e.signal}</th>
                  <td><Badge value={e.outcome} /></td>
                  <td>
                    <div class="sentence">{d.text}</div>
                    {d.why !== undefined && <div class="small why" data-why>{d.why}</div>}
                    <RawStats e={e} />
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
    </>
  );
}

const rel = (ms: number, startMs: number): string => `+${fmtDurationMs(Math.max(0, ms - startMs))}`;

/** The rollout's steps: weight, the verdicts each step got (when, relative to the deploy), and how it ended. */
function RolloutSteps(props: { rollout: RolloutView; startMs: number }): JSX.Element {
  const r = props.rollout;
  return (
    <ol class="steps" aria-label="Rollout steps">
      {(r.steps ?? []).map((s, i) => {
        const last = s.verdicts?.[s.verdicts.length - 1];
        return (
          <li key={i} data-weight={s.weight} class={last === undefined ? 'step not-reached' : `step ${last.outcome}`}>
            <div class="step-weight"><span class="bar" style={{ width: `${s.weight}%` }} /> <strong>{s.weight} %</strong></div>
            {(s.verdicts ?? []).length === 0 ? <div class="muted small">not reached</div>
              : (s.verdicts ?? []).map((x, j) => <div key={j} class="small"><Badge value={x.outcome} /> {rel(Date.parse(x.at), props.startMs)} {x.reason ?? ''}</div>)}
          </li>
        );
      })}
      {r.rollbackDeployId != null && (
        <li class="step rollback">
          <div class="step-weight"><strong>rollback</strong></div>
          <div class="small"><a href={href(`/deploys/${encodeURIComponent(r.rollbackDeployId)}`)}>to {r.rollbackTo ?? 'the previous version'}</a>{r.rollbackVerdict != null && <> <Badge value={r.rollbackVerdict} /></>}{r.finishedAt != null && <> {rel(Date.parse(r.finishedAt), props.startMs)}</>}</div>
        </li>
      )}
    </ol>
  );
}
