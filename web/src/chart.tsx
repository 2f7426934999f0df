import type { JSX } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

/**
 * A time-series chart (uPlot) with deploy markers (vertical lines) and alert bands (shaded
 * spans). The chart keeps a fixed height, so data arriving later never moves the page.
 */

export interface ChartSeries { label: string; values: Array<number | null> }
export interface ChartMarker { timeMs: number; label: string; tone?: 'ok' | 'bad' | 'warn' | 'neutral' }
export interface ChartBand { fromMs: number; toMs: number; label: string }

const PALETTE = ['#3b82f6', '#f59e0b', '#10b981', '#ef4444', '#8b5cf6', '#06b6d4', '#ec4899', '#84cc16'];
const MARKER_COLORS: Record<string, string> = { ok: '#16a34a', bad: '#dc2626', warn: '#d97706', neutral: '#6b7280' };

/** Dots only where a series is sparse: a lone value between gaps would otherwise draw nothing. */
function sparsePoints(u: uPlot, seriesIdx: number, idx0: number, idx1: number): boolean {
  const data = u.data[seriesIdx];
  let n = 0;
  for (let i = idx0; i <= idx1; i++) if (data[i] !== null && data[i] !== undefined) n++;
  return n < 40;
}

function cssVar(name: string, fallback: string): string {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v === '' ? fallback : v;
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
}): JSX.Element {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const overlay = useRef<{ markers: ChartMarker[]; bands: ChartBand[] }>({ markers: [], bands: [] });
  overlay.current = { markers: props.markers ?? [], bands: props.bands ?? [] };
  const zoom = useRef(props.onZoom);
  zoom.current = props.onZoom;
  const height = props.height ?? 180;
  const shape = `${props.theme}|${props.series.map((s) => s.label).join(',')}|${props.unit ?? ''}`;

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
      scales: { x: { time: true } },
      axes: [axis, { ...axis, size: 60, values: (_u, ticks) => ticks.map((t) => `${Number(t.toPrecision(3))}${props.unit ?? ''}`) }],
      series: [{}, ...props.series.map((s, i) => ({ label: s.label, stroke: PALETTE[i % PALETTE.length], width: 1.5, spanGaps: false, points: { show: sparsePoints, size: 4, width: 1 } }))],
      hooks: {
        setSelect: [(u: uPlot) => {
          const { left, width } = u.select;
          if (width < 4 || zoom.current === undefined) return;
          const from = u.posToVal(left, 'x') * 1000;
          const to = u.posToVal(left + width, 'x') * 1000;
          u.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
          zoom.current(Math.round(from), Math.round(to));
        }],
        drawClear: [(u: uPlot) => {
          const { ctx } = u;
          const { top, height: h } = u.bbox;
          ctx.save();
          ctx.fillStyle = 'rgba(220, 38, 38, 0.12)';
          for (const b of overlay.current.bands) {
            const x0 = u.valToPos(b.fromMs / 1000, 'x', true);
            const x1 = u.valToPos(b.toMs / 1000, 'x', true);
            const l = Math.max(u.bbox.left, Math.min(x0, x1));
            const r = Math.min(u.bbox.left + u.bbox.width, Math.max(x0, x1));
            if (r > l) ctx.fillRect(l, top, Math.max(2, r - l), h);
          }
          ctx.restore();
        }],
        draw: [(u: uPlot) => {
          const { ctx } = u;
          const { top, height: h, left, width } = u.bbox;
          ctx.save();
          ctx.setLineDash([4, 3]);
          ctx.lineWidth = 1.5 * devicePixelRatio;
          ctx.font = `${11 * devicePixelRatio}px sans-serif`;
          let lastX = -Infinity;
          let row = 0;
          for (const m of [...overlay.current.markers].sort((a, b) => a.timeMs - b.timeMs)) {
            const x = u.valToPos(m.timeMs / 1000, 'x', true);
            if (x < left || x > left + width) continue;
            const color = MARKER_COLORS[m.tone ?? 'neutral'];
            ctx.strokeStyle = color;
            ctx.fillStyle = color;
            ctx.beginPath();
            ctx.moveTo(x, top);
            ctx.lineTo(x, top + h);
            ctx.stroke();
            // Labels of markers close together stack downwards instead of overprinting.
            row = x - lastX < 60 * devicePixelRatio ? row + 1 : 0;
            lastX = x;
            const label = m.label;
            const tw = ctx.measureText(label).width;
            const lx = x + 3 * devicePixelRatio + tw > left + width ? x - 3 * devicePixelRatio - tw : x + 3 * devicePixelRatio;
            ctx.fillText(label, lx, top + (12 + row * 13) * devicePixelRatio);
          }
          ctx.restore();
        }],
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
  }, [props.times, props.series, props.markers, props.bands]);

  const descr = `${props.title}: ${props.series.length} series, ${props.times.length} points` +
    (props.markers !== undefined && props.markers.length > 0 ? `, ${props.markers.length} deploy markers` : '') +
    (props.bands !== undefined && props.bands.length > 0 ? `, ${props.bands.length} alert bands` : '');
  return (
    <figure class="chart" aria-label={descr}>
      <figcaption>{props.title}</figcaption>
      <div ref={box} class="chart-box" style={{ minHeight: `${height + 30}px` }} data-points={props.times.length} data-markers={props.markers?.length ?? 0} />
    </figure>
  );
}
