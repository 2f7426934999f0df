import { fingerprintSync, loadModule, normalizeSync, parseSync, type ParseResult } from 'libpg-query';
import { ACTION_RANK, DEFAULT_ACTIONS, DEFAULT_MODE_ACTIONS, type Finding, type RuleAction, type RuleId } from './rules.js';
import { copyOptions } from './copy-options.js';
import { resultLineage, type OutputColumn, type ResultLineage } from './lineage.js';
import { statementAnalysis, type WrittenValue } from './lineage-writes.js';
import { collectQuantities, type Quantity } from './lineage-quantities.js';
import { effectReads } from './lineage-effects.js';
import { countedInString, countedWrite, uncountedWrites } from './row-ceiling.js';
import { executeArguments, preparedNames, type PreparedNames } from './prepared.js';
import { tableLocks } from './locks.js';
import { shapeOf, type Shape } from './shape.js';
import { limitRefusal, sessionLimitChanges, type LimitChange, type SessionLimits } from './session-limits.js';
import { ALL_VISITORS, statementTextReads } from './visitors.js';
import { combine, walk, type WalkContext } from './walk.js';
import { DEFAULT_WORK_BUDGET, WorkBudgetExceeded, withWorkBudget } from './work.js';

/**
 * Guardrails: what a statement does (from the real PostgreSQL parser) and what the policy says
 * about it. `analyze` is policy-free and cached; `decide` applies a policy and is cheap, so one
 * cache serves every resource, role and mode.
 *
 * Cache levels, cheapest first: exact text (prepared statements, repeated queries); the
 * literal-free shape key (simple-protocol queries differing only in constants); libpg-query's
 * normalised text (8 µs, a tenth of a parse). Only decisions that did not look at a constant are
 * stored under the shape and normalised keys.
 *
 * Not the fingerprint, although it is the obvious "normalised statement" key: it ignores more
 * than constants — `BEGIN`, `BEGIN READ WRITE` and `BEGIN READ ONLY` share one — so a cached
 * "allow" could leak to a statement a rule must refuse. The fingerprint is still computed on
 * each parse and recorded in the audit to group statements.
 */

const lib = { parseSync, fingerprintSync, normalizeSync };
let ready: Promise<void> | undefined;

/** Loads the parser's WASM module once per process; call before the first analyze. */
export function loadParser(): Promise<void> {
  return (ready ??= loadModule());
}

export interface StatementFacts {
  findings: readonly Finding[];
  /** Normalised text (constants replaced by $n), for the audit. */
  normalized: string;
  fingerprint: string;
  /** Top-level statement types ("SelectStmt", ...). */
  kinds: readonly string[];
  /** True when a rule looked at a constant's value (not cacheable by shape). */
  literalDependent: boolean;
  /** Where each result column's value comes from (lineage.ts); undefined when no statement returns rows. */
  lineage?: ResultLineage;
  /**
   * With several statements: the lineage of each one's own result (undefined for one that
   * returns no rows). The server completes statements in order, so the relay maps each result
   * to its statement instead of merging them all.
   */
  statementLineage?: readonly (ResultLineage | undefined)[];
  /** Values written into stored columns, with their lineage (lineage-writes.ts); masking judges them. */
  writes?: readonly WrittenValue[];
  /** Values used as quantities (row counts, LIMIT, window order; lineage-quantities.ts); masking judges them. */
  quantities?: readonly Quantity[];
  /**
   * A lone write that changes existing rows, counted by its command tag (row-ceiling.ts): the
   * relay holds its commit until the count is known.
   */
  countedWrite?: true;
  /** Per top-level statement: prepared-statement names it defines, runs or drops (prepared.ts). */
  prepared?: readonly (PreparedNames | undefined)[];
  /** What the string sets that could change a session limit (session-limits.ts); `decide` judges it. */
  limitChanges?: readonly (LimitChange & { statement: number })[];
}

