/**
 * How loop figures are written for people: `tightloop report` and the console's Loop view both
 * use these (web/src/views/loop.tsx imports this file), so the two say the same thing for the
 * same range. No imports: the console bundles it as is.
 */

/** 1.5 s, 42 s, 3 m 10 s, 2 h 5 m, 1 d 3 h; '—' when there is nothing to measure. */
export function durationText(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return '—';
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} m ${Math.round(s - m * 60)} s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h} h ${m - h * 60} m`;
  const d = Math.floor(h / 24);
  return `${d} d ${h - d * 24} h`;
}

/** A ratio as a percentage with one decimal: 12.5 %; '—' for none. */
export function pctText(r: number | null): string {
  return r === null || !Number.isFinite(r) ? '—' : `${(r * 100).toFixed(1)} %`;
}

/** Deployment frequency: 0.14/day. */
export function perDayText(perDay: number): string {
  return `${perDay.toFixed(2)}/day`;
}
