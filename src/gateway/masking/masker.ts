import { parseSync } from 'libpg-query';
import { columnsOf, statementOutputs, type Lineage, type ResultLineage } from '../guardrails/lineage.js';
import type { FieldDescription } from '../wire/decode.js';
import { DETECTOR_IDS, DetectorSet, MIN_DETECTABLE_LENGTH, type DetectorId } from './detectors.js';
import { Renderer, typeClass, type MaskMode, type TypeClass } from './render.js';

/**
 * Masks result rows on the wire: DataRow messages (simple and extended protocol) and COPY OUT
 * data. A result's RowDescription is turned into a plan once; rows whose plan has nothing to do
 * are forwarded untouched, and a row is rebuilt (with recomputed lengths) only when a value
 * actually changed.
 */

export interface ColumnRule {
  /** Column name, case-insensitive; `*` matches any run of characters. */
  name: string;
  mode: MaskMode;
}

export interface MaskingPolicy {
  enabled: boolean;
  detectors: DetectorId[];
  /** How detector matches are masked. */
  mode: MaskMode;
  columns: ColumnRule[];
  /** tightloop roles that see data unmasked. */
  exemptRoles: string[];
}

export const DEFAULT_MASKING: MaskingPolicy = {
  enabled: true,
  detectors: [...DETECTOR_IDS],
  mode: 'partial',
  columns: [],
  exemptRoles: [],
};

interface ColumnPlan {
  /** Counter key for values masked by a column rule. */
  counter: string;
  nameMode: MaskMode | undefined;
  detect: boolean;
  cls: TypeClass;
  binary: boolean;
}

/** What to do with the rows of one result shape. */
export interface ResultPlan {
  columns: ColumnPlan[];
  /** False when no column can ever change: rows pass untouched without being read. */
  active: boolean;
}

/** Masked value counts by detector id or `column:<name>`, reset per statement by the caller. */
export type MaskCounts = Record<string, number>;

/** How long a resource's view definitions are trusted before the next session reloads them. */
const CATALOG_TTL_MS = 30_000;

function globToRegExp(glob: string): RegExp {
  const body = glob.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*');
  return new RegExp(`^${body}$`, 'i');
}

export class Masker {
  private readonly detectors: DetectorSet;
  private readonly rules: { re: RegExp; mode: MaskMode; name: string }[];
  private readonly renderer: Renderer;
  /** Each view's output columns and their lineage, from the catalog; undefined = not loaded. */
  private views: Map<string, Map<string, Lineage>> | undefined;
  private viewsAt = 0;

  constructor(
    private readonly policy: MaskingPolicy,
    hashKey: Buffer,
  ) {
    this.detectors = new DetectorSet(policy.detectors);
    this.rules = policy.columns.map((c) => ({ re: globToRegExp(c.name), mode: c.mode, name: c.name }));
    this.renderer = new Renderer(hashKey);
  }

  /** Does this role see data unmasked? */
  exempts(role: string): boolean {
    return !this.policy.enabled || this.policy.exemptRoles.includes(role);
  }

  /**
   * A result's plan. With the statement's lineage, a column rule applies to every output column
   * computed from a column it names (a plain reference keeps the rule's mode; anything derived
   * from it is masked as a whole, `full` unless the rule hashes), and a column the tree cannot
   * trace (whole rows, unknown functions) is masked as a whole while the policy has column
   * rules. The result column's own name still matches as well.
   */
  plan(fields: readonly FieldDescription[], formats?: readonly number[], lineage?: ResultLineage): ResultPlan {
    let active = false;
    const traced = lineage === undefined || this.rules.length === 0 ? undefined : columnsOf(lineage, fields.map((f) => f.name));
    const columns = fields.map((f, i): ColumnPlan => {
      const format = formats === undefined ? f.format : formats.length === 0 ? 0 : formats.length === 1 ? formats[0] : (formats[i] ?? 0);
      const cls = typeClass(f.typeOid);
      const binary = format === 1;
      const lin = traced?.[i];
      const nameMode = (lin === undefined ? undefined : this.lineageMode(lin)) ?? this.rules.find((r) => r.re.test(f.name))?.mode;
      // Binary numbers, dates, uuids... cannot be scanned; text-like binary values are UTF-8.
      const scannable = cls !== 'opaque' && cls !== 'inet' && !(binary && cls === 'numeric');
      const detect = !this.detectors.empty && (scannable || (cls === 'inet' && !binary));
      if (nameMode !== undefined || detect) active = true;
      return { counter: `column:${f.name}`, nameMode, detect, cls, binary };
    });
    return { columns, active };
  }