export interface DecisionContext {
  mode: 'read' | 'write' | 'admin';
  /** Resource policy: per-rule actions, and overrides per access mode. */
  rules: Partial<Record<RuleId, RuleAction>>;
  modes: Partial<Record<'read' | 'write' | 'admin', Partial<Record<RuleId, RuleAction>>>>;
  /** Overrides for the user's tightloop role (already picked for this session). */
  role?: Partial<Record<RuleId, RuleAction>>;
  maskingActive: boolean;
  /** Functions a read grant may call although they are not known to be side-effect free. */
  allowFunctions?: ReadonlySet<string>;
  /** The session's resource limits (policy `limits`): what sets one higher is `session-limit`. */
  limits?: SessionLimits;
}

export interface Decision {
  action: RuleAction;
  /** The finding that decided it (undefined when allowed without findings). */
  finding: Finding | undefined;
  /** Every finding that was not 'allow', e.g. for warnings. */
  applied: readonly { finding: Finding; action: RuleAction }[];
}

const TABLE = combine([...ALL_VISITORS, sessionLimitChanges, copyOptions, executeArguments, tableLocks, { A_Const: (node, ctx) => ctx.sawConstant?.(Number(node.location ?? -1)) }]);
/**
 * Bounds on the caches: entries per level, and the longest text used as a key. Worst case about
 * 10 000 × 4 KiB per level; a longer statement is simply analysed each time.
 */
const MAX_CACHE = 10_000;
export const MAX_CACHED_SQL = 4096;

function remember<V>(map: Map<string, V>, key: string, value: V): void {
  if (map.size >= MAX_CACHE) map.delete(map.keys().next().value as string);
  map.set(key, value);
}

export class Guardrails {
  private readonly byText = new Map<string, StatementFacts>();
  private readonly byShape = new Map<string, StatementFacts>();
  private readonly byNormalized = new Map<string, StatementFacts>();
  /** Counters for tests and the benchmark: how often each level answered; `work`: units the last parsed statement spent (work.ts). */
  readonly stats = { text: 0, shape: 0, normalized: 0, parsed: 0, work: 0 };
  /** Work units one statement string's analysis may spend (work.ts; `gateway.maxStatementWork`). */
  readonly workBudget: number;

  constructor(opts: { workBudget?: number } = {}) {
    this.workBudget = opts.workBudget ?? DEFAULT_WORK_BUDGET;
  }

  analyze(sql: string): StatementFacts {
    const exact = this.byText.get(sql);
    if (exact !== undefined) {
      this.stats.text++;
      return exact;
    }
    // Before any parser or lexer pass over the text: their work grows with it.
    if (sql.length > MAX_CACHED_SQL && tokenCount(sql) > MAX_TOKENS) return { ...unparseable(sql), findings: [{ rule: 'unparseable', detail: TOO_COMPLEX, statement: 1 }] };
    const shapeInfo = shapeOf(sql);
    const shape = shapeInfo?.key;
    if (shape !== undefined) {
      const hit = this.byShape.get(shape);
      if (hit !== undefined) {
        this.stats.shape++;
        return hit;
      }
    }
    const normalized = normalizedKey(sql);
    let facts = normalized === undefined ? undefined : this.byNormalized.get(normalized);
    let constants: Set<number> | undefined;
    if (facts !== undefined) {
      this.stats.normalized++;
    } else {
      this.stats.parsed++;
      constants = new Set();
      const set = constants;
      try {
        const { result, spent } = withWorkBudget(this.workBudget, () => analyzeTree(sql, normalized, set));
        facts = result;
        this.stats.work = spent;
      } catch (err) {
        // A tree deeper than the walks' stack, or analysis over its work budget: refused cleanly
        // (SQLSTATE 54001), never a crash and never seconds of the gateway's thread.
        if (err instanceof WorkBudgetExceeded) {
          this.stats.work = err.budget;
          facts = { ...unparseable(sql), findings: [{ rule: 'unparseable', detail: TOO_MUCH_WORK, statement: 1 }] };
        } else if (err instanceof RangeError) facts = { ...unparseable(sql), findings: [{ rule: 'unparseable', detail: TOO_DEEP, statement: 1 }] };
        else throw err;
      }
      if (!facts.literalDependent && normalized !== undefined && normalized.length <= MAX_CACHED_SQL) remember(this.byNormalized, normalized, facts);
    }
    if (sql.length <= MAX_CACHED_SQL) remember(this.byText, sql, facts);
    // By shape only when every stripped literal is a constant of the tree (not an option such as
    // COPY's FORMAT 'binary'); a hit on the normalised level did not parse, so it is not stored.
    if (shapeInfo !== undefined && shape !== undefined && !facts.literalDependent && constants !== undefined && literalsAreConstants(sql, shapeInfo, constants)) {
      remember(this.byShape, shape, facts);
    }
    return facts;
  }
}

