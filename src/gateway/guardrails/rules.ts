/**
 * Guardrail rule ids, what each one means, and the default action per access mode. A rule
 * produces findings from the parse tree regardless of who runs the statement; the policy of
 * the resource (and the session's access mode) then turns findings into an action.
 */

export const RULE_IDS = [
  'unparseable',
  'read-only',
  'ddl',
  'unsafe-write',
  'modifying-cte',
  'do-block',
  'dangerous-function',
  'copy-program',
  'set-role',
  'alter-system',
  'grant-revoke',
  'masking-bypass',
  'unlisted-function',
  'row-ceiling',
  'session-limit',
] as const;
export type RuleId = (typeof RULE_IDS)[number];

export const RULE_ACTIONS = ['block', 'approve', 'warn', 'allow'] as const;
export type RuleAction = (typeof RULE_ACTIONS)[number];

export const RULE_DESCRIPTIONS: Record<RuleId, string> = {
  unparseable: 'the statement does not parse, or would make the server parse later statements differently from the gateway (denied: the gateway fails closed)',
  'read-only': 'writes data or leaves read-only mode under a read grant',
  ddl: 'changes the schema (CREATE, ALTER, DROP, TRUNCATE, ...)',
  'unsafe-write': 'DELETE or UPDATE without a WHERE clause or with an always-true one, MERGE with an always-true ON, an upsert fed by its own table',
  'modifying-cte': 'a WITH query that inserts, updates or deletes',
  'do-block': 'an anonymous code block (DO)',
  'dangerous-function': 'calls a function on the deny list (server files, backends, dblink, dynamic SQL)',
  'copy-program': 'COPY to or from a server-side program or file',
  'set-role': 'SET ROLE / SET SESSION AUTHORIZATION (or set_config to the same effect)',
  'alter-system': 'ALTER SYSTEM',
  'grant-revoke': 'GRANT, REVOKE or role management',
  'masking-bypass': 'output masking cannot inspect: binary COPY, COPY with unusual delimiter, quote, escape or encoding',
  'unlisted-function':
    'calls a function or operator not known to be free of side effects (not a stable or immutable built-in, nor in guardrails.allowFunctions)',
  'row-ceiling':
    'changes more existing rows than guardrails.maxWriteRows (UPDATE, DELETE, MERGE, INSERT ... ON CONFLICT DO UPDATE, EXECUTE; counted before the commit), or such a write where its rows cannot be counted',
  'session-limit':
    "raises or clears one of the resource's session limits (limits: statement_timeout, lock_timeout, idle_in_transaction_session_timeout) by SET, set_config, a SET clause or pg_settings (always denied; lowering is allowed)",
};

/** One reason a statement is not plainly allowed. */
export interface Finding {
  rule: RuleId;
  /** Human detail for the error message ("function pg_read_file"). */
  detail: string;
  /** 1-based index of the statement within a multi-statement string. */
  statement: number;
  /** What the finding is about, where a policy can exempt it by name (a function name). */
  subject?: string;
}

/** Severity order: the strongest action among a statement's findings wins. */
export const ACTION_RANK: Record<RuleAction, number> = { allow: 0, warn: 1, approve: 2, block: 3 };

/** Defaults when the resource policy says nothing about a rule. */
export const DEFAULT_ACTIONS: Record<Exclude<RuleId, 'unparseable' | 'read-only' | 'session-limit'>, RuleAction> = {
  ddl: 'block',
  'unsafe-write': 'block',
  'modifying-cte': 'block',
  'do-block': 'block',
  'dangerous-function': 'block',
  'copy-program': 'block',
  'set-role': 'block',
  'alter-system': 'block',
  'grant-revoke': 'block',
  'masking-bypass': 'block',
  'unlisted-function': 'allow',
  'row-ceiling': 'approve',
};

/** Rows a counted write may change without review when the policy names no `guardrails.maxWriteRows`. */
export const DEFAULT_MAX_WRITE_ROWS = 20;

/**
 * An admin grant exists to change schemas: DDL runs (and is audited) unless the policy says
 * otherwise. A read grant runs only functions known to be free of side effects; any other
 * function waits for a reviewer.
 */
export const DEFAULT_MODE_ACTIONS: Partial<Record<'read' | 'write' | 'admin', Partial<Record<RuleId, RuleAction>>>> = {
  admin: { ddl: 'warn' },
  // A read grant writes nothing (read-only rule, read-only transactions): no rows to count.
  read: { 'unlisted-function': 'approve', 'row-ceiling': 'allow' },
};

/**
 * Volatile built-ins a read grant may call without review (besides the policy's
 * `guardrails.allowFunctions`): they return a value and change nothing.
 */
export const DEFAULT_ALLOWED_FUNCTIONS: readonly string[] = [
  'random', 'random_normal', 'clock_timestamp', 'timeofday', 'gen_random_uuid', 'uuidv4', 'uuidv7',
  'pg_relation_size', 'pg_total_relation_size', 'pg_table_size', 'pg_indexes_size', 'pg_database_size',
  'pg_tablespace_size', 'pg_is_in_recovery', 'pg_jit_available', 'currval', 'lastval',
  // The partition tree from the catalog (psql's `\d` calls them, attack round 5 §3).
  'pg_partition_ancestors', 'pg_partition_tree',
];

/**
 * Functions that write (sequences, large objects, advisory locks, notifications, statistics
 * resets): a read grant must never run them, whatever the server's read-only setting says.
 */
