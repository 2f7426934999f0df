import { CATALOG_SAFE_FUNCTIONS, CATALOG_SAFE_OPERATORS } from './catalog-functions.js';
import { attributeCall } from './attribute-calls.js';
import { CATALOG_RESULT_COLUMNS, FIELD_CALLABLE_UNLISTED } from './field-calls.js';
import { LEXING_SETTINGS, lexingSettingRefusal } from './lexing.js';
import {
  DENIED_FUNCTION_PREFIXES,
  DENIED_FUNCTIONS,
  IDENTITY_SETTINGS,
  OTHER_SESSIONS_FUNCTIONS,
  STATEMENT_TEXT_RELATIONS,
  STATISTICS_RELATIONS,
  READ_ONLY_SETTINGS,
  WRITING_FUNCTIONS,
  isCounter,
} from './rules.js';
import { ANY_STATEMENT, contains, lastName, nodeType, sameTree, type JsonNode, type Visitor, type WalkContext } from './walk.js';

/**
 * The guardrail rules, one visitor each. Visitors only report findings; whether a finding
 * blocks, waits for approval or merely warns is the policy's business (see engine.ts).
 *
 * A visitor that inspects a constant's value calls `ctx.usedConstants()`: decisions are cached
 * by statement shape with constants stripped, which is only sound for decisions that do not
 * depend on them.
 */

const DML_WRITES = new Set(['InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt']);

/** Statements that neither write nor change the schema (their nested parts are still walked). */
const READ_STATEMENTS = new Set([
  'SelectStmt', 'ExplainStmt', 'VariableShowStmt', 'TransactionStmt', 'DeclareCursorStmt',
  'FetchStmt', 'ClosePortalStmt', 'PrepareStmt', 'ExecuteStmt', 'DeallocateStmt', 'ListenStmt',
  'UnlistenStmt', 'DiscardStmt', 'CopyStmt', 'VariableSetStmt', 'ConstraintsSetStmt',
]);

/** Statements that write or lock without changing the schema. */
const MAINTENANCE = new Set([
  'VacuumStmt', 'ClusterStmt', 'ReindexStmt', 'CheckPointStmt', 'LockStmt', 'RefreshMatViewStmt',
  'CallStmt', 'LoadStmt',
]);

const PRIVILEGE = new Set([
  'GrantStmt', 'GrantRoleStmt', 'AlterDefaultPrivilegesStmt', 'CreateRoleStmt', 'AlterRoleStmt',
  'AlterRoleSetStmt', 'DropRoleStmt', 'ReassignOwnedStmt', 'DropOwnedStmt',
]);

function verb(type: string): string {
  return type.replace(/Stmt$/, '').replace(/([a-z])([A-Z])/g, '$1 $2').toUpperCase();
}

/** Value of a boolean-ish constant (`on`, `true`, 1, TRUE); undefined when not a constant. */
function constantTruth(node: unknown, ctx: WalkContext): boolean | undefined {
  const c = (node as { A_Const?: Record<string, Record<string, unknown> | undefined> } | undefined)?.A_Const;
  if (c === undefined) return undefined;
  ctx.usedConstants();
  if (c.boolval !== undefined) return c.boolval.boolval === true;
  if (c.ival !== undefined) return (c.ival.ival ?? 0) !== 0;
  if (c.sval !== undefined) return ['on', 'true', 'yes', '1'].includes(String(c.sval.sval ?? '').toLowerCase());
  return undefined;
}

/** A constant's value as text (`off`, 1, TRUE → 'on'); undefined when not a plain constant. */
function constantText(node: unknown, ctx: WalkContext): string | undefined {
  const c = (node as { A_Const?: Record<string, Record<string, unknown> | undefined> } | undefined)?.A_Const;
  if (c === undefined) return undefined;
  ctx.usedConstants();
  if (c.sval !== undefined) return String(c.sval.sval ?? '');
  if (c.ival !== undefined) return String(c.ival.ival ?? 0);
  if (c.boolval !== undefined) return c.boolval.boolval === true ? 'on' : 'off';
  return undefined;
}

