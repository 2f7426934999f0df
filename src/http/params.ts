import { badRequest } from '../core/app-error.js';

/**
 * Query-string parsing shared by the API routes. Every parser throws a 400 AppError naming the
 * parameter, so bad input never reaches a store.
 */

export type Query = Record<string, string | string[] | undefined>;

const UNIT_S: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800 };
const DURATION_RE = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/;
const RELATIVE_RE = /^now(?:-(\d+(?:\.\d+)?)(ms|s|m|h|d|w))?$/;

export function str(q: Query, name: string): string | undefined {
  const v = q[name];
  if (v === undefined) return undefined;
  if (Array.isArray(v)) throw badRequest(`parameter '${name}' given more than once`);
  return v;
}

/** Seconds from `30`, `30s`, `5m`, `1h`, `2d`. */
export function durationS(q: Query, name: string): number | undefined {
  const v = str(q, name);
  if (v === undefined || v === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v);
  const m = DURATION_RE.exec(v);
  if (m === null) throw badRequest(`parameter '${name}': expected a duration like 60, 30s, 5m, 1h (got '${v}')`);
  return Number(m[1]) * UNIT_S[m[2]];
}

/**
 * A point in time as µs since the epoch, from epoch milliseconds (`1732612345678`),
 * ISO 8601 (`2026-11-26T10:00:00Z`) or relative to now (`now`, `now-15m`).
 */
export function timeUs(q: Query, name: string, nowUs: number): number | undefined {
  const v = str(q, name);
  if (v === undefined || v === '') return undefined;
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const rel = RELATIVE_RE.exec(v);
  if (rel !== null) return rel[1] === undefined ? nowUs : nowUs - Number(rel[1]) * UNIT_S[rel[2]] * 1e6;
  const ms = Date.parse(v);
  if (Number.isNaN(ms)) {
    throw badRequest(`parameter '${name}': expected epoch milliseconds, ISO 8601 or now-<duration> (got '${v}')`);
  }
  return ms * 1000;
}

export function timeRange(q: Query, defaultSpanS: number): { fromUs: number; toUs: number } {
  const nowUs = Date.now() * 1000;
  const toUs = timeUs(q, 'to', nowUs) ?? nowUs;
  const fromUs = timeUs(q, 'from', nowUs) ?? toUs - defaultSpanS * 1e6;
  if (fromUs >= toUs) throw badRequest(`parameter 'from' must be before 'to'`);
  return { fromUs, toUs };
}

export function int(q: Query, name: string, min: number, max: number): number | undefined {
  const v = str(q, name);
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw badRequest(`parameter '${name}': expected an integer from ${min} to ${max} (got '${v}')`);
  }
  return n;
}

export function num(q: Query, name: string, min: number): number | undefined {
  const v = str(q, name);
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw badRequest(`parameter '${name}': expected a number ≥ ${min} (got '${v}')`);
  return n;
}

export function oneOf<T extends string>(q: Query, name: string, values: readonly T[]): T | undefined {
  const v = str(q, name);
  if (v === undefined || v === '') return undefined;
  if (!(values as readonly string[]).includes(v)) {
    throw badRequest(`parameter '${name}': expected one of ${values.join(', ')} (got '${v}')`);
  }
  return v as T;
}

export function hexId(value: string, name: string, length: number): string {
  const v = value.toLowerCase();
  if (v.length !== length || !/^[0-9a-f]+$/.test(v)) {
    throw badRequest(`${name}: expected ${length} hex characters (got '${value}')`);
  }
  return v;
}

/** OTel severity names to the lowest SeverityNumber of their range. */
const SEVERITY: Record<string, number> = { trace: 1, debug: 5, info: 9, warn: 13, warning: 13, error: 17, fatal: 21 };

export function severity(q: Query, name: string): number | undefined {
  const v = str(q, name);
  if (v === undefined || v === '') return undefined;
  const byName = SEVERITY[v.toLowerCase()];
  if (byName !== undefined) return byName;
  const n = Number(v);
  if (Number.isInteger(n) && n >= 1 && n <= 24) return n;
  throw badRequest(`parameter '${name}': expected trace, debug, info, warn, error, fatal or 1-24 (got '${v}')`);
}

/** The step for a range: the given one, else about 120 buckets rounded to a whole second. */
export function step(q: Query, fromUs: number, toUs: number): number {
  const s = durationS(q, 'step');
  const rangeS = (toUs - fromUs) / 1e6;
  if (s !== undefined) {
    if (s < 1) throw badRequest(`parameter 'step': must be at least 1s`);
    if (rangeS / s > 11_000) throw badRequest(`parameter 'step': too many buckets (${Math.ceil(rangeS / s)}; max 11000)`);
    return Math.round(s);
  }
  return Math.max(1, Math.round(rangeS / 120));
}

/** The most string content one list answer carries (rows past it are left out, and the answer says `truncated`). */
export const RESPONSE_BUDGET_CHARS = 8 * 1024 * 1024;

/** Roughly the JSON size of a value (string lengths plus a little per member), stopping at `cap`. */
export function approxSize(v: unknown, cap = Infinity): number {
  if (typeof v === 'string') return v.length + 2;
  if (typeof v !== 'object' || v === null) return 8;
  let n = 2;
  for (const x of Array.isArray(v) ? v : Object.entries(v as Record<string, unknown>).flat()) {
    n += approxSize(x, cap - n) + 1;
    if (n > cap) break;
  }
  return n;
}

/**
 * The leading rows of `rows` whose size fits `budget` (at least one row, so a single large
 * row is still seen), and whether any were left out.
 */
export function withinBudget<T>(rows: T[], budget = RESPONSE_BUDGET_CHARS): { rows: T[]; truncated: boolean } {
  let used = 0;
  for (let i = 0; i < rows.length; i++) {
    used += approxSize(rows[i], budget - used + 1);
    if (used > budget && i > 0) return { rows: rows.slice(0, i), truncated: true };
  }
  return { rows, truncated: false };
}
