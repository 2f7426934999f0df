import type { JSX } from 'preact';
import { useMemo, useRef, useState } from 'preact/hooks';
import { fmtDurationMs } from '../time';
import type { SpanRow } from '../types';

/**
 * The trace waterfall, virtualised: only the rows in view (plus a margin) are in the DOM, so a
 * 10k-span trace scrolls as smoothly as a 10-span one. Rows have a fixed height.
 */

export const ROW_H = 24;
const VIEW_H = 480;
const OVERSCAN = 12;

export interface WaterfallRow { span: SpanRow; depth: number }

/** Depth-first order, children by start time; spans whose parent is missing become roots. */
export function flatten(spans: SpanRow[]): WaterfallRow[] {
  const ids = new Set(spans.map((s) => s.spanId));
  const children = new Map<string, SpanRow[]>();
  const roots: SpanRow[] = [];
  for (const s of spans) {
    if (s.parentSpanId === '' || !ids.has(s.parentSpanId)) { roots.push(s); continue; }
    let c = children.get(s.parentSpanId);
    if (c === undefined) children.set(s.parentSpanId, c = []);
    c.push(s);
  }
  const byStart = (a: SpanRow, b: SpanRow): number => a.startUs - b.startUs;
  roots.sort(byStart);
  const out: WaterfallRow[] = [];
  const stack: WaterfallRow[] = roots.slice().reverse().map((span) => ({ span, depth: 0 }));
  while (stack.length > 0) {
    const row = stack.pop() as WaterfallRow;
    out.push(row);
    const c = children.get(row.span.spanId);
    if (c === undefined) continue;
    c.sort(byStart);
    for (let i = c.length - 1; i >= 0; i--) stack.push({ span: c[i], depth: row.depth + 1 });
  }
  return out;
}

const SERVICE_COLORS = ['#3b82f6', '#10b981', '#f59e0b', '#8b5cf6', '#06b6d4', '#ec4899', '#84cc16', '#f97316'];

export function Waterfall(props: { spans: SpanRow[]; selected: string | undefined; onSelect: (spanId: string) => void }): JSX.Element {
  const rows = useMemo(() => flatten(props.spans), [props.spans]);
  const { t0, total } = useMemo(() => {
    let lo = Infinity;
    let hi = -Infinity;
    for (const s of props.spans) {
      lo = Math.min(lo, s.startUs);
      hi = Math.max(hi, s.startUs + s.durationNs / 1000);
    }
    return { t0: lo, total: Math.max(1, hi - lo) };
  }, [props.spans]);
  const colors = useMemo(() => {
    const m = new Map<string, string>();
    for (const s of props.spans) if (!m.has(s.service)) m.set(s.service, SERVICE_COLORS[m.size % SERVICE_COLORS.length]);
    return m;
  }, [props.spans]);
  const [scrollTop, setScrollTop] = useState(0);
  const box = useRef<HTMLDivElement>(null);
  const first = Math.max(0, Math.floor(scrollTop / ROW_H) - OVERSCAN);
  const last = Math.min(rows.length, Math.ceil((scrollTop + VIEW_H) / ROW_H) + OVERSCAN);

  const onKey = (e: KeyboardEvent): void => {
    const i = rows.findIndex((r) => r.span.spanId === props.selected);
    let next = i;
    if (e.key === 'ArrowDown') next = Math.min(rows.length - 1, i + 1);
    else if (e.key === 'ArrowUp') next = Math.max(0, i - 1);
    else return;
    e.preventDefault();
    props.onSelect(rows[next].span.spanId);
    const el = box.current;
    if (el !== null) {
      const y = next * ROW_H;
      if (y < el.scrollTop) el.scrollTop = y;
      else if (y + ROW_H > el.scrollTop + VIEW_H) el.scrollTop = y + ROW_H - VIEW_H;
    }
  };

  return (
    <div class="waterfall">
      <div class="wf-head" aria-hidden="true"><span>Span</span><span>0</span><span>{fmtDurationMs(total / 1000)}</span></div>
      <div ref={box} class="wf-scroll" style={{ height: `${Math.min(VIEW_H, rows.length * ROW_H + 2)}px` }} onScroll={(e) => setScrollTop(e.currentTarget.scrollTop)}
        role="listbox" tabIndex={0} aria-label={`Waterfall, ${rows.length} spans (arrow keys move)`} onKeyDown={onKey} data-rows={rows.length}>
        <div style={{ height: `${rows.length * ROW_H}px`, position: 'relative' }}>
          {rows.slice(first, last).map((r, k) => {
            const s = r.span;
            const left = ((s.startUs - t0) / total) * 100;
            const width = Math.max(0.2, (s.durationNs / 1000 / total) * 100);
            const sel = s.spanId === props.selected;
            return (
              <div key={s.spanId} role="option" aria-selected={sel} class={`wf-row${sel ? ' selected' : ''}${s.statusCode === 2 ? ' err' : ''}`}
                style={{ top: `${(first + k) * ROW_H}px` }} onClick={() => props.onSelect(s.spanId)} data-span={s.spanId}>
                <span class="wf-name" style={{ paddingLeft: `${Math.min(r.depth, 30) * 12 + 4}px` }} title={`${s.service}: ${s.name}`}>
                  <span class="dot" style={{ background: colors.get(s.service) }} />{s.name}
                </span>
                <span class="wf-track">
                  <span class="wf-bar" style={{ left: `${left}%`, width: `${width}%`, background: s.statusCode === 2 ? '#dc2626' : colors.get(s.service) }} />
                  {left + width > 85
                    ? <span class="wf-dur inside" style={{ right: `${100 - left - width}%` }}>{fmtDurationMs(s.durationNs / 1e6)}</span>
                    : <span class="wf-dur" style={{ left: `${left + width}%` }}>{fmtDurationMs(s.durationNs / 1e6)}</span>}
                </span>
              </div>
            );
          })}
        </div>
      </div>
    </div>
  );
}