/** Does a list of DefElem options switch `transaction_read_only` off? */
function leavesReadOnly(options: unknown, ctx: WalkContext): boolean {
  if (!Array.isArray(options)) return false;
  for (const o of options as { DefElem?: { defname?: string; arg?: unknown } }[]) {
    if (o.DefElem?.defname !== 'transaction_read_only') continue;
    if (constantTruth(o.DefElem.arg, ctx) !== true) return true;
  }
  return false;
}

/** Classifies every statement node: read, write, maintenance, privileges, DDL. */
export const statementKinds: Visitor = {
  [ANY_STATEMENT]: (node, ctx, type) => {
    if (DML_WRITES.has(type)) return ctx.report('read-only', `${verb(type)} writes data`);
    if (type === 'SelectStmt') {
      if (node.intoClause !== undefined) {
        ctx.report('ddl', 'SELECT INTO creates a table');
        ctx.report('read-only', 'SELECT INTO writes data');
      }
      if (node.lockingClause !== undefined) ctx.report('read-only', 'SELECT ... FOR UPDATE/SHARE locks rows');
      return;
    }
    if (READ_STATEMENTS.has(type)) return;
    // PostgreSQL allows NOTIFY in a read-only transaction, but it acts on other sessions (as
    // pg_notify does, rules.ts): a side effect a read grant must not have. LISTEN only receives.
    if (type === 'NotifyStmt') return ctx.report('read-only', 'NOTIFY signals other sessions');
    if (type === 'DoStmt') {
      ctx.report('do-block', 'DO block');
      return ctx.report('read-only', 'DO block may write');
    }
    if (type === 'AlterSystemStmt') {
      ctx.report('alter-system', 'ALTER SYSTEM');
      return ctx.report('read-only', 'ALTER SYSTEM');
    }
    if (PRIVILEGE.has(type)) {
      ctx.report('grant-revoke', verb(type));
      return ctx.report('read-only', `${verb(type)} changes privileges`);
    }
    if (MAINTENANCE.has(type)) {
      if (type === 'LoadStmt') ctx.report('dangerous-function', 'LOAD (loads a shared library)');
      return ctx.report('read-only', `${verb(type)} writes or locks`);
    }
    // Anything else (CREATE, ALTER, DROP, TRUNCATE, COMMENT, ... and node types this build does
    // not know yet) is treated as a schema change: fail closed.
    ctx.report('ddl', verb(type));
    ctx.report('read-only', `${verb(type)} changes the schema`);
  },
  CopyStmt: (node, ctx) => {
    if (node.is_program === true) ctx.report('copy-program', 'COPY ... PROGRAM');
    else if (typeof node.filename === 'string') ctx.report('copy-program', 'COPY to or from a server file');
    if (node.is_from === true) {
      ctx.report('read-only', 'COPY FROM writes data');
      return;
    }
    const options = Array.isArray(node.options) ? (node.options as { DefElem?: { defname?: string; arg?: { String?: { sval?: string } } } }[]) : [];
    const format = options.find((o) => o.DefElem?.defname === 'format')?.DefElem?.arg?.String?.sval;
    if (format?.toLowerCase() === 'binary') ctx.report('masking-bypass', 'binary COPY output');
  },
  VariableSetStmt: (node, ctx) => {
    const name = String(node.name ?? '').toLowerCase();
    if (node.kind === 'VAR_RESET_ALL') return ctx.report('read-only', 'RESET ALL');
    // DEFAULT / RESET / FROM CURRENT set no new value; the server's report is checked (lexing.ts).
    if (LEXING_SETTINGS.has(name) && node.kind === 'VAR_SET_VALUE') {
      const args = Array.isArray(node.args) ? node.args : [];
      const refusal = lexingSettingRefusal(name, args.length === 1 ? constantText(args[0], ctx) : undefined);
      if (refusal !== undefined) ctx.report('unparseable', refusal);
    }
    if (IDENTITY_SETTINGS.has(name) && node.kind !== 'VAR_RESET') {
      ctx.report('set-role', name === 'role' ? 'SET ROLE' : 'SET SESSION AUTHORIZATION');
    }
    if (name === 'search_path' && pgCatalogNotFirst(node.args, ctx)) {
      ctx.report('unlisted-function', 'search_path puts a schema before pg_catalog (built-in names could resolve elsewhere)');
    }
    if (!READ_ONLY_SETTINGS.has(name)) return;
    // RESET goes back to the server's default, which is read-write unless the login says otherwise.
    if (node.kind === 'VAR_RESET') return ctx.report('read-only', `RESET ${name}`);
    if (name === 'transaction' || name === 'session characteristics') {
      if (leavesReadOnly(node.args, ctx)) ctx.report('read-only', 'SET ... READ WRITE');
      return;
    }
    const args = Array.isArray(node.args) ? node.args : [];
    if (constantTruth(args[0], ctx) !== true) ctx.report('read-only', `SET ${name}`);
  },
  DiscardStmt: (node, ctx) => {
    if (node.target === 'DISCARD_ALL') ctx.report('read-only', 'DISCARD ALL resets the session');
  },
  TransactionStmt: (node, ctx) => {
    if (leavesReadOnly(node.options, ctx)) ctx.report('read-only', 'BEGIN/START TRANSACTION READ WRITE');
  },
};

