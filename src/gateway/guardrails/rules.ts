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
] as const;
export type RuleId = (typeof RULE_IDS)[number];

export const RULE_ACTIONS = ['block', 'approve', 'warn', 'allow'] as const;
export type RuleAction = (typeof RULE_ACTIONS)[number];

export const RULE_DESCRIPTIONS: Record<RuleId, string> = {
  unparseable: 'the statement does not parse (denied: the gateway fails closed)',
  'read-only': 'writes data or leaves read-only mode under a read grant',
  ddl: 'changes the schema (CREATE, ALTER, DROP, TRUNCATE, ...)',
  'unsafe-write': 'DELETE or UPDATE without a WHERE clause or with an always-true one',
  'modifying-cte': 'a WITH query that inserts, updates or deletes',
  'do-block': 'an anonymous code block (DO)',
  'dangerous-function': 'calls a function on the deny list (server files, backends, dblink, dynamic SQL)',
  'copy-program': 'COPY to or from a server-side program or file',
  'set-role': 'SET ROLE / SET SESSION AUTHORIZATION (or set_config to the same effect)',
  'alter-system': 'ALTER SYSTEM',
  'grant-revoke': 'GRANT, REVOKE or role management',
  'masking-bypass': 'output masking cannot inspect: binary COPY, COPY with unusual delimiter, quote, escape or encoding',
};

/** One reason a statement is not plainly allowed. */
export interface Finding {
  rule: RuleId;
  /** Human detail for the error message ("function pg_read_file"). */
  detail: string;
  /** 1-based index of the statement within a multi-statement string. */
  statement: number;
}

/** Severity order: the strongest action among a statement's findings wins. */
export const ACTION_RANK: Record<RuleAction, number> = { allow: 0, warn: 1, approve: 2, block: 3 };

/** Defaults when the resource policy says nothing about a rule. */
export const DEFAULT_ACTIONS: Record<Exclude<RuleId, 'unparseable' | 'read-only'>, RuleAction> = {
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
};

/** An admin grant exists to change schemas: DDL runs (and is audited) unless the policy says otherwise. */
export const DEFAULT_MODE_ACTIONS: Partial<Record<'read' | 'write' | 'admin', Partial<Record<RuleId, RuleAction>>>> = {
  admin: { ddl: 'warn' },
};

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