/** Does every literal the shape key stripped start where the parser put a constant? */
function literalsAreConstants(sql: string, shape: Shape, constants: ReadonlySet<number>): boolean {
  // The parser's locations are byte offsets; the shape's are character offsets.
  const ascii = !/[^\x00-\x7f]/.test(sql);
  for (const at of shape.literals) {
    const bytes = ascii ? at : Buffer.byteLength(sql.slice(0, at), 'utf8');
    if (!constants.has(bytes)) return false;
  }
  return true;
}

/** libpg-query's normalisation, or undefined when it failed (it reports some errors as its result). */
function normalizedKey(sql: string): string | undefined {
  try {
    const n = lib.normalizeSync(sql);
    return /^(syntax error|unterminated|invalid|ERROR|deparse error)/.test(n) ? undefined : n;
  } catch { // no key means no cache entry: the statement is judged uncached
    return undefined;
  }
}

/**
 * Bound on the work of judging one Query string (attack round 4 #8): parsing and the walks cost
 * a few microseconds per token on the gateway's thread, so a string of more tokens than this is
 * refused before it is parsed (SQLSTATE 54000). Counted by a linear scan that skips string
 * literals, quoted identifiers and comments in a way that can only count more than the server
 * sees, never less (fail closed). Bulk data goes through parameters or COPY FROM.
 */
export const MAX_TOKENS = 50_000;
export const TOO_COMPLEX = `statement has more than ${MAX_TOKENS} tokens, more than the gateway judges (split it, or pass values as parameters or COPY FROM)`;

/** Tokens outside literals and comments (punctuation and words), counted up to `limit` + 1. */
export function tokenCount(sql: string, limit = MAX_TOKENS): number {
  let n = 0;
  let i = 0;
  const len = sql.length;
  const word = (c: number): boolean => (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c === 36 || c > 127;
  while (i < len && n <= limit) {
    const c = sql.charCodeAt(i);
    if (c === 39) {
      // '...' ('' doubles a quote); E'...' also takes backslash escapes. Treating a plain string's
      // backslash as literal can only end it earlier than a server with standard_conforming_strings off.
      const e = i > 0 && (sql.charCodeAt(i - 1) | 32) === 101 && (i < 2 || !word(sql.charCodeAt(i - 2)));
      i++;
      while (i < len) {
        const d = sql.charCodeAt(i);
        if (e && d === 92) i += 2;
        else if (d === 39) {
          if (sql.charCodeAt(i + 1) === 39) i += 2;
          else break;
        } else i++;
      }
      i++;
      n++;
    } else if (c === 34) {
      const end = sql.indexOf('"', i + 1);
      i = end < 0 ? len : end + 1;
      n++;
    } else if (c === 45 && sql.charCodeAt(i + 1) === 45) {
      const end = sql.indexOf('\n', i);
      i = end < 0 ? len : end + 1;
    } else if (c === 47 && sql.charCodeAt(i + 1) === 42) {
      // Not nesting: ends no later than the server's (nested) comment.
      const end = sql.indexOf('*/', i + 2);
      i = end < 0 ? len : end + 2;
    } else if (c === 36 && (i === 0 || !word(sql.charCodeAt(i - 1)))) {
      const m = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i, i + 66));
      if (m === null) {
        i++;
        n++;
        continue;
      }
      const end = sql.indexOf(m[0], i + m[0].length);
      i = end < 0 ? len : end + m[0].length;
      n++;
    } else if (word(c)) {
      while (i < len && word(sql.charCodeAt(i))) i++;
      n++;
    } else {
      if (c > 32) n++;
      i++;
    }
  }
  return n;
}