/** Expressions that hold for every row (or say nothing about the row at all). */
function alwaysTrue(expr: unknown): boolean {
  if (!contains(expr, ROW_REFERENCES)) return true;
  const type = nodeType(expr);
  const inner = type === undefined ? undefined : (expr as Record<string, JsonNode>)[type];
  if (type === 'BoolExpr' && inner !== undefined) {
    const args = Array.isArray(inner.args) ? inner.args : [];
    if (inner.boolop === 'OR_EXPR') return args.some(alwaysTrue);
    if (inner.boolop === 'AND_EXPR') return args.length > 0 && args.every(alwaysTrue);
    return false;
  }
  if (type === 'A_Expr' && inner !== undefined && inner.kind === 'AEXPR_OP') {
    const op = lastName(inner.name);
    if ((op === '=' || op === '>=' || op === '<=') && sameTree(inner.lexpr, inner.rexpr)) return true;
  }
  return false;
}
const ROW_REFERENCES = new Set(['ColumnRef', 'CurrentOfExpr']);

/**
 * Shapes that are whole-table writes on their face. Anything else that changes existing rows is
 * counted at run time instead (row-ceiling.ts): a predicate's reach is not decidable from its shape.
 */
/** Advisory lock functions that take a lock (unlocking shows nothing). */
const ADVISORY_LOCK = /^pg_(try_)?advisory_(xact_)?lock(_shared)?$/;
/** What makes an argument a value from rows rather than from the client. */
const ROW_SOURCES = new Set(['ColumnRef', 'SubLink']);

export const unsafeWrites: Visitor = {
  DeleteStmt: (node, ctx) => checkWhere('DELETE', node, ctx),
  UpdateStmt: (node, ctx) => checkWhere('UPDATE', node, ctx),
  MergeStmt: (node, ctx) => {
    const clauses = Array.isArray(node.mergeWhenClauses) ? node.mergeWhenClauses : [];
    const changesMatched = clauses.some((c) => {
      const w = (c as { MergeWhenClause?: { matchKind?: string; commandType?: string } }).MergeWhenClause;
      return w?.matchKind === 'MERGE_WHEN_MATCHED' && (w.commandType === 'CMD_DELETE' || w.commandType === 'CMD_UPDATE');
    });
    if (changesMatched && (node.joinCondition === undefined || alwaysTrue(node.joinCondition))) ctx.report('unsafe-write', 'MERGE ... WHEN MATCHED with an always-true ON');
  },
  InsertStmt: (node, ctx) => {
    if ((node.onConflictClause as { action?: string } | undefined)?.action !== 'ONCONFLICT_UPDATE') return;
    const target = node.relation as { relname?: string; schemaname?: string } | undefined;
    if (target?.relname !== undefined && readsRelation(node.selectStmt, target.relname, target.schemaname)) {
      ctx.report('unsafe-write', 'INSERT ... ON CONFLICT DO UPDATE fed by a SELECT of its own table');
    }
  },
};

