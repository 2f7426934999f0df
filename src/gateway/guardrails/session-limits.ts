import { lastName, type JsonNode, type Visitor, type WalkContext } from './walk.js';

/**
 * Session resource limits: the server-side timeouts the gateway sets on every upstream session
 * at login (startup `options`, session.ts) from the resource's policy (`limits`), and the rule
 * that a user may lower them but never raise or clear them.
 *
 * Values set at login become the session's reset values in PostgreSQL (a startup option is
 * PGC_S_CLIENT, below PGC_S_OVERRIDE), so `RESET`, `RESET ALL`, `SET ... TO DEFAULT` and
 * `DISCARD ALL` go back to the resource's limits and need no rule. What can raise one:
 *
 * - `SET [SESSION | LOCAL] name = value`, and a `SET` clause anywhere in a tree (`CREATE FUNCTION
 *   ... SET`, `ALTER FUNCTION ... SET`, `ALTER ROLE | DATABASE ... SET`);
 * - `set_config(name, value, is_local)` in any expression;
 * - writes to the `pg_settings` view (its update rule calls set_config);
 * - the client's startup packet (`options`, or the setting as a parameter of its own).
 *
 * Each is judged by value: the analysis records what a statement sets (constants only: anything
 * computed counts as unknown) and `limitRefusal` compares it with the session's limits.
 */

/** The limited settings, by the policy field that holds each one's limit (milliseconds; 0: no limit). */
export const LIMIT_SETTINGS = {
  statement_timeout: 'statementTimeoutMs',
  lock_timeout: 'lockTimeoutMs',
  idle_in_transaction_session_timeout: 'idleInTransactionSessionTimeoutMs',
} as const;
export type LimitSetting = keyof typeof LIMIT_SETTINGS;
export type SessionLimits = { readonly [K in (typeof LIMIT_SETTINGS)[LimitSetting]]: number };

/**
 * Defaults an on-call bastion would use: a stray query on a production table stops after a
 * minute; a statement waiting for a lock gives up after 5 s instead of queueing every other
 * session behind it; a transaction left open holds its locks (and the vacuum horizon) for at
 * most 5 minutes.
 */
export const DEFAULT_SESSION_LIMITS: SessionLimits = {
  statementTimeoutMs: 60_000,
  lockTimeoutMs: 5_000,
  idleInTransactionSessionTimeoutMs: 300_000,
};

/** One thing a statement sets that could change a limit. */
export interface LimitChange {
  /** A limited setting, or '*' when the statement could set any (a computed name, pg_settings). */
  setting: LimitSetting | '*';
  /** The new value in milliseconds (0: no limit); undefined when not a constant the gateway reads. */
  ms: number | undefined;
  /** How it is set, for the error message (`SET statement_timeout`, `set_config('lock_timeout', ...)`). */
  via: string;
}

const isLimit = (name: string): name is LimitSetting => Object.hasOwn(LIMIT_SETTINGS, name);

