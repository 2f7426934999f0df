/** The global time range (`from`/`to` in the URL: `now-1h`, epoch ms or ISO) and formatting. */

export const RANGES = [
  { value: 'now-5m', label: 'Last 5 minutes' },
  { value: 'now-15m', label: 'Last 15 minutes' },
  { value: 'now-1h', label: 'Last hour' },
  { value: 'now-6h', label: 'Last 6 hours' },
  { value: 'now-24h', label: 'Last 24 hours' },
  { value: 'now-7d', label: 'Last 7 days' },
  { value: 'now-30d', label: 'Last 30 days' },
];
export const DEFAULT_FROM = 'now-1h';

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** Epoch ms of a `from`/`to` value, relative to `now`. */
export function resolveTime(v: string | null, now: number): number {
  if (v === null || v === '' || v === 'now') return now;
  const rel = /^now-(\d+(?:\.\d+)?)(s|m|h|d|w)$/.exec(v);
  if (rel !== null) return now - Number(rel[1]) * UNIT_MS[rel[2]];
  if (/^\d+$/.test(v)) return Number(v);
  const ms = Date.parse(v);
  return Number.isNaN(ms) ? now : ms;
}

export interface TimeRange { fromMs: number; toMs: number }

export function rangeOf(query: URLSearchParams, now = Date.now()): TimeRange {
  const toMs = resolveTime(query.get('to'), now);
  const fromMs = resolveTime(query.get('from') ?? DEFAULT_FROM, now);
  return fromMs < toMs ? { fromMs, toMs } : { fromMs: toMs - 3_600_000, toMs };
}

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

export function fmtTime(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function fmtTimeMs(ms: number): string {
  return `${fmtTime(ms)}.${pad(Math.floor(ms) % 1000, 3)}`;
}

export function fmtIso(iso: string | null | undefined): string {
  if (iso === null || iso === undefined) return '—';
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? iso : fmtTime(ms);
}

export function fmtDurationMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  if (ms < 1) return `${(ms * 1000).toFixed(0)} µs`;
  if (ms < 1000) return `${ms < 10 ? ms.toFixed(2) : ms.toFixed(0)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms < 3_600_000) return `${(ms / 60_000).toFixed(1)} min`;
  if (ms < 86_400_000) return `${(ms / 3_600_000).toFixed(1)} h`;
  return `${(ms / 86_400_000).toFixed(1)} d`;
}

export function fmtNum(n: number | null | undefined, digits = 2): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  if (Math.abs(n) >= 1000) return n.toFixed(0);
  return String(Number(n.toFixed(digits)));
}

export function fmtPct(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  return `${(n * 100).toFixed(n < 0.01 && n > 0 ? 2 : 1)} %`;
}

export function ago(ms: number, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}
