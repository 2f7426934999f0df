import { z } from 'zod';
import { DEFAULT_MAX_WRITE_ROWS, RULE_ACTIONS, RULE_IDS } from './guardrails/index.js';
import { DEFAULT_SESSION_LIMITS } from './guardrails/session-limits.js';
import { DEFAULT_MASKING, DETECTOR_IDS, MASK_MODES, type MaskingPolicy } from './masking/index.js';

/**
 * A resource's policy: guardrail actions (per rule, with overrides per access mode), masking,
 * and the JIT-access knobs. Stored as JSON with the resource; every field has a default, so
 * `{}` is a complete, safe policy.
 */

const action = z.enum(RULE_ACTIONS);
const ruleActions = z.partialRecord(z.enum(RULE_IDS), action);
const mode = z.enum(['read', 'write', 'admin']);
/** PostgreSQL's largest timeout (INT_MAX milliseconds, about 24.8 days). */
const MAX_TIMEOUT_MS = 2_147_483_647;

export const maskingPolicySchema = z.object({
  enabled: z.boolean().default(DEFAULT_MASKING.enabled),
  detectors: z.array(z.enum(DETECTOR_IDS)).default([...DEFAULT_MASKING.detectors]),
  mode: z.enum(MASK_MODES).default(DEFAULT_MASKING.mode),
  columns: z
    // `none` keeps a column out of classification (masking/classify.ts); the detectors still read it.
    // `table` limits a rule to that table's (or view's) column (masking/rule-scope.ts); a `none`
    // rule has none, since classification goes by column name.
    .array(z.object({ name: z.string().min(1).max(128), table: z.string().min(1).max(128).optional(), mode: z.enum([...MASK_MODES, 'none']).default('full') })
      .refine((c) => c.mode !== 'none' || c.table === undefined, { message: "a column rule of mode 'none' names no table (classification goes by column name)" }))
    .max(200)
    .default([]),
  exemptRoles: z.array(z.string().min(1).max(64)).default([]),
});

export const resourcePolicySchema = z.object({
  guardrails: z
    .object({
      rules: ruleActions.default({}),
      /** Overrides per access mode of the session's grant. */
      modes: z.partialRecord(mode, ruleActions).default({}),
      /** Overrides per tightloop role of the user; these win over modes. */
      roles: z.partialRecord(z.enum(['admin', 'member', 'viewer']), ruleActions).default({}),
      /**
       * Functions (by name as the catalog spells it, `schema.name` when qualified) a read grant
       * may call although they are not stable/immutable built-ins; others wait for approval.
       */
      allowFunctions: z.array(z.string().min(1).max(127)).max(500).default([]),
      /**
       * Most existing rows one UPDATE, DELETE, MERGE, upsert or EXECUTE may change before the
       * `row-ceiling` rule refuses it (counted before the commit; relay.ts).
       */
      maxWriteRows: z.number().int().min(1).max(1_000_000_000).default(DEFAULT_MAX_WRITE_ROWS),
    })
    .default({ rules: {}, modes: {}, roles: {}, allowFunctions: [], maxWriteRows: DEFAULT_MAX_WRITE_ROWS }),
  masking: maskingPolicySchema.default({ ...DEFAULT_MASKING, detectors: [...DEFAULT_MASKING.detectors], columns: [], exemptRoles: [] }),
  /**
   * Server-side timeouts set on every upstream session at login, in milliseconds (0: none); a
   * user may lower them, never raise them (guardrails/session-limits.ts).
   */
  limits: z
    .object({
      statementTimeoutMs: z.number().int().min(0).max(MAX_TIMEOUT_MS).default(DEFAULT_SESSION_LIMITS.statementTimeoutMs),
      lockTimeoutMs: z.number().int().min(0).max(MAX_TIMEOUT_MS).default(DEFAULT_SESSION_LIMITS.lockTimeoutMs),
      idleInTransactionSessionTimeoutMs: z.number().int().min(0).max(MAX_TIMEOUT_MS).default(DEFAULT_SESSION_LIMITS.idleInTransactionSessionTimeoutMs),
    })
    .strict()
    .default({ ...DEFAULT_SESSION_LIMITS }),
  /** Allow self-granted emergency access (reason required, alert fired). */
  breakGlass: z.boolean().default(false),
  /** How long an access or statement request waits for review before it expires. */
  reviewWindowS: z.number().int().min(60).max(7 * 86_400).default(3_600),
  /** Longest grant a JIT request may ask for. */
  maxGrantS: z.number().int().min(60).max(30 * 86_400).default(8 * 3_600),
});

export type ResourcePolicy = z.infer<typeof resourcePolicySchema>;

export function parsePolicy(json: string): ResourcePolicy {
  return resourcePolicySchema.parse(JSON.parse(json));
}

export function maskingOf(policy: ResourcePolicy): MaskingPolicy {
  return policy.masking;
}