/** The finding of a statement nested too deeply to judge; the session answers it with SQLSTATE 54001. */
export const TOO_DEEP = 'statement nests too deeply for the gateway to judge';
/** The finding of a statement whose analysis spent its work budget (work.ts); SQLSTATE 54001 too. */
export const TOO_MUCH_WORK = 'statement is too complex for the gateway to judge (its analysis spent the work budget, gateway.maxStatementWork: split it, or use fewer subqueries, CTEs, joins or select-list columns per statement)';

function unparseable(sql: string): StatementFacts {
  return {
    findings: [{ rule: 'unparseable', detail: 'syntax error', statement: 1 }],
    normalized: sql.length > 200 ? `${sql.slice(0, 200)}…` : sql,
    fingerprint: '',
    kinds: [],
    literalDependent: true,
  };
}

const EMPTY_FACTS: StatementFacts = { findings: [], normalized: '', fingerprint: '', kinds: [], literalDependent: false };

function analyzeTree(sql: string, normalizedText: string | undefined, constants?: Set<number>): StatementFacts {
  // The WASM parser refuses an empty string; PostgreSQL answers it with EmptyQueryResponse.
  if (sql.trim() === '') return EMPTY_FACTS;
  let tree: ParseResult;
  try {
    tree = lib.parseSync(sql);
  } catch (err) {
    // The parser's JSON is decoded recursively: a deep tree overflows the stack there too.
    if (err instanceof RangeError || (err instanceof Error && /stack depth|call stack|memory exhausted/i.test(err.message))) throw new RangeError(TOO_DEEP);
    return unparseable(sql);
  }
  const findings: Finding[] = [];
  const kinds: string[] = [];
  let literalDependent = false;
  const stmts = tree.stmts ?? [];
  const outputs: (OutputColumn[] | undefined)[] = [];
  const writes: WrittenValue[] = [];
  const quantities: Quantity[] = [];
  let counted = false;
  const prepared: (PreparedNames | undefined)[] = [];
  const limitChanges: (LimitChange & { statement: number })[] = [];
  stmts.forEach((raw, index) => {
    const ctx: WalkContext = {
      statement: index + 1,
      report(rule, detail, subject) {
        if (!findings.some((f) => f.rule === rule && f.detail === detail && f.statement === index + 1)) {
          findings.push(subject === undefined ? { rule, detail, statement: index + 1 } : { rule, detail, statement: index + 1, subject });
        }
      },
      usedConstants() {
        literalDependent = true;
      },
      sawConstant(location) {
        constants?.add(location);
      },
      setsLimit(change) {
        limitChanges.push({ ...change, statement: index + 1 });
      },
    };
    const stmt = raw.stmt as Record<string, unknown> | undefined;
    kinds.push(stmt === undefined ? 'Empty' : (Object.keys(stmt)[0] ?? 'Empty'));
    walk(stmt, TABLE, ctx);
    statementTextReads(stmt, ctx);
    prepared.push(preparedNames(stmt));
    if (countedWrite(stmt)) {
      counted = true;
      if (stmts.length > 1) countedInString(ctx, kinds[index]);
    }
    uncountedWrites(stmt, explainsAnalyze(stmt), ctx);
    const { result: analysis, quantities: used } = collectQuantities(() => {
      effectReads(stmt);
      return statementAnalysis(stmt);
    }, explainsAnalyze(stmt));
    for (const q of used) quantities.push({ ...q, statement: index + 1 });
    outputs.push(analysis.outputs);
    for (const w of analysis.writes) writes.push({ ...w, statement: index + 1 });
  });
  const lineage = resultLineage(outputs);
  let fingerprint = '';
  try {
    fingerprint = lib.fingerprintSync(sql);
  } catch {
    // comment-only strings have no fingerprint
  }
  const facts: StatementFacts = { findings, normalized: normalizedText ?? sql, fingerprint, kinds, literalDependent };
  if (lineage !== undefined) facts.lineage = lineage;
  if (writes.length > 0) facts.writes = writes;
  if (quantities.length > 0) facts.quantities = quantities;
  if (counted && stmts.length === 1) facts.countedWrite = true;
  if (prepared.some((p) => p !== undefined)) facts.prepared = prepared;
  if (limitChanges.length > 0) facts.limitChanges = limitChanges;
  if (lineage !== undefined && outputs.length > 1) facts.statementLineage = outputs.map((o) => (o === undefined ? undefined : resultLineage([o])));
  return facts;
}