/** Does the subtree read the relation (by name; a schema-qualified name must match its schema)? */
function readsRelation(tree: unknown, relname: string, schema: string | undefined): boolean {
  const stack: unknown[] = [tree];
  while (stack.length > 0) {
    const v = stack.pop();
    if (v === null || typeof v !== 'object') continue;
    if (Array.isArray(v)) {
      stack.push(...(v as unknown[]));
      continue;
    }
    const rv = (v as { RangeVar?: { relname?: string; schemaname?: string } }).RangeVar;
    if (rv !== undefined && rv.relname === relname && (schema === undefined || rv.schemaname === undefined || rv.schemaname === schema)) return true;
    stack.push(...Object.values(v as JsonNode));
  }
  return false;
}

function checkWhere(what: string, node: JsonNode, ctx: WalkContext): void {
  if (node.whereClause === undefined) ctx.report('unsafe-write', `${what} without WHERE`);
  else if (alwaysTrue(node.whereClause)) ctx.report('unsafe-write', `${what} with an always-true WHERE`);
}

export const modifyingCtes: Visitor = {
  CommonTableExpr: (node, ctx) => {
    const type = nodeType(node.ctequery);
    if (type !== undefined && DML_WRITES.has(type)) ctx.report('modifying-cte', `WITH ... ${verb(type)}`);
  },
};

export const dangerousFunctions: Visitor = {
  FuncCall: (node, ctx) => {
    const name = lastName(node.funcname);
    if (DENIED_FUNCTIONS.has(name) || DENIED_FUNCTION_PREFIXES.some((p) => name.startsWith(p))) {
      ctx.report('dangerous-function', `function ${name}`);
      return;
    }
    if (name === 'pg_notify') {
      // A payload computed from rows reaches listeners (this session too) past every column plan.
      const args = Array.isArray(node.args) ? node.args : [];
      if (args.slice(0, 2).some((a) => constantText(a, ctx) === undefined)) ctx.report('masking-bypass', 'pg_notify with a computed channel or payload: listeners get it unmasked');
      return;
    }
    if (ADVISORY_LOCK.test(name)) {
      // Held locks are listed to every session in pg_locks (classid, objid): a key computed from
      // rows is a value other sessions read back unmasked (attack rounds 3 and 4, #4/#3).
      const args = Array.isArray(node.args) ? node.args : [];
      if (args.some((a) => contains(a, ROW_SOURCES))) ctx.report('masking-bypass', `${name} with a key computed from rows: other sessions read lock keys in pg_locks unmasked`);
      return;
    }
    if (name !== 'set_config') return;
    // set_config(name, value, is_local) is SET in function form.
    const args = Array.isArray(node.args) ? node.args : [];
    // A computed value is read back past every column plan: SHOW, current_setting(),
    // ParameterStatus, other sessions' pg_stat_activity.
    if (args.length > 1 && constantText(args[1], ctx) === undefined) ctx.report('masking-bypass', 'set_config with a computed value: settings are read back unmasked');
    const setting = (args[0] as { A_Const?: { sval?: { sval?: string } } } | undefined)?.A_Const?.sval?.sval;
    if (setting === undefined) {
      ctx.report('dangerous-function', 'set_config with a computed setting name');
      return;
    }
    ctx.usedConstants();
    const s = setting.toLowerCase();
    if (LEXING_SETTINGS.has(s)) {
      const refusal = lexingSettingRefusal(s, constantText(args[1], ctx));
      if (refusal !== undefined) ctx.report('unparseable', refusal);
    }
    if (s === 'search_path') {
      // The same rule as SET search_path: a schema before pg_catalog could shadow built-ins.
      const value = constantText(args[1], ctx);
      const names = value === undefined ? undefined : value.split(',').map((n) => n.trim().replace(/^"(.*)"$/, '$1').toLowerCase());
      if (names === undefined || names.indexOf('pg_catalog') > 0) ctx.report('unlisted-function', "set_config('search_path', ...) may put a schema before pg_catalog");
    }
    if (IDENTITY_SETTINGS.has(s)) ctx.report('set-role', `set_config('${s}', ...)`);
    if (READ_ONLY_SETTINGS.has(s) && constantTruth(args[1], ctx) !== true) ctx.report('read-only', `set_config('${s}', ...)`);
  },
};