  /** Column rules apply through views: the catalog's view definitions are wanted (again). */
  get needsCatalog(): boolean {
    return this.rules.length > 0 && (this.views === undefined || Date.now() - this.viewsAt > CATALOG_TTL_MS);
  }

  /**
   * Views from the catalog: each definition is parsed and its output columns traced like a
   * query's, so `SELECT x FROM v` is masked when v's x is computed from a masked column. A
   * definition that does not parse makes every column of that view untraceable.
   */
  setViews(views: readonly { name: string; definition: string }[]): void {
    const map = new Map<string, Map<string, Lineage>>();
    for (const v of views) {
      const cols = new Map<string, Lineage>();
      try {
        const outs = statementOutputs(parseSync(v.definition).stmts?.[0]?.stmt) ?? [];
        for (const o of outs) cols.set(o.star !== undefined || o.name === undefined ? '*' : o.name, o.lin);
      } catch {
        cols.set('*', { cols: [], wholeRow: false, opaque: true, direct: false });
      }
      map.set(v.name, cols);
    }
    this.views = map;
    this.viewsAt = Date.now();
  }

  /** The mode a column rule imposes on a value with this lineage, if any. */
  private lineageMode(lin: Lineage, depth = 0): MaskMode | undefined {
    for (const c of lin.cols) {
      const rule = this.rules.find((r) => r.re.test(c));
      if (rule !== undefined) return lin.direct || rule.mode === 'hash' ? rule.mode : 'full';
    }
    if (lin.wholeRow || lin.opaque) return 'full';
    // Through views: the view's own columns that this value may read.
    for (const rel of lin.rels ?? []) {
      const view = this.views?.get(rel);
      if (view === undefined) continue;
      if (depth > 16) return 'full';
      const unknown = view.get('*');
      const parts = [...lin.cols.map((c) => view.get(c) ?? unknown), unknown].filter((p): p is Lineage => p !== undefined);
      for (const p of parts) {
        const mode = this.lineageMode(p, depth + 1);
        if (mode !== undefined) return lin.direct && p.direct ? mode : mode === 'hash' ? 'hash' : 'full';
      }
    }
    return undefined;
  }

  /**
   * COPY output has no per-column plan (only content detection runs on it): refuse a COPY whose
   * data a column rule would mask, or whose columns the tree cannot trace. The reason, or undefined.
   */
  copyRefusal(lineage: ResultLineage | undefined): string | undefined {
    if (lineage === undefined || this.rules.length === 0) return undefined;
    const cols = lineage.merged ? [lineage.all] : lineage.columns.map((c) => c.lin);
    for (const lin of cols) {
      const mode = this.lineageMode(lin);
      if (mode === undefined) continue;
      const named = lin.cols.find((c) => this.rules.some((r) => r.re.test(c)));
      return named !== undefined ? `COPY output includes masked column "${named}"` : 'COPY output of whole rows: name the columns (a masking column rule applies)';
    }
    return undefined;
  }

