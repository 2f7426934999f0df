/**
 * A small in-process registry of counters and gauges, rendered in the Prometheus text exposition
 * format 0.0.4 by `GET /metrics`, and the set of degraded components `GET /api/health` reports.
 * One registry per process (`metrics`): what fails anywhere is counted where it is caught.
 */

export type Labels = Readonly<Record<string, string>>;

interface Family {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  /** Serialised label set → value. */
  values: Map<string, { labels: Labels; value: number }>;
  /** Values read at scrape time (a counter kept elsewhere). */
  collect?: () => Array<{ labels: Labels; value: number }>;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A label value as the exposition format wants it: backslash, double quote and newline escaped. */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function labelKey(labels: Labels): string {
  return JSON.stringify(Object.keys(labels).sort().map((k) => [k, labels[k]]));
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

export class MetricsRegistry {
  private readonly families = new Map<string, Family>();
  private readonly degraded = new Map<string, string>();

  private family(name: string, help: string, type: Family['type']): Family {
    if (!NAME.test(name)) throw new Error(`invalid metric name: ${name}`);
    const f = this.families.get(name);
    if (f !== undefined) {
      if (f.type !== type) throw new Error(`metric ${name} already registered as a ${f.type}`);
      return f;
    }
    const created: Family = { name, help, type, values: new Map() };
    this.families.set(name, created);
    return created;
  }

  private set(f: Family, labels: Labels, update: (old: number) => number): void {
    for (const k of Object.keys(labels)) if (!LABEL.test(k) || k.startsWith('__')) throw new Error(`invalid label name: ${k}`);
    const key = labelKey(labels);
    const cur = f.values.get(key);
    if (cur === undefined) f.values.set(key, { labels: { ...labels }, value: update(0) });
    else cur.value = update(cur.value);
  }

  /** Adds `by` (>= 0) to a counter; declares it on first use. */
  inc(name: string, help: string, labels: Labels = {}, by = 1): void {
    if (!(by >= 0)) throw new Error(`counter ${name} cannot decrease`);
    this.set(this.family(name, help, 'counter'), labels, (v) => v + by);
  }

  /** Sets a gauge. */
  setGauge(name: string, help: string, value: number, labels: Labels = {}): void {
    this.set(this.family(name, help, 'gauge'), labels, () => value);
  }

  /** A family whose values are read at scrape time (e.g. counters another module keeps). */
  collect(name: string, help: string, type: Family['type'], read: () => Array<{ labels: Labels; value: number }>): void {
    this.family(name, help, type).collect = read;
  }

  /** Marks a component degraded (`reason`) or healthy again (`undefined`). */
  setDegraded(component: string, reason: string | undefined): void {
    if (reason === undefined) this.degraded.delete(component);
    else this.degraded.set(component, reason);
  }

  /** Degraded components, sorted by name. */
  degradedComponents(): Array<{ component: string; reason: string }> {
    return [...this.degraded].sort(([a], [b]) => a.localeCompare(b)).map(([component, reason]) => ({ component, reason }));
  }

  /** Value of one series (tests, health). */
  value(name: string, labels: Labels = {}): number {
    return this.families.get(name)?.values.get(labelKey(labels))?.value ?? 0;
  }

  /** The Prometheus text exposition format 0.0.4. */
  render(): string {
    const out: string[] = [];
    for (const f of [...this.families.values()].sort((a, b) => a.name.localeCompare(b.name))) {
      const series = [...f.values.values(), ...(f.collect?.() ?? [])];
      out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
      for (const s of series) {
        const ls = Object.keys(s.labels).sort().map((k) => `${k}="${escapeLabelValue(s.labels[k])}"`);
        out.push(`${f.name}${ls.length > 0 ? `{${ls.join(',')}}` : ''} ${formatValue(s.value)}`);
      }
    }
    return out.length === 0 ? '' : `${out.join('\n')}\n`;
  }
}

/** The process's registry. */
export const metrics = new MetricsRegistry();

/** Content type of `render()`. */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