export const WRITING_FUNCTIONS = new Set([
  'nextval', 'setval', 'lo_create', 'lo_creat', 'lo_unlink', 'lo_put', 'lowrite', 'lo_truncate',
  'lo_truncate64', 'lo_open', 'lo_from_bytea', 'lo_import', 'lo_export', 'pg_notify',
  'pg_advisory_lock', 'pg_advisory_lock_shared', 'pg_advisory_xact_lock', 'pg_advisory_xact_lock_shared',
  'pg_try_advisory_lock', 'pg_try_advisory_lock_shared', 'pg_try_advisory_xact_lock',
  'pg_try_advisory_xact_lock_shared', 'pg_logical_emit_message', 'pg_stat_reset', 'pg_stat_reset_shared',
  'pg_stat_reset_single_table_counters', 'pg_stat_reset_single_function_counters', 'pg_stat_reset_slru',
  'pg_stat_reset_replication_slot', 'pg_stat_reset_subscription_stats', 'pg_stat_reset_backend_stats',
  'pg_restore_relation_stats', 'pg_restore_attribute_stats', 'pg_clear_relation_stats',
  'pg_clear_attribute_stats', 'txid_current', 'pg_current_xact_id', 'pg_export_snapshot',
]);

/**
 * Functions that reach outside the database session: server files, other backends, remote
 * databases, large-object file I/O, configuration reloads, and functions that run SQL given
 * as text (which would let a statement hide from the parser).
 */
export const DENIED_FUNCTIONS = new Set([
  'pg_terminate_backend',
  'pg_cancel_backend',
  'pg_read_file',
  'pg_read_binary_file',
  'pg_ls_dir',
  'pg_stat_file',
  'pg_file_write',
  'pg_file_rename',
  'pg_file_unlink',
  'pg_logdir_ls',
  'lo_import',
  'lo_export',
  'lo_from_bytea',
  'pg_reload_conf',
  'pg_rotate_logfile',
  'pg_promote',
  'pg_switch_wal',
  'pg_create_restore_point',
  'pg_drop_replication_slot',
  'query_to_xml',
  'query_to_xmlschema',
  'query_to_xml_and_xmlschema',
  'cursor_to_xml',
  'cursor_to_xmlschema',
  // SQL from text, or whole tables by name (past column lineage): ts_stat('SELECT ...') runs its
  // argument, table_to_xml('users', ...) reads every column.
  'ts_stat',
  'ts_rewrite',
  'table_to_xml',
  'table_to_xmlschema',
  'table_to_xml_and_xmlschema',
  'schema_to_xml',
  'schema_to_xmlschema',
  'schema_to_xml_and_xmlschema',
  'database_to_xml',
  'database_to_xmlschema',
  'database_to_xml_and_xmlschema',
]);
export const DENIED_FUNCTION_PREFIXES = ['dblink', 'pg_ls_'];

/** GUCs whose change would switch identity; set via SET or set_config. */
export const IDENTITY_SETTINGS = new Set(['role', 'session_authorization']);
/** GUCs (and SET forms) that would leave the read-only mode a read grant imposes. */
export const READ_ONLY_SETTINGS = new Set([
  'transaction_read_only',
  'default_transaction_read_only',
  'transaction',
  'session characteristics',
]);

/**
 * Catalog views and functions that show other sessions' statement text (all gateway sessions
 * share one upstream login, so the server shows each of them the others' SQL, literals included)
 * or stored values as statistics (most common values, histogram bounds). Reading them is a
 * `masking-bypass` while masking applies to the session (visitors.ts, otherSessions). Matched by
 * name in any schema (pg_stat_statements lives in the schema of its extension). The statement
 * views are refused only when the statement can read their `query` column (by name, `*`, a
 * whole-row reference or renamed columns): `SELECT pid, state FROM pg_stat_activity` runs.
 */
export const STATEMENT_TEXT_RELATIONS = new Set(['pg_stat_activity', 'pg_stat_statements']);
export const STATISTICS_RELATIONS = new Set(['pg_stats', 'pg_stats_ext', 'pg_stats_ext_exprs', 'pg_statistic', 'pg_statistic_ext_data']);
export const OTHER_SESSIONS_FUNCTIONS = new Set([
  'pg_stat_get_activity', 'pg_stat_get_backend_activity', 'pg_stat_statements', 'pg_mcv_list_items',
]);

/**
 * Activity counters (attack round 3 #10): the cumulative statistics views count what statements
 * did — rows read, fetched, returned, blocks hit, function calls — and the session's own
 * counters (`pg_stat_xact_*`) move within its transaction, so a statement whose output is a
 * constant can write a value into them that the next one reads back as a plain number. While
 * masking applies, every view of PostgreSQL 18's pg_catalog named `pg_stat_*` or `pg_statio_*`
 * (listed from the catalog by prefix) and every `pg_stat_get_*` function is `masking-bypass`,
 * except those that show no counters of rows (below). pg_stat_activity and pg_stat_statements
 * keep their own, column-level rule (STATEMENT_TEXT_RELATIONS).
 */
export const COUNTER_PREFIXES = ['pg_stat_', 'pg_statio_'] as const;
export const NOT_COUNTERS = new Set([
  'pg_stat_activity', 'pg_stat_statements', 'pg_stat_ssl', 'pg_stat_gssapi',
  'pg_stat_get_backend_idset', 'pg_stat_get_backend_pid', 'pg_stat_get_backend_userid', 'pg_stat_get_backend_dbid',
]);

/** Is this relation or function name a statistics counter (COUNTER_PREFIXES)? */
export function isCounter(name: string): boolean {
  return !NOT_COUNTERS.has(name) && !STATISTICS_RELATIONS.has(name) && COUNTER_PREFIXES.some((p) => name.startsWith(p));
}