/** Applies a policy to a statement's findings. */
export function decide(facts: StatementFacts, ctx: DecisionContext): Decision {
  let action: RuleAction = 'allow';
  let finding: Finding | undefined;
  const applied: { finding: Finding; action: RuleAction }[] = [];
  // Not a policy action: the limits themselves are the policy (always `block`, named first).
  const limitFindings: Finding[] = [];
  if (ctx.limits !== undefined) {
    for (const c of facts.limitChanges ?? []) {
      const detail = limitRefusal(c, ctx.limits);
      if (detail !== undefined) limitFindings.push({ rule: 'session-limit', detail, statement: c.statement });
    }
  }
  for (const f of [...limitFindings, ...facts.findings]) {
    const a = f.rule === 'unlisted-function' && f.subject !== undefined && ctx.allowFunctions?.has(f.subject) === true ? 'allow' : actionFor(f.rule, ctx);
    if (a === 'allow') continue;
    applied.push({ finding: f, action: a });
    if (ACTION_RANK[a] > ACTION_RANK[action]) {
      action = a;
      finding = f;
    }
  }
  return { action, finding, applied };
}

/** What the policy says about one rule for this session (mode, role). */
export function actionFor(rule: RuleId, ctx: DecisionContext): RuleAction {
  if (rule === 'unparseable' || rule === 'session-limit') return 'block';
  if (rule === 'read-only') return ctx.mode === 'read' ? 'block' : 'allow';
  if (rule === 'masking-bypass' && !ctx.maskingActive) return 'allow';
  return ctx.role?.[rule] ?? ctx.modes[ctx.mode]?.[rule] ?? ctx.rules[rule] ?? DEFAULT_MODE_ACTIONS[ctx.mode]?.[rule] ?? DEFAULT_ACTIONS[rule];
}

/** The text a blocked statement's ErrorResponse carries: names the rule, and why. */
export function describeBlock(d: Decision): string {
  const f = d.finding;
  if (f === undefined) return 'statement blocked by the gateway';
  const where = f.statement > 1 ? ` (statement ${f.statement})` : '';
  return `blocked by guardrail "${f.rule}": ${f.detail}${where}`;
}

/** EXPLAIN with ANALYZE runs its statement: its plan shows how many rows each step produced. */
function explainsAnalyze(stmt: Record<string, unknown> | undefined): boolean {
  const ex = stmt?.ExplainStmt as { options?: unknown[] } | undefined;
  if (ex === undefined) return false;
  return (ex.options ?? []).some((o) => {
    const d = (o as { DefElem?: { defname?: string; arg?: { String?: { sval?: string }; Boolean?: { boolval?: boolean }; Integer?: { ival?: number } } } }).DefElem;
    if (d?.defname !== 'analyze') return false;
    const v = d.arg?.String?.sval?.toLowerCase();
    return !(v === 'false' || v === 'off' || v === '0' || d.arg?.Boolean?.boolval === false || (d.arg?.Integer !== undefined && (d.arg.Integer.ival ?? 0) === 0));
  });
}
