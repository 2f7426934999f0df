import { parseSync } from 'libpg-query';
import { columnsOf, controlled, statementOutputs, type Lineage, type ResultLineage } from '../guardrails/lineage.js';
import type { WrittenValue } from '../guardrails/lineage-writes.js';
import type { Quantity } from '../guardrails/lineage-quantities.js';
import { choices, type Leaf } from '../guardrails/lineage-mixing.js';
import { testPathVerdict } from './test-paths.js';
import type { FieldDescription } from '../wire/decode.js';
import { ARRAY_ELEMENTS, binaryKind, decodeNumber, encodeNumber, isNumericKind, type BinaryKind } from './binary.js';
import { classify, type CatalogColumn, type ClassifiedColumn, type SamplePlan } from './classify.js';
import { DETECTOR_IDS, DetectorSet, MAX_DETECT_CHARS, MIN_DETECTABLE_LENGTH, OVER_LONG, type DetectorId, type DetectorMatch } from './detectors.js';
import type { TimeBucket } from '../user-bucket.js';
import { OVER_BUDGET } from './budget.js';
import { BACKEND, ERROR_FIELD } from '../wire/codes.js';
import { namesOnly } from './catalog-names.js';
import { ownNamesOnly } from './own-names.js';
import { ECHOING_FIELDS, scrubText, userComputed, VERBATIM_FIELDS, WITHHELD } from './errors.js';
import { Renderer, typeClass, type MaskMode, type TypeClass } from './render.js';
import { globMatches, ruleNames, USER_DATA_SYSTEM_RELATIONS, type ScopedRule } from './rule-scope.js';

export { globMatches };

/**
 * Masks result rows on the wire: DataRow messages (simple and extended protocol) and COPY OUT
 * data. A result's RowDescription is turned into a plan once; rows whose plan has nothing to do
 * are forwarded untouched, and a row is rebuilt (with recomputed lengths) only when a value
 * actually changed.
 */

export interface ColumnRule {
  /** Column name, case-insensitive; `*` matches any run of characters. */
  name: string;
  /**
   * Table (or view) name the rule is limited to, case-insensitive, `*` wildcards, any schema;
   * undefined: every user table's column of that name (rule-scope.ts).
   */
  table?: string;
  /** `none`: never classified (classify.ts); the detectors still read its values. */
  mode: MaskMode | 'none';
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
  /** How a binary value is read (binary.ts); undefined for text format. */
  bin: BinaryKind | undefined;
  /** A binary array's element kind and class (`bin` is then undefined). */
  elem?: { kind: BinaryKind; cls: TypeClass };
  /** Text forms the detectors cannot read as they are: floats in exponent form, bytea. */
  decode?: 'float' | 'bytea';
  /** Stored columns to classify (`seen`) when a detector matches a value of this column. */
  learn?: string[];
  /**
   * A value derived from masked data: NULL is masked too (into these bytes, or stays NULL where
   * every value of the column is masked into NULL), so NULL-ness tells nothing (attack round 7 #1).
   */
  nullAs?: Buffer;
}

/** What column rules (explicit or implied by classification) make of one value. */
interface Verdict {
  /** `detect`: a plain reference to a column that only contains PII here and there: detectors judge it. */
  mode: MaskMode | 'detect';
  /** From classification, not from an explicit rule. */
  implied: boolean;
  /** Computed from the column (or whole rows, or untraceable): masked as a whole. */
  derived?: boolean;
}

/**
 * Catalog statistics hold sample values of every analysed column (pg_stats.most_common_vals, ...),
 * and the activity views other sessions' statement texts (with their literals).
 */
const STATS_RELS = new Set(['pg_stats', 'pg_stats_ext', 'pg_stats_ext_exprs', 'pg_statistic', 'pg_statistic_ext_data', 'pg_stat_activity', 'pg_stat_statements']);
/** Statement texts of the activity views. */
const QUERY_TEXT_RELS = new Set(['pg_stat_activity', 'pg_stat_statements']);
const STATS_VALUES = /^(most_common_vals|most_common_elems|histogram_bounds|range_bounds_histogram|stavalues\d|stxdmcv|stxdexpr|stxdndistinct|stxddependencies)$/i;
/** Columns every table has besides its own (`c.ctid` is no call in attribute form). */
const SYSTEM_ATTRIBUTES = ['ctid', 'xmin', 'xmax', 'cmin', 'cmax', 'tableoid'];
/**
 * System columns a statement's row choice leaves behind: an UPDATE or DELETE (even one rolled
 * back, even a no-op) stamps its transaction id into `xmax` of the rows its WHERE chose, and a
 * committed one moves them (`ctid`, `xmin`); any later session reads them (attack round 7 #8).
 * Masked as derived while column rules apply, so a write grant's row choice over masked data is
 * no channel past the statement.
 */
const ROW_VERSION_COLUMNS = new Set(['ctid', 'xmin', 'xmax', 'cmin', 'cmax']);
const STRENGTH: Record<MaskMode | 'detect', number> = { detect: 0, partial: 1, hash: 2, full: 3 };

/** What to do with the rows of one result shape. */
export interface ResultPlan {
  columns: ColumnPlan[];
  /** False when no column can ever change: rows pass untouched without being read. */
  active: boolean;
}

/** Masked value counts by detector id or `column:<name>`, reset per statement by the caller. */
export type MaskCounts = Record<string, number>;

/** How long a resource's catalog (views, classification) is trusted before the next session reloads it. */
const CATALOG_TTL_MS = 30_000;
/** How long a table's classification stands before a session samples it again (new tables: at once). */
const CLASSIFY_TTL_MS = 300_000;

export class Masker {
  private readonly detectors: DetectorSet;
  private readonly rules: ScopedRule[];
  /** Explicit `none` rules: names never classified. */
  private readonly unclassified: string[];
  private readonly renderer: Renderer;
  /** The detection budget of the session whose message is being masked (set for one call). */
  private budget: TimeBucket | undefined;
  /** Each view's output columns and their lineage, from the catalog; undefined = not loaded. */
  private views: Map<string, Map<string, Lineage>> | undefined;
  private viewsAt = 0;
  /** Classified columns by lower-cased name (classify.ts), from the last catalog load. */
  private classified = new Map<string, ClassifiedColumn>();
  /** Columns a detector matched in results (kept across catalog loads). */
  private readonly learned = new Map<string, ClassifiedColumn>();
  private classifiedAt: string | undefined;
  /** Classified columns per `schema.table`, and when each table was last sampled. */
  private readonly byTable = new Map<string, ClassifiedColumn[]>();
  private readonly sampledAt = new Map<string, number>();
  /** Some classified column is not exempted by a `none` rule. */
  private anyClassified = false;
  /** Relation names the catalog snapshot knows (user tables and views, system catalogs); undefined = not loaded. */
  private knownRelations: Set<string> | undefined;
  /** System catalogs and views by lower-cased name (no `seen` classification from them). */
  private systemRelations = new Set<string>();
  /** Columns of each stored table (not views) by lower-cased name, from the catalog. */
  private tableColumns = new Map<string, string[]>();
  /** Names of schemas, relations, columns, constraints and indexes in the catalog (catalog-names.ts). */
  private catalogNames = new Set<string>();
  /** Columns of user tables and views (not system relations), by lower-cased relation name (all schemas). */
  private userColumns = new Map<string, string[]>();
  /** Columns of every table and view the login may read, by lower-cased relation name (all schemas). */
  private relationColumns = new Map<string, Set<string>>();
  /** Table names found in more than one schema: their column positions are not known by name alone. */
  private ambiguousTables = new Set<string>();

