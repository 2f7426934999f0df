import type { JSX } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

/**
 * A time-series chart (uPlot) with deploy markers and alert bands (shaded spans). Markers are
 * drawn under the data (a thin line) and labelled above the plot, in a strip of their own, with
 * links (e.g. to the deploy's verdict): they never cover a value. A lone value between gaps is
 * drawn as a dot; the chart keeps a fixed height, so data arriving later never moves the page.
 */

export interface ChartSeries { label: string; values: Array<number | null> }
export interface ChartMarker {
  timeMs: number; label: string; tone?: 'ok' | 'bad' | 'warn' | 'neutral'; href?: string; title?: string;
  /** Labels that do not all fit keep the higher priorities (default 0). */
  priority?: number;
}
export interface ChartBand { fromMs: number; toMs: number; label: string }

const PALETTE = ['#3b82f6', '#f59e0b', '#10b981', '#ef4444', '#8b5cf6', '#06b6d4', '#ec4899', '#84cc16'];
const SCATTER = ['#3b82f6', '#dc2626'];
const MARKER_COLORS: Record<string, string> = { ok: '#16a34a', bad: '#dc2626', warn: '#d97706', neutral: '#6b7280' };
/** Rows of marker labels above the plot (labels closer than their width stack). */
const LABEL_ROWS = 2;
const LABEL_ROW_PX = 17;

/** Dots on every value where a series is sparse. */
function sparsePoints(u: uPlot, seriesIdx: number, idx0: number, idx1: number): boolean {
  const data = u.data[seriesIdx];
  let n = 0;
  for (let i = idx0; i <= idx1; i++) if (data[i] !== null && data[i] !== undefined) n++;
  return n < 40;
}

const present = (v: number | null | undefined): boolean => v !== null && v !== undefined;

/** Indexes of values with no neighbour on either side: a line cannot draw them, a dot must. */
export function isolatedIndexes(data: ArrayLike<number | null | undefined>, idx0 = 0, idx1 = data.length - 1): number[] {
  const out: number[] = [];
  for (let i = idx0; i <= idx1; i++) if (present(data[i]) && !present(data[i - 1]) && !present(data[i + 1])) out.push(i);
  return out;
}

function cssVar(name: string, fallback: string): string {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v === '' ? fallback : v;
}

/** Places the marker labels (links) over the strip above the plot, at their markers' x. */
function placeLabels(u: uPlot, strip: HTMLElement, markers: ChartMarker[]): void {
  strip.replaceChildren();
  const offset = u.over.getBoundingClientRect().left - strip.getBoundingClientRect().left;
  const taken: Array<Array<[number, number]>> = Array.from({ length: LABEL_ROWS }, () => []);
  for (const m of [...markers].sort((a, b) => (b.priority ?? 0) - (a.priority ?? 0) || a.timeMs - b.timeMs)) {
    const x = u.valToPos(m.timeMs / 1000, 'x');
    if (!Number.isFinite(x) || x < 0 || x > u.over.clientWidth) continue;
    const el = document.createElement(m.href === undefined ? 'span' : 'a');
    if (m.href !== undefined) (el as HTMLAnchorElement).href = m.href;
    el.className = `chart-mark ${m.tone ?? 'neutral'}`;
    el.textContent = m.label;
    el.title = m.title ?? m.label;
    el.dataset.marker = String(m.timeMs);
    strip.append(el);
    const w = el.offsetWidth;
    // Left-aligned on the marker unless that runs off the plot's right edge.
    const left = offset + x + w + 2 > offset + u.over.clientWidth ? offset + x - w : offset + x - 4;
    const row = taken.findIndex((spans) => spans.every(([l, r]) => left + w + 4 <= l || left >= r + 4));
    if (row < 0) {
      // No free row: the label would print over another; the deploy list below the charts has it.
      el.remove();
      continue;
    }
    taken[row].push([left, left + w]);
    el.style.left = `${Math.max(0, left)}px`;
    el.style.top = `${row * LABEL_ROW_PX}px`;
  }
}

