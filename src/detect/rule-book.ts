/**
 * RuleBook: where rules come from. File rules (`rules.yaml`, id `file:<name>`, read-only over the
 * API — the file is their source of truth) and API rules (state store, ULID ids). Names are
 * unique across both, because alerts and notifications are named after them.
 */
import type { Kysely } from 'kysely';
import { ulid } from 'ulid';
import { badRequest, conflict, notFound } from '../core/app-error.js';
import { loadRulesFile } from './rules-file.js';
import { RuleSet } from './rule-set.js';
import { ruleSpecSchema, rulesFileSchema, type Rule, type RulesFile, type RuleSpec } from './rules.js';
import { iso, type DetectDatabase } from './storage.js';

/** A rule as the API receives it, validated (the route calls this: 400 naming each bad field). */
export function parseRuleSpec(input: unknown): RuleSpec {
  const parsed = ruleSpecSchema.safeParse(input);
  if (!parsed.success) {
    throw badRequest(parsed.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '));
  }
  return parsed.data;
}

export class RuleBook {
  readonly set: RuleSet;
  file: RulesFile = rulesFileSchema.parse({});
  /** The stored input of API rules (durations as given), returned by the API. */
  private readonly inputs = new Map<string, unknown>();

  constructor(
    private readonly db: Kysely<DetectDatabase>,
    private readonly nowMs: () => number,
    private readonly hooks: { onRemoved: (id: string) => void; onSkipped?: (id: string, name: unknown, why: string) => void },
  ) {
    this.set = new RuleSet(nowMs);
  }

  async load(rulesFile: string | undefined): Promise<void> {
    if (rulesFile !== undefined) this.file = loadRulesFile(rulesFile);
    const names = new Set<string>();
    for (const spec of this.file.rules) {
      if (names.has(spec.name)) throw badRequest(`${rulesFile ?? 'rules file'}: rule name '${spec.name}' appears twice`);
      names.add(spec.name);
      this.set.put({ id: `file:${spec.name}`, source: 'file', spec });
    }
    const receivers = new Set(this.file.receivers.map((r) => r.name));
    for (const spec of this.file.rules) {
      for (const r of spec.receivers ?? []) {
        if (!receivers.has(r)) throw badRequest(`${rulesFile ?? 'rules file'}: rule '${spec.name}' names unknown receiver '${r}'`);
      }
    }
    for (const row of await this.db.selectFrom('detect_rules').selectAll().execute()) {
      const input: unknown = JSON.parse(row.spec);
      const parsed = ruleSpecSchema.safeParse(input);
      // A stored rule that no longer validates (schema change, e.g. a pattern that needs
      // backtracking) is skipped, not fatal, and said so.
      if (!parsed.success) {
        this.hooks.onSkipped?.(row.id, (input as { name?: unknown } | null)?.name, parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
        continue;
      }
      if (names.has(parsed.data.name)) continue;
      names.add(parsed.data.name);
      this.inputs.set(row.id, input);
      this.set.put({ id: row.id, source: 'api', spec: parsed.data });
    }
  }

  list(): Array<Rule & { input?: unknown }> {
    return [...this.set.all()].map((rt) => ({ ...rt.rule, input: this.inputs.get(rt.rule.id) }));
  }

  get(id: string): Rule {
    const rt = this.set.get(id);
    if (!rt) throw notFound(`rule ${id} not found`);
    return rt.rule;
  }

  private checkName(name: string, exceptId?: string): void {
    for (const rt of this.set.all()) {
      if (rt.rule.spec.name === name && rt.rule.id !== exceptId) throw conflict(`a rule named '${name}' exists (${rt.rule.id})`);
    }
  }

  private checkReceivers(spec: RuleSpec): void {
    for (const r of spec.receivers ?? []) {
      if (!this.file.receivers.some((x) => x.name === r)) throw badRequest(`receivers: unknown receiver '${r}' (receivers are defined in rules.yaml)`);
    }
  }

  /** Validates `input` (parseRuleSpec) and creates the rule; the route validates first and calls createSpec. */
  async create(input: unknown): Promise<Rule> {
    return this.createSpec(parseRuleSpec(input), input);
  }

  /** `spec` is the validated `input`; the input is stored as given (durations as written). */
  async createSpec(spec: RuleSpec, input: unknown): Promise<Rule> {
    this.checkName(spec.name);
    this.checkReceivers(spec);
    const id = ulid();
    const at = iso(this.nowMs());
    await this.db.insertInto('detect_rules').values({ id, name: spec.name, spec: JSON.stringify(input), created_at: at, updated_at: at }).execute();
    this.inputs.set(id, input);
    return this.set.put({ id, source: 'api', spec }).rule;
  }

  async update(id: string, input: unknown): Promise<Rule> {
    return this.updateSpec(id, parseRuleSpec(input), input);
  }

  async updateSpec(id: string, spec: RuleSpec, input: unknown): Promise<Rule> {
    const cur = this.get(id);
    if (cur.source === 'file') throw conflict(`rule ${id} comes from rules.yaml; edit the file instead`);
    this.checkName(spec.name, id);
    this.checkReceivers(spec);
    await this.db.updateTable('detect_rules').set({ name: spec.name, spec: JSON.stringify(input), updated_at: iso(this.nowMs()) }).where('id', '=', id).execute();
    // A changed rule is a new definition: its open alerts end and its windows start over.
    this.hooks.onRemoved(id);
    this.inputs.set(id, input);
    return this.set.put({ id, source: 'api', spec }).rule;
  }

  private syncing: Promise<void> = Promise.resolve();

  /**
   * Re-reads the API rules from the state database: what another node's API created, changed or
   * removed (it says so on the event bus, src/state/bus.ts). A changed rule starts over, as after
   * update(); one whose stored definition is unchanged is left alone (so this node's own writes,
   * already applied, change nothing). Calls run one after the other.
   */
  sync(): Promise<void> {
    // The previous sync's failure went to its own caller: this one runs after it either way.
    const run = this.syncing.catch(() => undefined).then(() => this.syncOnce());
    this.syncing = run;
    return run;
  }

  private async syncOnce(): Promise<void> {
    const rows = await this.db.selectFrom('detect_rules').selectAll().execute();
    const stored = new Map(rows.map((r) => [r.id, r.spec]));
    for (const rt of [...this.set.all()]) {
      if (rt.rule.source !== 'api' || stored.has(rt.rule.id)) continue;
      this.hooks.onRemoved(rt.rule.id);
      this.set.remove(rt.rule.id);
      this.inputs.delete(rt.rule.id);
    }
    for (const row of rows) {
      if (this.set.get(row.id) !== undefined && JSON.stringify(this.inputs.get(row.id)) === row.spec) continue;
      const input: unknown = JSON.parse(row.spec);
      const parsed = ruleSpecSchema.safeParse(input);
      if (!parsed.success) {
        this.hooks.onSkipped?.(row.id, (input as { name?: unknown } | null)?.name, parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
        continue;
      }
      if ([...this.set.all()].some((rt) => rt.rule.spec.name === parsed.data.name && rt.rule.id !== row.id)) continue;
      if (this.set.get(row.id) !== undefined) this.hooks.onRemoved(row.id);
      this.inputs.set(row.id, input);
      this.set.put({ id: row.id, source: 'api', spec: parsed.data });
    }
  }

  async remove(id: string): Promise<void> {
    const cur = this.get(id);
    if (cur.source === 'file') throw conflict(`rule ${id} comes from rules.yaml; edit the file instead`);
    await this.db.deleteFrom('detect_rules').where('id', '=', id).execute();
    this.hooks.onRemoved(id);
    this.set.remove(id);
    this.inputs.delete(id);
  }
}