/** `SET search_path = a, pg_catalog`: pg_catalog is searched first only when not listed later. */
function pgCatalogNotFirst(args: unknown, ctx: WalkContext): boolean {
  if (!Array.isArray(args)) return false;
  ctx.usedConstants();
  const names = args.map((a) => String((a as { A_Const?: { sval?: { sval?: string } } }).A_Const?.sval?.sval ?? '?').trim().toLowerCase());
  const at = names.indexOf('pg_catalog');
  return at > 0;
}

/** The name list of a FuncCall or operator as written (the parser already folded unquoted case). */
function nameList(list: unknown): string[] {
  if (!Array.isArray(list)) return [];
  return list.map((n) => (n as { String?: { sval?: string } }).String?.sval ?? '');
}

/**
 * Functions and operators: one that writes is a read-only finding; one that is not a stable or
 * immutable built-in (CATALOG_SAFE_*, or named in the policy's allowFunctions) is
 * `unlisted-function`, which a read grant sends for approval. Schema-qualified names outside
 * pg_catalog never count as built-ins; case is compared exactly, since `"Lower"` is not `lower`.
 */
export const functionAllowList: Visitor = {
  FuncCall: (node, ctx) => checkFunction(nameList(node.funcname), ctx),
  // `c.to_jsonb` is to_jsonb(c) (attribute-calls.ts): the same rules as for the call.
  ColumnRef: (node, ctx) => {
    const fn = attributeCall(nameList(node.fields));
    if (fn !== undefined) checkFunction([fn], ctx);
  },
  A_Expr: (node, ctx) => {
    const names = nameList(node.name);
    // BETWEEN's "name" is the keyword; it expands to the comparison operators.
    if (names.length === 0 || String(node.kind).includes('BETWEEN')) return;
    const op = names[names.length - 1];
    const schema = names.length > 1 ? names[names.length - 2] : 'pg_catalog';
    if (schema !== 'pg_catalog' || !CATALOG_SAFE_OPERATORS.has(op)) ctx.report('unlisted-function', `operator ${names.join('.')}`, names.join('.'));
  },
};

function checkFunction(names: readonly string[], ctx: WalkContext): void {
  const name = names[names.length - 1] ?? '';
  const schema = names.length > 1 ? names[names.length - 2] : 'pg_catalog';
  const lower = name.toLowerCase();
  if (WRITING_FUNCTIONS.has(lower)) ctx.report('read-only', `function ${lower} writes`);
  if (schema !== 'pg_catalog' || !CATALOG_SAFE_FUNCTIONS.has(name)) {
    // pg_catalog.x is x: an allowFunctions entry names either.
    ctx.report('unlisted-function', `function ${names.join('.')}`, schema === 'pg_catalog' ? name : names.join('.'));
  }
}

function statisticsRelation(node: unknown, ctx: WalkContext): void {
  const rel = String((node as { relname?: string } | undefined)?.relname ?? '');
  if (STATISTICS_RELATIONS.has(rel)) ctx.report('masking-bypass', `${rel} shows stored values as statistics`);
  else if (isCounter(rel)) ctx.report('masking-bypass', `${rel} counts what statements did (a value can be written into a counter and read back)`);
}

/** Other sessions' SQL and column statistics (rules.ts): past masking, whatever the grant. */
export const otherSessions: Visitor = {
  RangeVar: (node, ctx) => statisticsRelation(node, ctx),
  // COPY's table is a plain field, not a wrapped node.
  CopyStmt: (node, ctx) => statisticsRelation(node.relation, ctx),
  FuncCall: (node, ctx) => {
    const names = nameList(node.funcname);
    const name = names[names.length - 1] ?? '';
    if (OTHER_SESSIONS_FUNCTIONS.has(name)) ctx.report('masking-bypass', `${name}() shows other sessions' statements or stored values`);
    else if (isCounter(name)) ctx.report('masking-bypass', `${name}() counts what statements did (a value can be written into a counter and read back)`);
  },
};

/**
 * The statement views (pg_stat_activity, pg_stat_statements) for one top-level statement: a
 * masking bypass when anything in it can read their `query` column — the name itself, `*`, a
 * whole row (`a`, `a.to_jsonb`), columns renamed by an alias list, or COPY of the table.
 */