export function TimeChart(props: {
  title: string;
  times: number[]; // epoch ms
  series: ChartSeries[];
  markers?: ChartMarker[];
  bands?: ChartBand[];
  height?: number;
  unit?: string;
  theme: string;
  /** Drag across the chart to pick a time range (epoch ms). */
  onZoom?: (fromMs: number, toMs: number) => void;
  /** Fixed x range (epoch ms): the chart shows the whole asked-for range, data or not. */
  xRange?: { fromMs: number; toMs: number };
  /** Dots only (e.g. one per trace), no lines. */
  scatter?: boolean;
}): JSX.Element {
  const box = useRef<HTMLDivElement>(null);
  const strip = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const overlay = useRef<{ markers: ChartMarker[]; bands: ChartBand[] }>({ markers: [], bands: [] });
  overlay.current = { markers: props.markers ?? [], bands: props.bands ?? [] };
  const zoom = useRef(props.onZoom);
  zoom.current = props.onZoom;
  const xr = useRef(props.xRange);
  xr.current = props.xRange;
  const height = props.height ?? 180;
  const shape = `${props.theme}|${props.series.map((s) => s.label).join(',')}|${props.unit ?? ''}|${props.scatter === true ? 's' : 'l'}`;

  useEffect(() => {
    const el = box.current;
    if (el === null) return;
    const fg = cssVar('--muted', '#6b7280');
    const grid = cssVar('--grid', '#e5e7eb');
    const axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    const opts: uPlot.Options = {
      width: Math.max(200, el.clientWidth),
      height,
      legend: { show: true, live: true },
      cursor: { drag: { x: props.onZoom !== undefined, y: false, setScale: false } },
      scales: {
        x: { time: true, range: (_u, min, max) => xr.current === undefined ? [min, max] : [xr.current.fromMs / 1000, xr.current.toMs / 1000] },
        // A lone value still gets a y range that shows it (uPlot would otherwise centre it on a tiny span).
        y: { range: (_u, min, max) => [Math.min(0, min), max > 0 ? max * 1.1 : 1] },
      },
      axes: [axis, { ...axis, size: 60, values: (_u, ticks) => ticks.map((t) => `${Number(t.toPrecision(3))}${props.unit ?? ''}`) }],
      series: [{}, ...props.series.map((s, i) => props.scatter === true ? {
        label: s.label, stroke: SCATTER[i % SCATTER.length], width: 0, paths: () => null,
        points: { show: true, size: 6, width: 1, fill: SCATTER[i % SCATTER.length] },
      } : {
        label: s.label, stroke: PALETTE[i % PALETTE.length], fill: undefined, width: 1.5, spanGaps: false,
        points: {
          show: sparsePoints, size: 7, width: 1.5, fill: PALETTE[i % PALETTE.length],
          filter: (u: uPlot, si: number, show: boolean) => show ? null : isolatedIndexes(u.data[si]),
        },
      })],
      hooks: {
        setSelect: [(u: uPlot) => {
          const { left, width } = u.select;
          if (width < 4 || zoom.current === undefined) return;
          const from = u.posToVal(left, 'x') * 1000;
          const to = u.posToVal(left + width, 'x') * 1000;
          u.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
          zoom.current(Math.round(from), Math.round(to));
        }],
        // Bands and marker lines go under the series: a value at a deploy's second stays visible.
        drawClear: [(u: uPlot) => {
          const { ctx } = u;
          const { top, height: h, left, width } = u.bbox;
          ctx.save();
          ctx.fillStyle = 'rgba(220, 38, 38, 0.12)';
          for (const b of overlay.current.bands) {
            const x0 = u.valToPos(b.fromMs / 1000, 'x', true);
            const x1 = u.valToPos(b.toMs / 1000, 'x', true);
            const l = Math.max(left, Math.min(x0, x1));
            const r = Math.min(left + width, Math.max(x0, x1));
            if (r > l) ctx.fillRect(l, top, Math.max(2, r - l), h);
          }
          ctx.setLineDash([3, 3]);
          ctx.lineWidth = devicePixelRatio;
          ctx.globalAlpha = 0.7;
          for (const m of overlay.current.markers) {
            const x = Math.round(u.valToPos(m.timeMs / 1000, 'x', true));
            if (x < left || x > left + width) continue;
            ctx.strokeStyle = MARKER_COLORS[m.tone ?? 'neutral'];
            ctx.beginPath();
            ctx.moveTo(x, top);
            ctx.lineTo(x, top + h);
            ctx.stroke();
          }
          ctx.restore();
        }],
        draw: [(u: uPlot) => { if (strip.current !== null) placeLabels(u, strip.current, overlay.current.markers); }],
      },
    };
    const u = new uPlot(opts, [props.times.map((t) => t / 1000), ...props.series.map((s) => s.values)] as uPlot.AlignedData, el);
    plot.current = u;
    const ro = new ResizeObserver(() => u.setSize({ width: Math.max(200, el.clientWidth), height }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      u.destroy();
      plot.current = null;
    };
  }, [shape, height]);

  useEffect(() => {
    plot.current?.setData([props.times.map((t) => t / 1000), ...props.series.map((s) => s.values)] as uPlot.AlignedData);
  }, [props.times, props.series, props.markers, props.bands, props.xRange?.fromMs, props.xRange?.toMs]);

  const markers = props.markers ?? [];
  const isolated = props.series.reduce((n, s) => n + isolatedIndexes(s.values).length, 0);
  const descr = `${props.title}: ${props.series.length} series, ${props.times.length} points` +
    (markers.length > 0 ? `, ${markers.length} deploy markers` : '') +
    (props.bands !== undefined && props.bands.length > 0 ? `, ${props.bands.length} alert bands` : '');
  return (
    <figure class="chart" aria-label={descr}>
      <figcaption>{props.title}</figcaption>
      {markers.length > 0 && <div ref={strip} class="chart-marks" style={{ height: `${LABEL_ROWS * LABEL_ROW_PX}px` }} />}
      <div ref={box} class="chart-box" style={{ minHeight: `${height + 30}px` }} data-points={props.times.length} data-markers={markers.length} data-isolated={isolated} />
    </figure>
  );
}
