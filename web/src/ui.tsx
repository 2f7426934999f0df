import type { ComponentChildren, JSX } from 'preact';
import { ApiError } from './api';
import type { Loaded } from './hooks';

/** Small shared pieces: panels, status badges, load states, sparklines. */

export function Panel(props: { title: string; actions?: ComponentChildren; children: ComponentChildren; id?: string }): JSX.Element {
  return (
    <section class="panel" aria-labelledby={props.id === undefined ? undefined : `${props.id}-h`}>
      <header class="panel-head">
        <h2 id={props.id === undefined ? undefined : `${props.id}-h`}>{props.title}</h2>
        {props.actions !== undefined && <div class="panel-actions">{props.actions}</div>}
      </header>
      {props.children}
    </section>
  );
}

const TONES: Record<string, string> = {
  firing: 'bad', failed: 'bad', fail: 'bad', error: 'bad', regressed: 'bad', denied: 'bad', open: 'bad', critical: 'bad', fatal: 'bad',
  pending: 'warn', verifying: 'warn', inconclusive: 'warn', unresolved: 'warn', warning: 'warn', acknowledged: 'warn', started: 'warn', pending_approval: 'warn',
  resolved: 'ok', passed: 'ok', pass: 'ok', ok: 'ok', approved: 'ok', active: 'ok', succeeded: 'ok', verified: 'ok',
};

export function Badge(props: { value: string | null | undefined; tone?: string }): JSX.Element {
  const v = props.value ?? '—';
  return <span class={`badge ${props.tone ?? TONES[v.toLowerCase()] ?? 'neutral'}`}>{v}</span>;
}

/** Loading / error / empty states that keep their place in the layout. */
export function LoadState<T>(props: { loaded: Loaded<T>; empty?: (d: T) => boolean; emptyText?: string; children: (d: T) => ComponentChildren }): JSX.Element {
  const { data, error, loading } = props.loaded;
  if (data === undefined) {
    if (error !== undefined) return <ErrorBox error={error} />;
    return <p class="muted placeholder" aria-busy={loading}>Loading…</p>;
  }
  return (
    <>
      {error !== undefined && <ErrorBox error={error} />}
      {props.empty?.(data) === true ? <p class="muted placeholder">{props.emptyText ?? 'Nothing here in this time range.'}</p> : props.children(data)}
    </>
  );
}

export function ErrorBox(props: { error: Error }): JSX.Element {
  const e = props.error;
  const notBuilt = e instanceof ApiError && e.status === 404 && e.code === 'not_found';
  return (
    <p class="error-box" role="alert">
      {notBuilt ? `Not available on this server yet (${e.message}).` : e.message}
    </p>
  );
}

/** A tiny inline SVG sparkline (cheaper than a chart per table row). */
export function Sparkline(props: { values: number[]; label: string; width?: number; height?: number }): JSX.Element {
  const w = props.width ?? 120;
  const h = props.height ?? 24;
  const max = Math.max(1, ...props.values);
  const n = props.values.length;
  const bw = n === 0 ? 0 : w / n;
  return (
    <svg class="spark" width={w} height={h} viewBox={`0 0 ${w} ${h}`} role="img" aria-label={props.label}>
      <line x1="0" y1={h - 0.5} x2={w} y2={h - 0.5} class="spark-base" />
      {props.values.map((v, i) => {
        const bh = v === 0 ? 0 : Math.max(1, (v / max) * (h - 2));
        return <rect key={i} x={i * bw + 0.5} y={h - bh} width={Math.max(1, bw - 1)} height={bh} />;
      })}
    </svg>
  );
}

/** Horizontal bars (e.g. events per release). */
export function Bars(props: { items: Array<{ label: string; value: number }>; label: string }): JSX.Element {
  const max = Math.max(1, ...props.items.map((i) => i.value));
  return (
    <ul class="bars" aria-label={props.label}>
      {props.items.map((i) => (
        <li key={i.label}>
          <span class="bar-label">{i.label}</span>
          <span class="bar-track"><span class="bar-fill" style={{ width: `${(i.value / max) * 100}%` }} /></span>
          <span class="bar-value">{i.value}</span>
        </li>
      ))}
    </ul>
  );
}

export function KeyValues(props: { data: Record<string, unknown>; label: string }): JSX.Element {
  const entries = Object.entries(props.data);
  if (entries.length === 0) return <p class="muted">none</p>;
  return (
    <dl class="kv" aria-label={props.label}>
      {entries.map(([k, v]) => (
        <div key={k}><dt>{k}</dt><dd>{typeof v === 'string' ? v : JSON.stringify(v)}</dd></div>
      ))}
    </dl>
  );
}

export function Field(props: { label: string; children: ComponentChildren }): JSX.Element {
  return <label class="field"><span>{props.label}</span>{props.children}</label>;
}