  /**
   * Masks one DataRow message (`msg[start..end)`, type byte included). Returns the rebuilt
   * message, or undefined when nothing changed.
   */
  maskDataRow(msg: Buffer, start: number, end: number, plan: ResultPlan, counts: MaskCounts): Buffer | undefined {
    if (!plan.active) return undefined;
    const n = msg.readInt16BE(start + 5);
    let off = start + 7;
    let changes: { at: number; len: number; value: Buffer | null }[] | undefined;
    for (let i = 0; i < n && off + 4 <= end; i++) {
      const len = msg.readInt32BE(off);
      const valueAt = off + 4;
      off = valueAt + (len > 0 ? len : 0);
      if (off > end) break; // malformed row: leave it to the client to reject
      const col = plan.columns[i];
      if (len < 0 || col === undefined) continue;
      if (col.nameMode === undefined && (!col.detect || len < MIN_DETECTABLE_LENGTH)) continue;
      const replaced = this.maskValue(msg, valueAt, len, col, counts);
      if (replaced !== undefined) (changes ??= []).push({ at: valueAt - 4, len, value: replaced });
    }
    if (changes === undefined) return undefined;
    return rebuild(msg, start, end, changes);
  }

  private maskValue(msg: Buffer, at: number, len: number, col: ColumnPlan, counts: MaskCounts): Buffer | null | undefined {
    if (col.nameMode !== undefined) {
      if (col.binary && !(col.cls === 'text' || col.cls === 'json' || col.cls === 'jsonb')) {
        counts[col.counter] = (counts[col.counter] ?? 0) + 1;
        return null;
      }
      const prefix = col.binary && col.cls === 'jsonb' ? 1 : 0;
      const text = msg.toString('utf8', at + prefix, at + len);
      const out = this.renderer.whole(text, col.nameMode, col.cls);
      counts[col.counter] = (counts[col.counter] ?? 0) + 1;
      if (out === null) return null;
      return prefix === 1 ? Buffer.concat([Buffer.of(1), Buffer.from(out, 'utf8')]) : Buffer.from(out, 'utf8');
    }
    const prefix = col.binary && col.cls === 'jsonb' ? 1 : 0;
    const text = msg.toString('utf8', at + prefix, at + len);
    const masked = this.maskText(text, col.cls, counts);
    if (masked === undefined) return undefined;
    return prefix === 1 ? Buffer.concat([Buffer.of(1), Buffer.from(masked, 'utf8')]) : Buffer.from(masked, 'utf8');
  }

  /** Masks every detected match inside a text; undefined when none was found. */
  maskText(text: string, cls: TypeClass, counts: MaskCounts): string | undefined {
    const matches = this.detectors.find(text);
    if (matches.length === 0) return undefined;
    let out = '';
    let last = 0;
    for (const m of matches) {
      out += text.slice(last, m.start) + this.renderer.match(m.id, text.slice(m.start, m.end), this.policy.mode, cls);
      last = m.end;
      counts[m.id] = (counts[m.id] ?? 0) + 1;
    }
    return out + text.slice(last);
  }

  /**
   * Masks one CopyData message of a text or CSV COPY OUT. Column names are not known there,
   * so only content detection applies; matches never contain delimiters or quotes, so the line
   * keeps its structure.
   */
  maskCopyData(msg: Buffer, start: number, end: number, counts: MaskCounts): Buffer | undefined {
    if (this.detectors.empty || end - start - 5 < MIN_DETECTABLE_LENGTH) return undefined;
    const masked = this.maskText(msg.toString('utf8', start + 5, end), 'text', counts);
    if (masked === undefined) return undefined;
    const body = Buffer.from(masked, 'utf8');
    const out = Buffer.allocUnsafe(5 + body.length);
    out[0] = 0x64; // 'd'
    out.writeInt32BE(4 + body.length, 1);
    body.copy(out, 5);
    return out;
  }
}

function rebuild(msg: Buffer, start: number, end: number, changes: { at: number; len: number; value: Buffer | null }[]): Buffer {
  let size = end - start;
  for (const c of changes) size += (c.value === null ? 0 : c.value.length) - c.len;
  const out = Buffer.allocUnsafe(size);
  let w = 0;
  let r = start;
  for (const c of changes) {
    w += msg.copy(out, w, r, c.at);
    if (c.value === null) {
      out.writeInt32BE(-1, w);
      w += 4;
    } else {
      out.writeInt32BE(c.value.length, w);
      w += 4;
      w += c.value.copy(out, w);
    }
    r = c.at + 4 + c.len;
  }
  w += msg.copy(out, w, r, end);
  out.writeInt32BE(size - 1, 1);
  return out;
}