export function statementTextReads(stmt: unknown, ctx: WalkContext): void {
  const names = new Set<string>();
  let rel: string | undefined;
  let renamed = false;
  let copied = false;
  const refs: string[][] = [];
  let star = false;
  const visit = (v: unknown, depth: number): void => {
    if (depth > 10_000 || v === null || typeof v !== 'object') return;
    if (Array.isArray(v)) {
      for (const x of v) visit(x, depth + 1);
      return;
    }
    for (const [key, child] of Object.entries(v as JsonNode)) {
      const node = child as JsonNode;
      if ((key === 'RangeVar' || key === 'relation') && node !== null && typeof node === 'object' && typeof node.relname === 'string' && STATEMENT_TEXT_RELATIONS.has(node.relname)) {
        rel = node.relname;
        names.add(node.relname);
        const alias = node.alias as { aliasname?: string; colnames?: unknown[] } | undefined;
        if (alias?.aliasname !== undefined) names.add(alias.aliasname);
        if (Array.isArray(alias?.colnames) && alias.colnames.length > 0) renamed = true;
      }
      if (key === 'A_Star') star = true;
      if (key === 'ColumnRef') refs.push(nameList(node.fields));
      if (key === 'CopyStmt' && STATEMENT_TEXT_RELATIONS.has(String((node.relation as JsonNode | undefined)?.relname))) copied = true;
      visit(child, depth + 1);
    }
  };
  visit(stmt, 0);
  if (rel === undefined) return;
  const reads = star || renamed || copied || refs.some((r) => SESSION_TEXT_COLUMNS.has(r[r.length - 1]) || (r.length === 1 && names.has(r[0])) || (attributeCall(r) !== undefined && names.has(r[r.length - 2])));
  if (reads) ctx.report('masking-bypass', `${rel}.query and .application_name show other sessions' statements and settings`);
}

/** Text other sessions wrote: their statements, and `application_name` (`set_config` can put any value there). */
const SESSION_TEXT_COLUMNS = new Set(['query', 'application_name']);

/** A field name that a function rule would judge as a call (field-calls.ts). */
function callableField(name: string): boolean {
  return FIELD_CALLABLE_UNLISTED.has(name) || DENIED_FUNCTIONS.has(name) || DENIED_FUNCTION_PREFIXES.some((p) => name.startsWith(p))
    || WRITING_FUNCTIONS.has(name) || OTHER_SESSIONS_FUNCTIONS.has(name) || isCounter(name) || name === 'pg_notify' || name === 'set_config';
}

/** Runs every function rule on `name(arg)`, as if it had been written as a call. */
function judgeAsCall(name: string, arg: unknown, ctx: WalkContext): void {
  const call: JsonNode = { funcname: [{ String: { sval: name } }], args: [arg] };
  for (const v of [dangerousFunctions, functionAllowList, otherSessions]) v.FuncCall?.(call, ctx, 'FuncCall');
}

/** `q.f` and `(expr).f` may be the call `f(q)` / `f(expr)` (field-calls.ts). */
export const fieldCalls: Visitor = {
  ColumnRef: (node, ctx) => {
    const fields = Array.isArray(node.fields) ? node.fields : [];
    const names = nameList(fields);
    const last = names[names.length - 1];
    if (names.length >= 2 && last !== undefined && last !== '' && callableField(last)) {
      judgeAsCall(last, { ColumnRef: { fields: fields.slice(0, -1) } }, ctx);
    }
  },
  A_Indirection: (node, ctx) => {
    const steps = Array.isArray(node.indirection) ? node.indirection : [];
    const plainColumn = nodeType(node.arg) === 'ColumnRef';
    steps.forEach((step, i) => {
      const name = (step as { String?: { sval?: string } }).String?.sval;
      if (name === undefined) return;
      const base = i === 0 ? node.arg : { A_Indirection: { arg: node.arg, indirection: steps.slice(0, i) } };
      if (callableField(name)) judgeAsCall(name, base, ctx);
      else if ((!plainColumn || i > 0) && !CATALOG_SAFE_FUNCTIONS.has(name)) {
        // A value whose composite type the gateway cannot name: `f` may be any function.
        ctx.report('unlisted-function', `field selection (...).${name} may call ${name}(...)`, name);
      }
    });
  },
};

