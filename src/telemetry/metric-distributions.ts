/**
 * Percentiles of OTLP exponential histograms and summaries, for metric queries.
 *
 * Exponential histogram (OTLP data model): at scale s, base = 2^(2^-s); positive bucket index i
 * holds values in (base^i, base^(i+1)], negative index i holds (-base^(i+1), -base^i]; a zero
 * bucket holds values near 0. Points of one series may change scale (SDKs downscale as the range
 * grows): merging or subtracting first brings both to the smaller scale, where index i becomes
 * floor(i / 2^(s - t)). A quantile interpolates log-linearly inside the bucket holding its rank
 * (the buckets are exponential) and is clamped to the point's min/max when those are known.
 *
 * Summary: the SDK computed the quantiles itself; a query reads the requested one (interpolated
 * linearly between neighbouring quantiles when it is not among them; null outside them). Quantiles of different series
 * cannot be merged exactly: several series in a group give their count-weighted mean.
 */

export interface ExpHistogram {
  scale: number;
  zero: number;
  pos: Map<number, number>;
  neg: Map<number, number>;
  count: number;
  min: number;
  max: number;
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : {});

function parse(detail: string): Json {
  try { return obj(JSON.parse(detail)); } catch { return {}; } // a detail that is not JSON holds no distribution
}

function side(v: unknown): Map<number, number> {
  const o = obj(v);
  const offset = Number(o.offset ?? 0);
  const counts = Array.isArray(o.counts) ? o.counts : [];
  const out = new Map<number, number>();
  for (let k = 0; k < counts.length; k++) {
    const c = Number(counts[k]);
    if (c > 0) out.set(offset + k, c);
  }
  return out;
}

export function parseExpHistogram(detail: string, count: number, min: number, max: number): ExpHistogram {
  const d = parse(detail);
  const scale = Math.max(-10, Math.min(20, Math.trunc(Number(d.scale ?? 0)) || 0));
  return { scale, zero: Number(d.zeroCount ?? 0) || 0, pos: side(d.positive), neg: side(d.negative), count, min, max };
}

function downscale(m: Map<number, number>, by: number): Map<number, number> {
  if (by === 0) return m;
  const f = 2 ** by;
  const out = new Map<number, number>();
  for (const [i, c] of m) {
    const j = Math.floor(i / f);
    out.set(j, (out.get(j) ?? 0) + c);
  }
  return out;
}

function atScale(h: ExpHistogram, scale: number): ExpHistogram {
  if (h.scale === scale) return h;
  return { ...h, scale, pos: downscale(h.pos, h.scale - scale), neg: downscale(h.neg, h.scale - scale) };
}

function combine(a: Map<number, number>, b: Map<number, number>, sign: 1 | -1): Map<number, number> {
  const out = new Map(a);
  for (const [i, c] of b) {
    const v = (out.get(i) ?? 0) + sign * c;
    if (v > 0) out.set(i, v); else out.delete(i);
  }
  return out;
}

/** `cur - prev` of a cumulative series (bucket-wise, never below 0). */
export function expDelta(cur: ExpHistogram, prev: ExpHistogram): ExpHistogram {
  const s = Math.min(cur.scale, prev.scale);
  const a = atScale(cur, s), b = atScale(prev, s);
  return { scale: s, zero: Math.max(0, a.zero - b.zero), pos: combine(a.pos, b.pos, -1), neg: combine(a.neg, b.neg, -1),
    count: Math.max(0, a.count - b.count), min: cur.min, max: cur.max };
}

export function expMerge(a: ExpHistogram, b: ExpHistogram): ExpHistogram {
  const s = Math.min(a.scale, b.scale);
  const x = atScale(a, s), y = atScale(b, s);
  return { scale: s, zero: x.zero + y.zero, pos: combine(x.pos, y.pos, 1), neg: combine(x.neg, y.neg, 1), count: x.count + y.count,
    min: Math.min(x.min, y.min), max: Math.max(x.max, y.max) };
}

export function expQuantile(h: ExpHistogram, q: number): number | null {
  let total = h.zero;
  for (const c of h.pos.values()) total += c;
  for (const c of h.neg.values()) total += c;
  if (total <= 0) return null;
  const rank = Math.min(Math.max(q, 0), 1) * total;
  const width = 2 ** -h.scale; // log2 of the base
  const clamp = (v: number): number => {
    let out = v;
    if (Number.isFinite(h.min) && out < h.min) out = h.min;
    if (Number.isFinite(h.max) && out > h.max) out = h.max;
    return out;
  };
  let cum = 0;
  // Most negative first: larger negative indexes hold larger magnitudes.
  for (const i of [...h.neg.keys()].sort((a, b) => b - a)) {
    const c = h.neg.get(i)!;
    if (cum + c >= rank) {
      const frac = (rank - cum) / c;
      return clamp(-(2 ** ((i + 1 - frac) * width)));
    }
    cum += c;
  }
  if (h.zero > 0 && cum + h.zero >= rank) return clamp(0);
  cum += h.zero;
  for (const i of [...h.pos.keys()].sort((a, b) => a - b)) {
    const c = h.pos.get(i)!;
    if (cum + c >= rank) {
      const frac = (rank - cum) / c;
      return clamp(2 ** ((i + frac) * width));
    }
    cum += c;
  }
  return Number.isFinite(h.max) ? h.max : null;
}

/** The q-quantile of a summary point's `{"quantiles":[{q,v},..]}` detail; null if it has none. */
export function summaryQuantile(detail: string, q: number): number | null {
  const list = Array.isArray(parse(detail).quantiles) ? (parse(detail).quantiles as unknown[]) : [];
  const pts = list.map((x) => ({ q: Number(obj(x).q), v: Number(obj(x).v) }))
    .filter((p) => Number.isFinite(p.q) && Number.isFinite(p.v)).sort((a, b) => a.q - b.q);
  if (pts.length === 0) return null;
  const exact = pts.find((p) => Math.abs(p.q - q) < 1e-9);
  if (exact !== undefined) return exact.v;
  // Outside the quantiles the SDK computed nothing is known.
  if (q < pts[0].q || q > pts[pts.length - 1].q) return null;
  for (let k = 1; k < pts.length; k++) {
    const a = pts[k - 1], b = pts[k];
    if (q <= b.q) return a.v + ((b.v - a.v) * (q - a.q)) / (b.q - a.q);
  }
  return pts[pts.length - 1].v;
}