  constructor(
    private readonly policy: MaskingPolicy,
    hashKey: Buffer,
  ) {
    this.detectors = new DetectorSet(policy.detectors);
    this.rules = policy.columns.flatMap((c): ScopedRule[] => (c.mode === 'none' ? [] : [c.table === undefined ? { mode: c.mode, name: c.name } : { mode: c.mode, name: c.name, table: c.table }]));
    this.unclassified = policy.columns.filter((c) => c.mode === 'none').map((c) => c.name);
    this.renderer = new Renderer(hashKey);
  }

  /** Something can be masked: detectors, column rules or classified columns. */
  get active(): boolean {
    return !this.detectors.empty || this.rules.length > 0;
  }

  /** Column rules, explicit or implied: whole rows and untraceable values must be masked. */
  private get anyRule(): boolean {
    return this.rules.length > 0 || this.anyClassified || this.learned.size > 0;
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
   *
   * Throws a fatal GatewayError when a binary column of a type the masker cannot read would need
   * judging: such rows never reach the client.
   */
  plan(fields: readonly FieldDescription[], formats?: readonly number[], lineage?: ResultLineage): ResultPlan {
    let active = false;
    const traced = lineage === undefined ? undefined : columnsOf(lineage, fields.map((f) => f.name));
    const columns = fields.map((f, i): ColumnPlan => {
      const format = formats === undefined ? f.format : formats.length === 0 ? 0 : formats.length === 1 ? formats[0] : (formats[i] ?? 0);
      const cls = typeClass(f.typeOid);
      // `void` (`SELECT pg_sleep(0)`, a procedure-like function): every value is the empty string
      // (binary: no bytes), whatever computed it — there is nothing to mask.
      if (f.typeOid === VOID_OID) return { counter: `column:${f.name}`, nameMode: undefined, detect: false, cls: 'opaque', bin: undefined };
      const lin = traced?.[i];
      // What chose the value counts as what it is computed from (a CASE WHEN or FILTER test of a
      // masked value): one such test per output column and row is a bit per row in the clear,
      // and a statement may spell out any number of them (attack round 6 #1).
      const verdict = lin === undefined ? undefined : this.controlledMode(lin);
      // Without a lineage (a statement the tree does not describe: SHOW, ...) a rule still matches
      // the result column's own name; with one, the lineage decides (psql's `c.relname AS "Name"`
      // is no column a rule `name` names).
      const nameMode = (verdict === undefined || verdict.mode === 'detect' ? undefined : verdict.mode) ?? (lin === undefined ? this.rules.find((r) => globMatches(r.name, f.name))?.mode : undefined);
      const derived = verdict?.derived === true && nameMode !== undefined;
      const counter = `column:${f.name}`;
      // A detector match in a stored column not yet classified classifies it (`seen`): only a
      // plain reference the server itself names as a table column (RowDescription's table OID),
      // never a literal, parameter or expression a client aliased — one user's own values must
      // not change masking for everyone (attack round 3 #11).
      // Only a column of a stored user table, either: a system view's column (`pg_settings.setting`,
      // `pg_cursors.statement`) holds what a client put there (attack round 4 #7).
      const learn = nameMode === undefined && f.tableOid !== 0 && lin !== undefined && lin.direct && !lin.wholeRow && !lin.opaque && lin.cols.length === 1 && this.userTableColumn(lin) ? lin.cols : undefined;
      if (format !== 0) {
        if (nameMode === undefined && this.detectors.empty) return { counter, nameMode, detect: false, cls, bin: undefined };
        const elemOid = ARRAY_ELEMENTS.get(f.typeOid);
        const kind = binaryKind(elemOid ?? f.typeOid);
        // A derived array in binary would keep its length and its NULL elements: NULL as a whole.
        if (derived && elemOid !== undefined) {
          active = true;
          return { counter, nameMode, detect: false, cls: 'opaque', bin: undefined };
        }
        if (elemOid !== undefined && kind !== 'pass') {
          active = true;
          return { counter, nameMode, detect: !this.detectors.empty, cls, bin: undefined, elem: { kind, cls: typeClass(elemOid) }, learn };
        }
        if (kind === 'pass') {
          // Never scanned as text either; a column rule still hides it (as NULL).
          if (nameMode !== undefined) active = true;
          return { counter, nameMode, detect: false, cls: 'opaque', bin: undefined };
        }
        active = true;
        return { counter, nameMode, detect: !this.detectors.empty, cls, bin: kind, learn, nullAs: derived ? this.nullMask(nameMode, cls, kind) : undefined };
      }
      const decode = f.typeOid === 700 || f.typeOid === 701 ? 'float' : f.typeOid === 17 ? 'bytea' : undefined;
      const detect = !this.detectors.empty && (cls !== 'opaque' || decode !== undefined);
      if (nameMode !== undefined || detect) active = true;
      return { counter, nameMode, detect, cls, bin: undefined, decode, learn, nullAs: derived ? this.nullMask(nameMode, cls, undefined) : undefined };
    });
    return { columns, active };
  }

  /**
   * The verdict on a result column: its value's sources, and what chose it (`ctl`: CASE WHEN and
   * FILTER tests, the filters of the subqueries it comes from, lineage.ts rowControl). One such
   * test per output column and row is a bit per row in the clear, and a statement may spell out
   * any number of them (attack rounds 6 #1, 7 #1): chosen by masked data, the value is masked as
   * derived (`full`, NULL included). A test reading nothing masked leaves the value's own verdict
   * (a plain reference keeps its rule's mode).
   */
  private controlledMode(lin: Lineage): Verdict | undefined {
    if (lin.ctl === undefined) return this.lineageMode(lin);
    const { ctl, ...data } = lin;
    const own = this.lineageMode(data);
    const chose = this.lineageMode({ ...ctl, direct: false, ctl: undefined });
    if (chose === undefined || chose.mode === 'detect') return own;
    const v: Verdict = { mode: 'full', implied: chose.implied, derived: true };
    return own !== undefined && own.derived === true && STRENGTH[own.mode] >= STRENGTH.full ? own : v;
  }

  /** What NULL of a derived column becomes (ColumnPlan.nullAs); undefined where masked values are NULL themselves. */
  private nullMask(mode: MaskMode, cls: TypeClass, kind: BinaryKind | undefined): Buffer | undefined {
    if (kind !== undefined && (isNumericKind(kind) || kind === 'bytea')) return undefined;
    const text = this.renderer.whole('', mode, cls);
    if (text === null) return undefined;
    return kind === 'jsonb' ? Buffer.concat([Buffer.of(1), Buffer.from(text, 'utf8')]) : Buffer.from(text, 'utf8');
  }

  /**
   * How current the catalog (views, classification) is: `fresh` (or not needed), `stale` (older
   * than CATALOG_TTL_MS: refresh it in the background), `missing` (never loaded, or older than
   * CLASSIFY_TTL_MS: a session must not start on it).
   */
  get catalogState(): 'fresh' | 'stale' | 'missing' {
    if (!this.active) return 'fresh';
    if (this.views === undefined) return 'missing';
    const age = Date.now() - this.viewsAt;
    return age <= CATALOG_TTL_MS ? 'fresh' : age <= CLASSIFY_TTL_MS ? 'stale' : 'missing';
  }

  private refreshing = false;

  /** Claims the background refresh; false while one is running. */
  beginRefresh(): boolean {
    if (this.refreshing) return false;
    this.refreshing = true;
    return true;
  }

  endRefresh(): void {
    this.refreshing = false;
  }

  /** A catalog snapshot (catalog.ts loadCatalog): views, and the columns classified from samples and names. */
  setCatalog(snapshot: { views: readonly { name: string; definition: string }[]; columns: readonly CatalogColumn[]; system: readonly string[]; systemColumns?: readonly (readonly [string, string])[]; constraints?: readonly string[]; fresh: readonly CatalogColumn[]; plan: SamplePlan; samples: readonly (string | null)[][] }): void {
    const found = this.detectors.empty ? [] : classify(snapshot.fresh, snapshot.plan, snapshot.samples, this.detectors);
    const now = Date.now();
    for (const c of snapshot.fresh) {
      const table = `${c.schema}.${c.table}`;
      this.byTable.set(table, []);
      this.sampledAt.set(table, now);
    }
    for (const c of found) this.byTable.get(c.table)?.push(c);
    // Tables that are gone take their classification with them.
    const present = new Set(snapshot.columns.map((c) => `${c.schema}.${c.table}`));
    for (const t of [...this.byTable.keys()]) {
      if (!present.has(t)) {
        this.byTable.delete(t);
        this.sampledAt.delete(t);
      }
    }
    const map = new Map<string, ClassifiedColumn>();
    for (const c of [...this.byTable.values()].flat()) {
      const key = c.column.toLowerCase();
      const prev = map.get(key);
      // One name, several tables: the strictest classification wins (rules match names).
      if (prev === undefined || (prev.kind === 'contains' && c.kind === 'values')) map.set(key, c);
    }
    this.classified = map;
    this.anyClassified = [...map.values()].some((c) => !this.unclassified.some((n) => globMatches(n, c.column)));
    this.classifiedAt = new Date().toISOString();
    const tables = new Map<string, string[]>();
    const schemaOf = new Map<string, string>();
    const ambiguous = new Set<string>();
    for (const c of snapshot.columns) {
      if (c.kind === 'v') continue;
      const key = c.table.toLowerCase();
      tables.set(key, [...(tables.get(key) ?? []), c.column]);
      if ((schemaOf.get(key) ?? c.schema) !== c.schema) ambiguous.add(key);
      schemaOf.set(key, c.schema);
    }
    this.tableColumns = tables;
    this.ambiguousTables = ambiguous;
    const relations = new Map<string, Set<string>>();
    const add = (rel: string, col: string): void => {
      const key = rel.toLowerCase();
      const set = relations.get(key) ?? new Set<string>(SYSTEM_ATTRIBUTES);
      set.add(col);
      relations.set(key, set);
    };
    const user = new Map<string, string[]>();
    for (const c of snapshot.columns) {
      add(c.table, c.column);
      const key = c.table.toLowerCase();
      user.set(key, [...(user.get(key) ?? []), c.column]);
    }
    this.userColumns = user;
    for (const [rel, col] of snapshot.systemColumns ?? []) add(rel, col);
    this.relationColumns = relations;
    const names = new Set<string>([...(snapshot.constraints ?? []), ...snapshot.system]);
    for (const c of snapshot.columns) names.add(c.schema).add(c.table).add(c.column);
    for (const [rel, col] of snapshot.systemColumns ?? []) names.add(rel).add(col);
    this.catalogNames = names;
    this.knownRelations = new Set([...snapshot.columns.map((c) => c.table.toLowerCase()), ...snapshot.system.map((n) => n.toLowerCase())]);
    this.systemRelations = new Set(snapshot.system.map((n) => n.toLowerCase()));
    this.setViews(snapshot.views);
  }

  /** Whether a session's catalog load should sample this table (`schema.table`): new, or sampled too long ago. */
  sampleWanted(table: string): boolean {
    const at = this.sampledAt.get(table);
    return at === undefined || Date.now() - at > CLASSIFY_TTL_MS;
  }

  /** The classification for the policy view: every classified column, and whether a rule overrides it. */
  classification(): { at: string | undefined; columns: (ClassifiedColumn & { mode: MaskMode | 'detect' | 'none'; overriddenBy?: string })[] } {
    const all = [...this.classified.values(), ...[...this.learned.values()].filter((c) => !this.classified.has(c.column.toLowerCase()))];
    return {
      at: this.classifiedAt,
      columns: all.map((c) => {
        const rule = this.policy.columns.find((r) => r.mode === 'none' ? globMatches(r.name, c.column) : ruleNames(r, c.column, c.table === '*' ? undefined : [c.table.slice(c.table.indexOf('.') + 1)]));
        const mode = rule !== undefined ? rule.mode : c.kind === 'values' ? this.policy.mode : 'detect';
        return rule === undefined ? { ...c, mode } : { ...c, mode, overriddenBy: rule.name };
      }),
    };
  }

  /** The rule for one stored column: an explicit one, else its classification unless exempted. */
  private ruleFor(column: string, rels?: readonly string[]): Verdict | undefined {
    // The system catalogs' own columns: the database's names, not data (rule-scope.ts).
    if (this.systemOnly(rels)) return undefined;
    const rule = this.rules.find((r) => ruleNames(r, column, rels));
    if (rule !== undefined) return { mode: rule.mode, implied: false };
    const key = column.toLowerCase();
    const c = this.classified.get(key) ?? this.learned.get(key);
    if (c === undefined || this.unclassified.some((n) => globMatches(n, column))) return undefined;
    return { mode: c.kind === 'values' ? this.policy.mode : 'detect', implied: true };
  }

  /**
   * Are all of `rels` system catalogs or views (and no user relation of the same name, in any
   * schema), none of those holding stored user data? Unknown (undefined or empty): no.
   */
  private systemOnly(rels: readonly string[] | undefined): boolean {
    if (rels === undefined || rels.length === 0) return false;
    return rels.every((r) => {
      const key = r.toLowerCase();
      return this.systemRelations.has(key) && !this.userColumns.has(key) && !USER_DATA_SYSTEM_RELATIONS.has(key);
    });
  }

  /**
   * A relation the catalog snapshot does not know (created since, or a temporary one): its
   * columns could not be classified, so they are treated as classified `contains` (fail closed).
   */
  private unknownRelationRule(lin: Lineage): Verdict | undefined {
    const known = this.knownRelations;
    if (known === undefined || this.detectors.empty) return undefined;
    const unknown = (lin.rels ?? []).some((r) => !known.has(r.toLowerCase()) && !STATS_RELS.has(r));
    return unknown ? { mode: 'detect', implied: true } : undefined;
  }

  /**
   * Is the plain reference `lin` a column of stored user tables only (not views, not system
   * catalogs or views, not relations the catalog snapshot does not know)?
   */
  private userTableColumn(lin: Lineage): boolean {
    const rels = lin.rels ?? [];
    const col = lin.cols[0]?.toLowerCase();
    return col !== undefined && rels.length > 0 && rels.every((r) => {
      const key = r.toLowerCase();
      return !this.systemRelations.has(key) && (this.tableColumns.get(key) ?? []).some((c) => c.toLowerCase() === col);
    });
  }

  /** Marks result columns a detector matched in as classified (`seen`). */
  private learnFrom(cols: readonly string[], counts: MaskCounts): void {
    for (const col of cols) {
      const key = col.toLowerCase();
      // A table-scoped rule names the column of its own table only: the same name elsewhere may still learn.
      if (this.classified.has(key) || this.learned.has(key) || this.rules.some((r) => r.table === undefined && globMatches(r.name, col)) || this.unclassified.some((n) => globMatches(n, col))) continue;
      this.learned.set(key, { table: '*', column: col, source: 'seen', detectors: [], kind: 'contains' });
      counts['classified:seen'] = (counts['classified:seen'] ?? 0) + 1;
    }
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
      } catch { // a view the parser cannot read is opaque: its columns are masked as unknown (fail closed)
        cols.set('*', { cols: [], wholeRow: false, opaque: true, direct: false });
      }
      map.set(v.name, cols);
    }
    this.views = map;
    this.viewsAt = Date.now();
  }

  /**
   * What column rules (explicit, or implied by classification) make of a value with this lineage:
   * a plain reference keeps the rule's mode, anything derived is masked as a whole (`full`, or
   * `hash` when the rule hashes). The strictest verdict over every source wins.
   */
  private lineageMode(lin: Lineage, depth = 0): Verdict | undefined {
    let best: Verdict | undefined;
    const consider = (v: Verdict | undefined): void => {
      if (v !== undefined && (best === undefined || STRENGTH[v.mode] > STRENGTH[best.mode] || (STRENGTH[v.mode] === STRENGTH[best.mode] && !v.implied))) best = v;
    };
    for (const c of lin.cols) {
      // Catalog statistics: sample values of any column, whatever masks it.
      if (STATS_VALUES.test(c) && (lin.rels === undefined || lin.rels.length === 0 || lin.rels.some((r) => STATS_RELS.has(r)))) consider({ mode: 'full', implied: false, derived: true });
      if ((c === 'query' || c === 'application_name') && (lin.rels ?? []).some((r) => QUERY_TEXT_RELS.has(r))) consider({ mode: 'full', implied: false, derived: true });
      if (ROW_VERSION_COLUMNS.has(c) && this.anyRule) consider({ mode: 'full', implied: false, derived: true });
      const rule = this.ruleFor(c, lin.rels) ?? this.unknownRelationRule(lin);
      // Derived values are `full` even where the rule hashes: a keyed hash of substr(name, i, 1)
      // over a small domain decodes with a codebook (attack round 3 #3).
      if (rule !== undefined) consider(lin.direct ? rule : { mode: 'full', implied: rule.implied, derived: true });
    }
    if (lin.opaque || (lin.wholeRow && (lin.rels ?? []).some((r) => STATS_RELS.has(r)))) {
      if (this.anyRule || (lin.rels ?? []).some((r) => STATS_RELS.has(r))) consider({ mode: 'full', implied: false, derived: true });
    } else if (lin.wholeRow && this.anyRule) {
      // Whole rows of tables and views the catalog knows are judged by their columns: `to_jsonb(l)`
      // of a table nothing masks stays as it is (and stays JSON).
      consider(this.wholeRowVerdict(lin.rels ?? [], depth));
    }
    // `c.f` where the relation has no column f is f(c): a function of the whole row, whatever f is.
    if (this.anyRule && lin.attrs !== undefined && lin.attrs.some((a) => this.attributeCall(a))) consider({ mode: 'full', implied: false, derived: true });
    // Through views: the view's own columns that this value may read.
    for (const rel of lin.rels ?? []) {
      const view = this.views?.get(rel);
      if (view === undefined) continue;
      if (depth > 16) return { mode: 'full', implied: false, derived: true };
      const unknown = view.get('*');
      const parts = [...lin.cols.map((c) => view.get(c) ?? unknown), unknown].filter((p): p is Lineage => p !== undefined);
      for (const p of parts) {
        const v = this.lineageMode(p, depth + 1);
        if (v !== undefined) consider(lin.direct && p.direct ? v : { mode: 'full', implied: v.implied, derived: true });
      }
    }
    return best;
  }

  /**
   * The strictest verdict over every column of whole rows of `rels`; `full` when a relation's
   * columns are not in the catalog (unknown, temporary, system) — the masking of whole rows
   * that the tree cannot see into.
   */
  private wholeRowVerdict(rels: readonly string[], depth: number): Verdict | undefined {
    if (rels.length === 0 || depth > 16) return { mode: 'full', implied: false, derived: true };
    let best: Verdict | undefined;
    for (const rel of rels) {
      const cols = this.userColumns.get(rel.toLowerCase());
      if (cols === undefined) return { mode: 'full', implied: false, derived: true };
      for (const c of cols) {
        const col = this.lineageMode({ cols: [c], wholeRow: false, opaque: false, direct: true, rels: [rel] }, depth + 1);
        // A column inside a row is a derived value: `full`.
        const v: Verdict | undefined = col === undefined || col.mode === 'detect' ? col : { mode: 'full', implied: col.implied, derived: true };
        if (v !== undefined && (best === undefined || STRENGTH[v.mode] > STRENGTH[best.mode])) best = v;
      }
    }
    return best;
  }

  /** Is `rel` NUL `name` (lineage.ts attrs) a call in attribute form: a relation the catalog knows, without that column? */
  private attributeCall(attr: string): boolean {
    const at = attr.indexOf('\u0000');
    const cols = this.relationColumns.get(attr.slice(0, at).toLowerCase());
    return cols !== undefined && !cols.has(attr.slice(at + 1));
  }

  /**
   * COPY output has no per-column plan (only content detection runs on it): refuse a COPY whose
   * data a column rule would mask, or whose columns the tree cannot trace. The reason, or undefined.
   */
  copyRefusal(lineage: ResultLineage | undefined): string | undefined {
    if (lineage === undefined) return undefined;
    const cols = (lineage.merged ? [lineage.all] : lineage.columns.map((c) => c.lin)).map(controlled);
    for (const lin of cols) {
      const v = this.copyVerdict(lin);
      // A plain reference to a classified column: its values are what the detectors recognised.
      if (v === undefined || (v.implied && v.derived !== true)) continue;
      const named = lin.cols.find((c) => this.ruleFor(c, lin.rels) !== undefined || STATS_VALUES.test(c));
      return named !== undefined ? `COPY output includes masked column "${named}"` : 'COPY output of whole rows: name the columns (a masking column rule applies)';
    }
    return undefined;
  }

  /**
   * COPY of whole rows of stored tables (`COPY t TO STDOUT`): judged column by column from the
   * catalog, so a table with classified columns only can still be copied (the detectors read
   * every line); an unknown table, or any other shape, is judged as it stands.
   */
  private copyVerdict(lin: Lineage): Verdict | undefined {
    const rels = lin.rels ?? [];
    if (!lin.wholeRow || lin.opaque || lin.cols.length > 0 || rels.length === 0) return this.lineageMode(lin);
    let best: Verdict | undefined;
    for (const rel of rels) {
      const cols = this.tableColumns.get(rel.toLowerCase());
      if (cols === undefined) return this.lineageMode(lin);
      for (const c of cols) {
        const v = this.lineageMode({ cols: [c], wholeRow: false, opaque: false, direct: true, rels: [rel] });
        if (v !== undefined && (v.derived === true || !v.implied)) return v;
        best ??= v;
      }
    }
    return best;
  }

  /**
   * Writes under masking (lineage-writes.ts): a value computed from a masked column (or whole
   * rows, or something the tree cannot see into, while column rules apply) may only be stored in
   * a column that is itself masked at least as strictly (full ≥ hash ≥ partial), else a later
   * read — in this transaction, after commit, by anyone — would return it unmasked. A plain copy
   * of a column the detectors judge stays allowed (they judge it where it lands). The reason to
   * refuse, or undefined.
   */
  writeRefusal(writes: readonly WrittenValue[] | undefined): { detail: string; statement: number } | undefined {
    if (writes === undefined) return undefined;
    for (const w of writes) {
      // What chose the value (CASE WHEN, FILTER) counts too: a stored value is read past this statement.
      const lin = controlled(w.lin);
      const v = w.sameNames === true ? this.sameNameVerdict(lin, w.rel) : this.lineageMode(lin);
      if (v === undefined || v.mode === 'detect') continue;
      const rel = w.rel.toLowerCase();
      const col = w.col ?? (w.position !== undefined && !this.ambiguousTables.has(rel) ? this.tableColumns.get(rel)?.[w.position] : undefined);
      const t = col === undefined ? undefined : this.lineageMode({ cols: [col], wholeRow: false, opaque: false, direct: true, rels: [w.rel] });
      if (t !== undefined && t.mode !== 'detect' && STRENGTH[t.mode] >= STRENGTH[v.mode]) continue;
      const from = lin.cols.find((c) => this.ruleFor(c, lin.rels) !== undefined);
      const what = from !== undefined ? `masked column "${from}"` : w.sameNames === true || lin.wholeRow ? 'whole rows' : lin.opaque ? 'a function the gateway cannot see into' : 'masked data';
      const where = col !== undefined ? `"${w.rel}"."${col}"` : `a column of "${w.rel}" the statement does not name`;
      const mode = t === undefined || t.mode === 'detect' ? 'not masked' : `masked only as ${t.mode}`;
      return {
        detail: `a value computed from ${what} would be written into ${where}, which is ${mode} (it would be read back unmasked; write it from an unmasked session, or mask the target column)`,
        statement: w.statement ?? 1,
      };
    }
    return undefined;
  }

  /**
   * Quantities under masking (lineage-quantities.ts): a value computed from a masked column (or
   * whole rows, or a function the tree cannot see into, while column rules apply) may select rows
   * through a predicate but not decide how many rows there are or how they are numbered. The
   * reason to refuse, or undefined.
   */
  quantityRefusal(quantities: readonly Quantity[] | undefined): { detail: string; statement: number } | undefined {
    for (const q of quantities ?? []) {
      if (q.tests !== undefined) {
        const why = this.testPathRefusal(q.lin.leaves ?? [], q.tests.overflow);
        if (why !== undefined) return { detail: why, statement: q.statement ?? 1 };
        continue;
      }
      if (q.mix !== undefined) {
        if (q.mix.chooser !== undefined) {
          const chosen = this.chooserRefusal(q.mix.chooser, q.lin.leaves ?? []);
          if (chosen !== undefined) return { detail: `${q.what}: ${chosen} (a masked value may only be tested against constants and parameters, or values of its own row)`, statement: q.statement ?? 1 };
          continue;
        }
        const why = q.mix.atoms !== undefined ? this.atomRefusal(q.mix.atoms) : this.mixRefusal(q.lin.leaves ?? [], q.mix.directEq);
        if (why !== undefined) return { detail: `${q.what} compares ${why}: the other values, an error or the time taken would return it unmasked (a masked value may only be tested against constants and parameters, or values of its own row)`, statement: q.statement ?? 1 };
        continue;
      }
      // What chose the value (CASE WHEN, FILTER: lineage-control.ts) decides a quantity too.
      const lin = controlled(q.lin);
      const v = this.lineageMode(lin);
      if (v === undefined || v.mode === 'detect') continue;
      const from = lin.cols.find((c) => this.ruleFor(c, lin.rels) !== undefined);
      const what = from !== undefined ? `masked column "${from}"` : lin.wholeRow ? 'whole rows' : lin.opaque ? 'a function the gateway cannot see into' : 'masked data';
      return {
        detail: q.reason !== undefined
          ? `a value computed from ${what} is used as ${q.what}: ${q.reason}`
          : `a value computed from ${what} is used as ${q.what}: the count (or the time taken) would return it unmasked (a masked value may only select rows through WHERE/ON/HAVING)`,
        statement: q.statement ?? 1,
      };
    }
    return undefined;
  }

  /**
   * The mixing rule (lineage-mixing.ts): for each way the unqualified names may resolve, a masked
   * leaf may meet only leaves read through its own row sources, and masked leaves of different
   * row sources only in an equality of two plain column references. What is compared, or
   * undefined.
   */
  private chooserRefusal(chooser: readonly Leaf[], chosen: readonly Leaf[]): string | undefined {
    const m = chosen.filter((l) => {
      const v = this.lineageMode(l.lin);
      return v !== undefined && v.mode !== 'detect';
    });
    if (m.length === 0) return undefined;
    // Unqualified names: every reading at once (fail closed).
    const own = new Set(m.flatMap((l) => l.srcs));
    if (!chooser.some((l) => l.srcs.some((x) => !own.has(x)))) return undefined;
    const c = m[0].lin.cols.find((x) => this.ruleFor(x, m[0].lin.rels) !== undefined);
    return `${c !== undefined ? `masked column "${c}"` : 'masked data'} in work that values of another row source choose to run (which rows raise an error, or take time, would spell it)`;
  }

  /** Does a leaf read a value that masking hides (not only scanned by the detectors)? */
  private maskedLeaf(l: Leaf): boolean {
    const v = this.lineageMode(l.lin);
    return v !== undefined && v.mode !== 'detect';
  }

  /** How a refusal names what a leaf reads. */
  private leafName(l: Leaf): string {
    const c = l.lin.cols.find((x) => this.ruleFor(x, l.lin.rels) !== undefined);
    return c !== undefined ? `masked column "${c}"` : l.lin.wholeRow ? 'whole rows' : l.lin.opaque ? 'a function the gateway cannot see into' : 'masked data';
  }

  /**
   * One row path per table (test-paths.ts): the masked values a statement's row-choosing tests
   * read come from each table through one FROM item (or derived tables over it). The reason to
   * refuse, or undefined.
   */
  private testPathRefusal(leaves: readonly Leaf[], overflow: boolean): string | undefined {
    const masked = (l: Leaf): boolean => this.maskedLeaf(l);
    const name = (l: Leaf): string => this.leafName(l);
    const v = testPathVerdict(leaves, overflow, masked, (l) => this.baseTables(l.lin));
    if (v === undefined) return undefined;
    if (v.kind === 'unjudged') return `the row-choosing tests of ${name(v.leaf)} are too many, or read too many possible sources, to judge which FROM items they read (each FROM item that tests a masked value tells one bit of every row it reads)`;
    const table = v.table === '*' ? 'a relation the gateway cannot name' : `"${v.table}"`;
    return `${name(v.a)} and ${name(v.b)} of ${table} are tested through two FROM items (self joins, CTE references, derived tables, subqueries): each item that tests a masked value tells one bit of every row it reads, so k items reading one row tell k bits of it (test a table's masked values through one FROM item per statement)`;
  }

  /**
   * The stored tables a value reads, views resolved through their definitions (lower-cased);
   * `*` where the tree cannot say (a function it cannot see into, an unknown view column).
   */
  private baseTables(lin: Lineage, depth = 0): string[] {
    const rels = lin.rels ?? [];
    if (rels.length === 0 || lin.opaque || depth > 16) return ['*'];
    const out = new Set<string>();
    for (const rel of rels) {
      const view = this.views?.get(rel);
      if (view === undefined) {
        out.add(rel.toLowerCase());
        continue;
      }
      const parts = lin.wholeRow ? [...view.values()] : lin.cols.map((c) => view.get(c) ?? view.get('*'));
      if (parts.length === 0 || parts.some((p) => p === undefined)) return ['*'];
      for (const p of parts) for (const t of this.baseTables(p as Lineage, depth + 1)) out.add(t);
    }
    return [...out];
  }

  /**
   * The atoms of an AND/OR/NOT conjunct (lineage-quantities.ts `combined`), each judged on its
   * own already: one atom testing masked values of one row source may stand beside atoms of
   * other sources (they decide whether its one answer matters); two or more may not (the other
   * atoms would choose which test a row answers). Masked atoms of different sources, and names
   * with several readings, are judged as one comparison (mixRefusal).
   */
  private atomRefusal(atoms: readonly (readonly Leaf[])[]): string | undefined {
    const all = atoms.flat();
    const masked = (l: Leaf): boolean => this.maskedLeaf(l);
    const m = all.filter(masked);
    if (m.length === 0) return undefined;
    if (all.some((l) => l.alt !== undefined) || new Set(m.map((l) => l.srcs.join(','))).size > 1) return this.mixRefusal(all, false);
    const own = new Set(m[0].srcs);
    const testing = atoms.filter((a) => a.some(masked));
    if (testing.length < 2 || !all.some((l) => l.srcs.some((x) => !own.has(x)))) return undefined;
    const c = m[0].lin.cols.find((x) => this.ruleFor(x, m[0].lin.rels) !== undefined);
    return `${c !== undefined ? `masked column "${c}"` : 'masked data'} in ${testing.length} tests that AND/OR combine with values of another row source (the other values would choose which test each row answers)`;
  }

  private mixRefusal(leaves: readonly Leaf[], directEq: boolean): string | undefined {
    const masked = (l: Leaf): boolean => this.maskedLeaf(l);
    const name = (l: Leaf): string => this.leafName(l);
    const sets = choices(leaves);
    if (sets === undefined) {
      const m = leaves.find(masked);
      return m === undefined ? undefined : `${name(m)} with values of other row sources (too many readings of unqualified names to judge)`;
    }
    for (const set of sets) {
      const m = set.filter(masked);
      if (m.length === 0) continue;
      const own = new Set(m.flatMap((l) => l.srcs));
      if (set.some((l) => l.srcs.some((x) => !own.has(x)))) return `${name(m[0])} with values of another row source (a join, a subquery, VALUES, a set-returning function or a derived table)`;
      const keys = new Set(m.map((l) => l.srcs.join(',')));
      if (keys.size > 1 && !directEq) return `${name(m[0])} with masked values of another row source (only an equality of two plain columns may compare them)`;
    }
    return undefined;
  }

  /**
   * `CREATE TABLE t AS SELECT * FROM s`: each stored column lands in a column of its own name,
   * which the same rules match; only views (their columns are computed) and unknown relations
   * are judged as whole rows. Not so when a rule names a table (the new table's columns are not
   * its columns) or the target has a system relation's name (rules do not name those columns:
   * rule-scope.ts): then the rows are judged as whole rows too.
   */
  private sameNameVerdict(lin: Lineage, target: string): Verdict | undefined {
    const rels = lin.rels ?? [];
    const sameRules = !this.rules.some((r) => r.table !== undefined) && !this.systemRelations.has(target.toLowerCase());
    if (sameRules && rels.length > 0 && rels.every((r) => this.tableColumns.has(r.toLowerCase()))) return undefined;
    return this.lineageMode(lin);
  }

  /**
   * Masks one DataRow message (`msg[start..end)`, type byte included). Returns the rebuilt
   * message, or undefined when nothing changed.
   */
  maskDataRow(msg: Buffer, start: number, end: number, plan: ResultPlan, counts: MaskCounts, budget?: TimeBucket): Buffer | undefined {
    if (!plan.active) return undefined;
    this.budget = budget;
    try {
      return this.maskRow(msg, start, end, plan, counts);
    } finally {
      this.budget = undefined;
    }
  }

  /**
   * The detectors on one text, charged to the session's budget while one is set (budget.ts):
   * with the budget spent, the whole text is one `over-budget` match, unscanned (fail closed).
   */
  private find(text: string): readonly (DetectorMatch | { id: typeof OVER_BUDGET; start: number; end: number })[] {
    const b = this.budget;
    if (b === undefined || text.length < MIN_DETECTABLE_LENGTH) return this.detectors.find(text);
    if (!b.available()) return [{ id: OVER_BUDGET, start: 0, end: text.length }];
    return b.charge(() => this.detectors.find(text));
  }

  /**
   * `find` on ASCII bytes. A value over the detectors' bound is one match, whatever it holds
   * (detectors.ts find), so no string is built for it: a 15 MB value cost a 15 MB string here.
   */
  private findAscii(msg: Buffer, at: number, len: number): ReturnType<Masker['find']> {
    if (len <= MAX_DETECT_CHARS || this.detectors.empty) return this.find(msg.toString('latin1', at, at + len));
    const b = this.budget;
    return [{ id: b !== undefined && !b.available() ? OVER_BUDGET : OVER_LONG, start: 0, end: len }];
  }

  private maskRow(msg: Buffer, start: number, end: number, plan: ResultPlan, counts: MaskCounts): Buffer | undefined {
    const n = msg.readInt16BE(start + 5);
    let off = start + 7;
    let changes: { at: number; len: number; value: Buffer | null }[] | undefined;
    for (let i = 0; i < n && off + 4 <= end; i++) {
      const len = msg.readInt32BE(off);
      const valueAt = off + 4;
      off = valueAt + (len > 0 ? len : 0);
      if (off > end) break; // malformed row: leave it to the client to reject
      const col = plan.columns[i];
      if (len < 0 && col?.nullAs !== undefined) {
        counts[col.counter] = (counts[col.counter] ?? 0) + 1;
        (changes ??= []).push({ at: valueAt - 4, len: 0, value: col.nullAs });
        continue;
      }
      if (len < 0 || col === undefined) continue;
      if (col.nameMode === undefined && (!col.detect || (len < MIN_DETECTABLE_LENGTH && col.bin === undefined && col.elem === undefined))) continue;
      const overLong = (counts[OVER_LONG] ?? 0) + (counts[OVER_BUDGET] ?? 0);
      const replaced = this.maskValue(msg, valueAt, len, col, counts);
      if (replaced === undefined) continue;
      (changes ??= []).push({ at: valueAt - 4, len, value: replaced });
      // A value masked only for its length (or an empty budget) says nothing about the column.
      if (col.learn !== undefined && col.nameMode === undefined && (counts[OVER_LONG] ?? 0) + (counts[OVER_BUDGET] ?? 0) === overLong) this.learnFrom(col.learn, counts);
    }
    if (changes === undefined) return undefined;
    return rebuild(msg, start, end, changes);
  }

  private maskValue(msg: Buffer, at: number, len: number, col: ColumnPlan, counts: MaskCounts): Buffer | null | undefined {
    if (col.elem !== undefined) return this.maskArray(msg, at, len, col.elem.kind, col.elem.cls, col, counts);
    if (col.bin !== undefined) return this.maskBinary(col.bin, col.cls, msg, at, len, col, counts);
    if (col.decode !== undefined && col.nameMode === undefined) return this.maskEncoded(msg, at, len, col.decode, counts);
    if (col.cls === 'opaque' && col.nameMode !== undefined) {
      counts[col.counter] = (counts[col.counter] ?? 0) + 1;
      return null;
    }
    const mode = this.policy.mode;
    if (col.nameMode === undefined && col.cls !== 'inet' && mode !== 'hash' && isAscii(msg, at, at + len)) return this.maskAscii(msg, at, len, mode, counts);
    const masked = this.maskString(msg.toString('utf8', at, at + len), col.cls, col, counts);
    return masked === undefined || masked === null ? masked : Buffer.from(masked, 'utf8');
  }

  /**
   * maskText for the common value: ASCII text, detectors only, `full` or `partial` (masks keep
   * the length). The matches are masked in a copy of the bytes: no masked string is built and
   * none encoded back (half the cost of a masked value).
   */
  private maskAscii(msg: Buffer, at: number, len: number, mode: 'full' | 'partial', counts: MaskCounts): Buffer | undefined {
    const matches = this.findAscii(msg, at, len);
    if (matches.length === 0) return undefined;
    const out = Buffer.allocUnsafe(len);
    copyBytes(msg, at, at + len, out, 0);
    for (const m of matches) {
      this.renderer.matchAsciiInPlace(out, m.start, m.end, mode);
      counts[m.id] = (counts[m.id] ?? 0) + 1;
    }
    return out;
  }

  /** One binary value of a judged kind (binary.ts): decoded, masked, encoded back. */
  private maskBinary(kind: BinaryKind, cls: TypeClass, msg: Buffer, at: number, len: number, col: ColumnPlan, counts: MaskCounts): Buffer | null | undefined {
    if (isNumericKind(kind)) {
      const text = decodeNumber(kind, msg, at, len);
      if (text === undefined) return undefined;
      const masked = this.maskString(text, 'numeric', col, counts);
      return masked === undefined || masked === null ? masked : encodeNumber(kind, masked);
    }
    if (kind === 'bytea') {
      const masked = this.maskString(msg.toString('latin1', at, at + len), 'text', col, counts);
      return masked === undefined || masked === null ? masked : Buffer.from(masked, 'latin1');
    }
    const prefix = kind === 'jsonb' ? 1 : 0;
    const masked = this.maskString(msg.toString('utf8', at + prefix, at + len), cls, col, counts);
    if (masked === undefined || masked === null) return masked;
    return prefix === 1 ? Buffer.concat([Buffer.of(1), Buffer.from(masked, 'utf8')]) : Buffer.from(masked, 'utf8');
  }

  /**
   * A binary array: Int32 ndim, Int32 has-nulls, element oid, ndim × (size, lower bound), then
   * every element as Int32 length (-1 = NULL) and bytes. Elements are masked one by one; a
   * malformed array becomes NULL.
   */
  private maskArray(msg: Buffer, at: number, len: number, kind: BinaryKind, cls: TypeClass, col: ColumnPlan, counts: MaskCounts): Buffer | null | undefined {
    const end = at + len;
    if (len < 12) return len === 0 ? undefined : null;
    const ndim = msg.readInt32BE(at);
    let off = at + 12 + 8 * ndim;
    if (ndim < 0 || ndim > 6 || off > end) return null;
    let changes: { at: number; len: number; value: Buffer | null }[] | undefined;
    let nulled = false;
    while (off < end) {
      if (off + 4 > end) return null;
      const l = msg.readInt32BE(off);
      const v = off + 4;
      off = v + Math.max(l, 0);
      if (off > end) return null;
      if (l < 0) continue;
      const r = this.maskBinary(kind, cls, msg, v, l, col, counts);
      if (r === undefined) continue;
      if (r === null) nulled = true;
      (changes ??= []).push({ at: v - 4, len: l, value: r });
    }
    if (changes === undefined) return undefined;
    const out = splice(msg, at, end, changes);
    if (nulled) out.writeInt32BE(1, 4); // has-nulls
    return out;
  }

  /**
   * `4.111111111111111e+15` is a card number once written out; `\\x616c...` (bytea hex) and
   * bytea's escape form hold text. The detectors read the decoded form; a masked value is written
   * back in the column's own form.
   */
  private maskEncoded(msg: Buffer, at: number, len: number, decode: 'float' | 'bytea', counts: MaskCounts): Buffer | undefined {
    const text = msg.toString('latin1', at, at + len);
    if (decode === 'float') {
      if (!text.includes('e')) return undefined;
      const x = Number(text);
      if (!Number.isInteger(x) || Math.abs(x) >= 1e21) return undefined;
      const masked = this.maskText(BigInt(x).toString(), 'numeric', counts);
      return masked === undefined ? undefined : Buffer.from(masked, 'latin1');
    }
    if (text.startsWith('\\x')) {
      const masked = this.maskText(Buffer.from(text.slice(2), 'hex').toString('latin1'), 'text', counts);
      return masked === undefined ? undefined : Buffer.from(`\\x${Buffer.from(masked, 'latin1').toString('hex')}`, 'latin1');
    }
    const masked = this.maskText(text, 'text', counts);
    return masked === undefined ? undefined : Buffer.from(masked, 'latin1');
  }

  /** A column rule masks the whole value; otherwise the detectors mask what they find. */
  private maskString(text: string, cls: TypeClass, col: ColumnPlan, counts: MaskCounts): string | null | undefined {
    if (col.nameMode !== undefined) {
      counts[col.counter] = (counts[col.counter] ?? 0) + 1;
      return this.renderer.whole(text, col.nameMode, cls);
    }
    return this.maskText(text, cls, counts);
  }

  /** Masks every detected match inside a text; undefined when none was found. */
  maskText(text: string, cls: TypeClass, counts: MaskCounts): string | undefined {
    const matches = this.find(text);
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
  maskCopyData(msg: Buffer, start: number, end: number, counts: MaskCounts, budget?: TimeBucket): Buffer | undefined {
    if (this.detectors.empty || end - start - 5 < MIN_DETECTABLE_LENGTH) return undefined;
    this.budget = budget;
    let masked: string | undefined;
    try {
      masked = this.maskText(msg.toString('utf8', start + 5, end), 'text', counts);
    } finally {
      this.budget = undefined;
    }
    if (masked === undefined) return undefined;
    const body = Buffer.from(masked, 'utf8');
    const out = Buffer.allocUnsafe(5 + body.length);
    out[0] = BACKEND.CopyData;
    out.writeInt32BE(4 + body.length, 1);
    body.copy(out, 5);
    return out;
  }
  // ---- other server → client channels: errors, notices, parameters, notifications ----------

  /**
   * ErrorResponse / NoticeResponse: every text field (message, detail, hint, context, the
   * internal query, names) can echo a value, e.g. `invalid input syntax for type integer: "…"`.
   * The detectors mask what they find, and, since no column plan follows a value into a message,
   * errors.ts withholds every piece the client's statement (`sql`) did not contain itself.
   */
  maskErrorMessage(msg: Buffer, start: number, end: number, counts: MaskCounts, sql?: string): Buffer | undefined {
    if (!this.active) return undefined;
    const sqlLower = sql?.toLowerCase();
    const raw: [number, number, number][] = [];
    const fields = new Map<string, string>();
    let off = start + 5;
    while (off < end && msg[off] !== 0) {
      const stop = msg.indexOf(0, off + 1);
      if (stop === -1 || stop >= end) return undefined; // malformed: the client rejects it
      raw.push([msg[off], off, stop]);
      fields.set(String.fromCharCode(msg[off]), msg.toString('utf8', off + 1, stop));
      off = stop + 1;
    }
    // Text a routine computed can hold any value: withheld while anything is classified or ruled.
    const computed = this.anyRule && userComputed(fields);
    const parts: Buffer[] = [];
    let changed = false;
    for (const [code, at, stop] of raw) {
      if (VERBATIM_FIELDS.has(code)) {
        parts.push(msg.subarray(at, stop + 1));
        continue;
      }
      const text = msg.toString('utf8', at + 1, stop);
      const detected = this.maskText(text, 'text', counts) ?? text;
      // While a column is ruled or classified, no heuristic over the server's words can be
      // trusted (`operator does not exist: Margaret_Lovelace` from `replace(name, ' ', '_')::regoper`,
      // numbers hidden in a comment): message and hint are withheld whole; SQLSTATE and position stay.
      const sqlstate = fields.get('C') ?? '';
      const whole = computed || (this.anyRule && !FIXED_TEXT_CLASSES.has(sqlstate.slice(0, 2))) || ECHOING_FIELDS.has(code);
      // Only names of catalog objects in a known template (`duplicate key value violates unique constraint "…"`).
      const names = !computed && !ECHOING_FIELDS.has(code) && namesOnly(code, text, sqlstate, (n) => this.catalogNames.has(n), (p) => sqlLower?.includes(p.toLowerCase()) === true);
      // Or only identifiers the client's own statement spelt out (`column "status" does not exist`: own-names.ts).
      const own = !computed && ownNamesOnly(code, text, fields, sqlLower);
      const kept = names || own ? detected : whole ? (code === ERROR_FIELD.Message ? `${WITHHELD} (SQLSTATE ${fields.get('C') ?? '?'})` : WITHHELD) : scrubText(detected, sqlLower);
      if (kept !== detected) counts['error:withheld'] = (counts['error:withheld'] ?? 0) + 1;
      if (kept === text) parts.push(msg.subarray(at, stop + 1));
      else {
        changed = true;
        parts.push(Buffer.of(code), Buffer.from(`${kept}\0`, 'utf8'));
      }
    }
    if (!changed) return undefined;
    return message(msg[start], [...parts, Buffer.of(0)]);
  }

  /** ParameterStatus: `set_config('application_name', email, false)` reports the value back. */
  maskParameterStatus(msg: Buffer, start: number, end: number, counts: MaskCounts): Buffer | undefined {
    return this.maskStrings(msg, start, start + 5, end, counts);
  }

  /** NotificationResponse: Int32 pid, then channel and payload (NOTIFY, pg_notify). */
  maskNotification(msg: Buffer, start: number, end: number, counts: MaskCounts): Buffer | undefined {
    return this.maskStrings(msg, start, start + 9, end, counts);
  }

  /** Masks the C strings from `from` to `end`; the bytes before `from` are kept. */
  private maskStrings(msg: Buffer, start: number, from: number, end: number, counts: MaskCounts): Buffer | undefined {
    if (this.detectors.empty) return undefined;
    const parts: Buffer[] = [msg.subarray(start + 5, from)];
    let changed = false;
    for (let off = from; off < end;) {
      const stop = msg.indexOf(0, off);
      if (stop === -1 || stop >= end) return undefined;
      const masked = this.maskText(msg.toString('utf8', off, stop), 'text', counts);
      if (masked !== undefined) changed = true;
      parts.push(masked === undefined ? msg.subarray(off, stop + 1) : Buffer.from(`${masked}\0`, 'utf8'));
      off = stop + 1;
    }
    return changed ? message(msg[start], parts) : undefined;
  }
}