/**
 * `s.f` where `s` is a function in FROM (`unnest(array[...]) s`): unless `f` is one of its
 * result columns, PostgreSQL reads it as the call `f(s)` — also for a user-defined or extension
 * function, which `fieldCalls` cannot know by name. Its result columns, as far as the statement
 * shows them: the alias itself (a scalar function's one column), the alias's column names, a
 * column definition list, `ordinality`, and the result columns of pg_catalog functions
 * (CATALOG_RESULT_COLUMNS). Any other name is judged as that call by every function rule; a
 * stable or immutable built-in is harmless either way. Aliases are matched within the whole
 * SELECT (a subquery's own FROM item of the same name can only make this stricter).
 */
export const fromFunctionCalls: Visitor = {
  SelectStmt: (node, ctx) => {
    const items = new Map<string, Set<string>>();
    const stack: unknown[] = Array.isArray(node.fromClause) ? [...(node.fromClause as unknown[])] : [];
    while (stack.length > 0) {
      const item = stack.pop() as { JoinExpr?: { larg?: unknown; rarg?: unknown }; RangeFunction?: JsonNode } | undefined;
      if (item?.JoinExpr !== undefined) stack.push(item.JoinExpr.larg, item.JoinExpr.rarg);
      const rf = item?.RangeFunction;
      if (rf === undefined) continue;
      const fields = new Set<string>(['ordinality']);
      const alias = rf.alias as { aliasname?: string; colnames?: unknown[] } | undefined;
      const calls = (Array.isArray(rf.functions) ? rf.functions : []).map((f) => (f as { List?: { items?: unknown[] } }).List?.items ?? []);
      for (const c of alias?.colnames ?? []) fields.add((c as { String?: { sval?: string } }).String?.sval ?? '');
      const coldefs: unknown[] = Array.isArray(rf.coldeflist) ? (rf.coldeflist as unknown[]) : [];
      const callDefs: unknown[] = calls.flatMap((c): unknown[] => (Array.isArray(c[1]) ? (c[1] as unknown[]) : []));
      for (const d of [...coldefs, ...callDefs]) {
        fields.add((d as { ColumnDef?: { colname?: string } }).ColumnDef?.colname ?? '');
      }
      const names = calls.map((c) => nameList((c[0] as { FuncCall?: { funcname?: unknown } } | undefined)?.FuncCall?.funcname));
      const name = alias?.aliasname ?? (names.length === 1 ? names[0][names[0].length - 1] : undefined);
      if (name === undefined) continue;
      fields.add(name);
      for (const n of names) fields.add(n[n.length - 1] ?? '');
      items.set(name, fields);
    }
    if (items.size === 0) return;
    const refs: unknown[] = [node.targetList, node.whereClause, node.havingClause, node.groupClause, node.sortClause, node.windowClause, node.distinctClause, node.fromClause];
    while (refs.length > 0) {
      const v = refs.pop();
      if (v === null || typeof v !== 'object') continue;
      if (Array.isArray(v)) {
        refs.push(...(v as unknown[]));
        continue;
      }
      const ref = (v as { ColumnRef?: { fields?: unknown } }).ColumnRef;
      if (ref !== undefined) {
        const f = nameList(ref.fields);
        const fields = f.length === 2 ? items.get(f[0]) : undefined;
        if (fields !== undefined && !fields.has(f[1]) && !CATALOG_RESULT_COLUMNS.has(f[1]) && !CATALOG_SAFE_FUNCTIONS.has(f[1]) && !callableField(f[1])) {
          judgeAsCall(f[1], { ColumnRef: { fields: [{ String: { sval: f[0] } }] } }, ctx);
        }
        continue;
      }
      refs.push(...Object.values(v as JsonNode));
    }
  },
};

export const ALL_VISITORS: readonly Visitor[] = [statementKinds, unsafeWrites, modifyingCtes, dangerousFunctions, functionAllowList, otherSessions, fieldCalls, fromFunctionCalls];
