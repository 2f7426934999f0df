/**
 * A rule's condition in one line, as `tightloop rule list` and the demo print it, e.g.
 * `error_rate > 0.5 % over 4 s by service, environment (keep firing 10 s)`. Reads the rule spec
 * the API returns (durations in milliseconds), so it works for file and API rules alike.
 */

type Spec = Record<string, unknown>;

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** 4000 → `4 s`, 90000 → `1.5 min`, 7200000 → `2 h`. */
export function durationText(ms: number): string {
  if (ms % 3_600_000 === 0 && ms >= 3_600_000) return `${ms / 3_600_000} h`;
  if (ms >= 60_000) return `${Number((ms / 60_000).toFixed(2))} min`;
  return `${Number((ms / 1000).toFixed(3))} s`;
}

/** 0.005 → `0.5 %` for rates that are fractions (error_rate); other figures as they are. */
function figure(signal: string | undefined, v: number): string {
  if (signal === 'error_rate') return `${Number((v * 100).toFixed(4))} %`;
  if (signal !== undefined && /_ms$/.test(signal)) return `${v} ms`;
  return String(v);
}

function selectText(select: unknown): string {
  if (select === null || typeof select !== 'object') return '';
  const parts: string[] = [];
  for (const [k, v] of Object.entries(select as Record<string, unknown>)) {
    if (k === 'attributes' && v !== null && typeof v === 'object') {
      for (const [ak, av] of Object.entries(v as Record<string, unknown>)) parts.push(`${ak}=${String(av)}`);
    } else if (typeof v === 'string') parts.push(`${k}=${v}`);
  }
  return parts.join(',');
}

/** What the rule watches and when it fires. */
export function ruleCondition(spec: Spec): string {
  const type = str(spec.type);
  const window = num(spec.window);
  const over = window === undefined ? '' : ` over ${durationText(window)}`;
  const op = str(spec.op) ?? '>';
  const threshold = num(spec.threshold);
  let what: string;
  switch (type) {
    case 'threshold': {
      const signal = str(spec.signal);
      what = `${signal ?? '?'} ${op} ${threshold === undefined ? '?' : figure(signal, threshold)}${over}`;
      break;
    }
    case 'metric':
      what = `${str(spec.agg) ?? '?'}(${str(spec.metric) ?? '?'}) ${op} ${threshold ?? '?'}${over}`;
      break;
    case 'log': {
      const m = (spec.match ?? {}) as Record<string, unknown>;
      const which = [str(m.min_severity) === undefined ? '' : `>= ${str(m.min_severity)}`, str(m.pattern) === undefined ? '' : `"${str(m.pattern)}"`,
        str(m.regex) === undefined ? '' : `/${str(m.regex)}/`].filter((x) => x !== '').join(' ');
      what = `log records${which === '' ? '' : ` ${which}`} ${str(spec.signal) === 'rate' ? 'per s' : 'count'} ${op} ${threshold ?? '?'}${over}`;
      break;
    }
    case 'slo': {
      const o = num(spec.objective);
      what = `SLO ${o === undefined ? '?' : `${Number((o * 100).toFixed(4))} %`} (multi-window burn rates)`;
      break;
    }
    case 'absence':
      what = `no data for ${num(spec.for) === undefined ? '?' : durationText(num(spec.for) ?? 0)}`;
      break;
    case 'error':
      what = str(spec.event) === 'spike' ? `error spike ×${num(spec.factor) ?? '?'}${over}`
        : `error ${str(spec.event) ?? '?'}${num(spec.resolve_after) === undefined ? '' : ` (resolves after ${durationText(num(spec.resolve_after) ?? 0)})`}`;
      break;
    default:
      what = type ?? '?';
  }
  const sel = selectText(spec.select);
  const by = Array.isArray(spec.by) && spec.by.length > 0 ? ` by ${spec.by.join(', ')}` : '';
  const forMs = num(spec.for);
  const keep = num(spec.keep_firing_for);
  const extra = [
    type !== 'absence' && forMs !== undefined && forMs > 0 ? `for ${durationText(forMs)}` : '',
    keep !== undefined && keep > 0 ? `keep firing ${durationText(keep)}` : '',
  ].filter((x) => x !== '');
  return `${what}${sel === '' ? '' : ` where ${sel}`}${by}${extra.length === 0 ? '' : ` (${extra.join(', ')})`}`;
}