/**
 * SQLSTATE classes whose messages are the server's fixed words, never a value: connection (08),
 * transaction state (25: `current transaction is aborted…`), rollback (40: serialization failure,
 * deadlock) and operator intervention (57: cancel, statement timeout, shutdown). Their Detail
 * is still withheld.
 */
/** pg_type oid of `void`. */
const VOID_OID = 2278;
const FIXED_TEXT_CLASSES = new Set(['08', '25', '40', '57']);

function isAscii(buf: Buffer, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (buf[i] > 127) return false;
  return true;
}

function message(type: number, parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  const out = Buffer.allocUnsafe(5 + body.length);
  out[0] = type;
  out.writeInt32BE(4 + body.length, 1);
  body.copy(out, 5);
  return out;
}

function rebuild(msg: Buffer, start: number, end: number, changes: { at: number; len: number; value: Buffer | null }[]): Buffer {
  const out = splice(msg, start, end, changes);
  out.writeInt32BE(out.length - 1, 1);
  return out;
}

/** `msg[start..end)` with some length-prefixed values replaced (null = SQL NULL). */
function splice(msg: Buffer, start: number, end: number, changes: { at: number; len: number; value: Buffer | null }[]): Buffer {
  let size = end - start;
  for (const c of changes) size += (c.value === null ? 0 : c.value.length) - c.len;
  const out = Buffer.allocUnsafe(size);
  let w = 0;
  let r = start;
  for (const c of changes) {
    w += copyBytes(msg, r, c.at, out, w);
    if (c.value === null) {
      out.writeInt32BE(-1, w);
      w += 4;
    } else {
      out.writeInt32BE(c.value.length, w);
      w += 4;
      w += copyBytes(c.value, 0, c.value.length, out, w);
    }
    r = c.at + 4 + c.len;
  }
  copyBytes(msg, r, end, out, w);
  return out;
}

/** `src[from..to)` into `dst` at `at`; returns the length. A loop for the short runs between masked values (Buffer#copy costs a native call and a view each). */
function copyBytes(src: Buffer, from: number, to: number, dst: Buffer, at: number): number {
  const n = to - from;
  if (n > 64) return src.copy(dst, at, from, to);
  for (let i = 0; i < n; i++) dst[at + i] = src[from + i];
  return n;
}