/** Time units of the timeouts, as PostgreSQL spells them (case matters), in milliseconds. */
const UNITS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, min: 60_000, h: 3_600_000, d: 86_400_000 };
const VALUE = /^\s*((?:[1-9]\d*|0)(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*(us|ms|s|min|h|d)?\s*$/;

/**
 * A timeout's value in milliseconds as the server would read it, or undefined when the gateway
 * cannot be sure (hexadecimal, octal, other units): refused as unknown. The server rounds to
 * whole milliseconds, so anything under 1 ms is 0, no limit (`100us`, `0.4`).
 */
export function timeoutMs(text: string): number | undefined {
  const m = VALUE.exec(text);
  if (m === null) return undefined;
  const number = Number(text.trim().slice(0, text.trim().length - (m[2]?.length ?? 0)).trim());
  if (!Number.isFinite(number)) return undefined;
  const ms = number * UNITS[m[2] ?? 'ms'];
  return ms < 1 ? 0 : Math.round(ms);
}

/** A constant as the text a setting receives; undefined when not a plain constant. */
function constantValue(node: unknown): string | undefined {
  const c = (node as { A_Const?: Record<string, Record<string, unknown> | undefined> } | undefined)?.A_Const;
  if (c === undefined) return undefined;
  if (c.sval !== undefined) return String(c.sval.sval ?? '');
  if (c.ival !== undefined) return String(c.ival.ival ?? 0);
  if (c.fval !== undefined) return String(c.fval.fval ?? '');
  return undefined;
}

/** Relations whose writes change settings. */
const SETTINGS_VIEWS = new Set(['pg_settings']);

function writesSettings(node: JsonNode, ctx: WalkContext, type: string): void {
  const rel = node.relation as { relname?: string } | undefined;
  if (rel?.relname !== undefined && SETTINGS_VIEWS.has(rel.relname.toLowerCase())) {
    ctx.setsLimit?.({ setting: '*', ms: undefined, via: `${type.replace(/Stmt$/, '').toUpperCase()} ${rel.relname}` });
  }
}

/** A SET, judged by its value (see sessionLimitChanges). */
function setStatement(node: JsonNode, ctx: WalkContext): void {
  const name = String(node.name ?? '').toLowerCase();
  if (!isLimit(name)) return;
  // RESET, DEFAULT and FROM CURRENT set no new value: back to the login's (or the current) one.
  if (node.kind !== 'VAR_SET_VALUE') return;
  ctx.usedConstants();
  const args = Array.isArray(node.args) ? node.args : [];
  const text = args.length === 1 ? constantValue(args[0]) : undefined;
  ctx.setsLimit?.({ setting: name, ms: text === undefined ? undefined : timeoutMs(text), via: `SET ${name}` });
}

/** Statements whose `setstmt` is a bare VariableSetStmt (no node wrapper, so the walk does not name it). */
function nestedSet(node: JsonNode, ctx: WalkContext): void {
  const set = node.setstmt;
  if (set !== null && typeof set === 'object') setStatement(set as JsonNode, ctx);
}

export const sessionLimitChanges: Visitor = {
  VariableSetStmt: setStatement,
  AlterRoleSetStmt: nestedSet,
  AlterDatabaseSetStmt: nestedSet,
  AlterSystemStmt: nestedSet,
  FuncCall: (node, ctx) => {
    if (lastName(node.funcname) !== 'set_config') return;
    ctx.usedConstants();
    const args = Array.isArray(node.args) ? node.args : [];
    const name = constantValue(args[0])?.toLowerCase();
    if (name === undefined) {
      ctx.setsLimit?.({ setting: '*', ms: undefined, via: 'set_config with a computed setting name' });
      return;
    }
    if (!isLimit(name)) return;
    const text = constantValue(args[1]);
    ctx.setsLimit?.({ setting: name, ms: text === undefined ? undefined : timeoutMs(text), via: `set_config('${name}', ...)` });
  },
  UpdateStmt: writesSettings,
  InsertStmt: writesSettings,
  DeleteStmt: writesSettings,
  MergeStmt: writesSettings,
};

function limitOf(setting: LimitSetting, limits: SessionLimits): number {
  return limits[LIMIT_SETTINGS[setting]];
}

function describeMs(ms: number): string {
  return ms === 0 ? '0 (no limit)' : `${ms} ms`;
}

/**
 * Why a change is refused under these limits (it would raise or clear one), or undefined when it
 * keeps every limit (lowering is fine; a limit of 0 is off).
 */
export function limitRefusal(change: LimitChange, limits: SessionLimits): string | undefined {
  if (change.setting === '*') {
    const on = (Object.keys(LIMIT_SETTINGS) as LimitSetting[]).filter((s) => limitOf(s, limits) > 0);
    if (on.length === 0) return undefined;
    return `${change.via} could lift this resource's session limits (${on.join(', ')}); set them with SET and a constant`;
  }
  const limit = limitOf(change.setting, limits);
  if (limit === 0) return undefined;
  const field = `limits.${LIMIT_SETTINGS[change.setting]}`;
  if (change.ms === undefined) return `${change.via} to a value the gateway cannot read (a computed or unusual value): this resource limits ${change.setting} to ${limit} ms (${field}); set a constant such as '30s'`;
  if (change.ms === 0 || change.ms > limit) return `${change.via} to ${describeMs(change.ms)} is over this resource's limit of ${limit} ms (${field}); lower values are allowed`;
  return undefined;
}

/**
 * The limits the client asked for in its startup packet: `options` (`-c name=value`,
 * `-cname=value`, `--name=value`, as the server splits them) and parameters named after a limit
 * (node-postgres sends `statement_timeout` so). Returns the lowered values to apply, or why the
 * login is refused. Nothing else of `options` reaches the server.
 */
export function startupLimits(params: ReadonlyMap<string, string>, limits: SessionLimits): { values: Partial<Record<LimitSetting, number>>; refusal?: string } {
  const asked: { setting: string; text: string; via: string }[] = [];
  for (const [k, v] of params) if (isLimit(k.toLowerCase())) asked.push({ setting: k.toLowerCase(), text: v, via: `startup parameter ${k.toLowerCase()}` });
  const options = params.get('options');
  if (options !== undefined) {
    const words = splitOptions(options);
    for (let i = 0; i < words.length; i++) {
      const w = words[i];
      let pair: string | undefined;
      if (w === '-c') pair = words[++i];
      else if (w.startsWith('-c')) pair = w.slice(2);
      else if (w.startsWith('--')) pair = w.slice(2);
      const eq = pair?.indexOf('=') ?? -1;
      if (pair === undefined || eq < 0) continue;
      const setting = pair.slice(0, eq).toLowerCase().replace(/-/g, '_');
      if (isLimit(setting)) asked.push({ setting, text: pair.slice(eq + 1), via: `startup option ${setting}` });
    }
  }
  const values: Partial<Record<LimitSetting, number>> = {};
  for (const a of asked) {
    const setting = a.setting as LimitSetting;
    const change: LimitChange = { setting, ms: timeoutMs(a.text), via: a.via };
    const refusal = limitRefusal(change, limits);
    if (refusal !== undefined) return { values, refusal };
    // A limit that is off takes the client's value as it is (when the gateway can read it).
    if (change.ms !== undefined && (change.ms > 0 || limitOf(setting, limits) === 0)) values[setting] = Math.min(change.ms, values[setting] ?? Infinity);
  }
  return { values };
}

/** PostgreSQL's pg_split_opts: words split at whitespace, a backslash keeps the next character. */
function splitOptions(s: string): string[] {
  const out: string[] = [];
  let cur: string | undefined;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v') {
      if (cur !== undefined) out.push(cur);
      cur = undefined;
    } else if (c === '\\' && i + 1 < s.length) {
      cur = (cur ?? '') + s[++i];
    } else cur = (cur ?? '') + c;
  }
  if (cur !== undefined) out.push(cur);
  return out;
}

/** The startup `-c` options that set the session's limits: the resource's, or the client's lower ones. */
export function limitOptions(limits: SessionLimits, lowered: Partial<Record<LimitSetting, number>>): string[] {
  const out: string[] = [];
  for (const setting of Object.keys(LIMIT_SETTINGS) as LimitSetting[]) {
    const limit = limitOf(setting, limits);
    const asked = lowered[setting];
    const value = asked !== undefined && (limit === 0 || asked < limit) ? asked : limit;
    if (value > 0) out.push(`-c ${setting}=${value}`);
  }
  return out;
}
