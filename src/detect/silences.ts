/**
 * Silences: label matchers with a start and an end, kept in memory (checked on every
 * notification, matchers compiled once: rules.ts compileMatcher) and in the state store (they
 * outlive restarts). An expired silence stays listed (`?all=true`) for the retention period
 * after its end (default 120 h, as Alertmanager's `--data.retention`), then gc() deletes it.
 */
import type { Kysely } from 'kysely';
import type { z } from 'zod';
import { ulid } from 'ulid';
import { randomBytes } from 'node:crypto';
import { badRequest, notFound } from '../core/app-error.js';
import { compileMatcher, matches, silenceInputSchema, type LabelTest, type Matcher } from './rules.js';
import { iso, type DetectDatabase } from './storage.js';

/** A silence as the API receives it, validated. */
export type SilenceSpec = z.output<typeof silenceInputSchema>;

/** Validates a silence (the route calls this: 400 naming each bad field). */
export function parseSilenceInput(input: unknown): SilenceSpec {
  const parsed = silenceInputSchema.safeParse(input);
  if (!parsed.success) throw badRequest(parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '));
  return parsed.data;
}

export interface Silence {
  id: string;
  matchers: Matcher[];
  startsAt: string;
  endsAt: string;
  comment: string;
  createdBy: string;
  createdAt: string;
}

/**
 * Does this matcher narrow a silence down? As Alertmanager requires, a matcher that matches the
 * empty string does not (`service=~.*`, `service!=x`, `env=`); nor here does a regex that also
 * takes an arbitrary value (`service=~.+`), nor a negative matcher. A silence needs one that does.
 */
function narrows(m: Matcher): boolean {
  if (m.op === '=') return m.value !== '';
  if (m.op !== '=~') return false;
  const probe = `~${randomBytes(8).toString('hex')}\u00e9 /`;
  return !matches(m, {}) && !matches(m, { [m.name]: probe });
}

/** How long an expired silence is kept (listed with `all`) before gc() deletes it. */
export const SILENCE_RETENTION_MS = 120 * 3_600_000;

export class SilenceBook {
  private readonly silences = new Map<string, Silence>();
  /** Each silence's matchers, compiled when it was added or loaded. */
  private readonly tests = new Map<string, LabelTest[]>();

  constructor(
    private readonly db: Kysely<DetectDatabase>,
    private readonly nowMs: () => number,
    readonly retentionMs = SILENCE_RETENTION_MS,
  ) {}

  async load(): Promise<void> {
    for (const r of await this.db.selectFrom('detect_silences').selectAll().execute()) {
      this.put({
        id: r.id, matchers: JSON.parse(r.matchers) as Matcher[], startsAt: r.starts_at, endsAt: r.ends_at,
        comment: r.comment, createdBy: r.created_by, createdAt: r.created_at,
      });
    }
    await this.gc();
  }

  /** Replaces the book with the state database's (silences created or ended through another node). */
  async reload(): Promise<void> {
    const rows = await this.db.selectFrom('detect_silences').selectAll().execute();
    this.silences.clear();
    this.tests.clear();
    for (const r of rows) {
      this.put({
        id: r.id, matchers: JSON.parse(r.matchers) as Matcher[], startsAt: r.starts_at, endsAt: r.ends_at,
        comment: r.comment, createdBy: r.created_by, createdAt: r.created_at,
      });
    }
  }

  private put(s: Silence): void {
    this.silences.set(s.id, s);
    this.tests.set(s.id, s.matchers.map(compileMatcher));
  }

  /**
   * Deletes silences that ended more than the retention period ago (memory and state store);
   * returns how many. Idempotent, so every node of a cluster may run it.
   */
  async gc(): Promise<number> {
    const cutoff = this.nowMs() - this.retentionMs;
    await this.db.deleteFrom('detect_silences').where('ends_at', '<', iso(cutoff)).execute();
    let n = 0;
    for (const s of [...this.silences.values()]) {
      if (Date.parse(s.endsAt) < cutoff) {
        this.silences.delete(s.id);
        this.tests.delete(s.id);
        n++;
      }
    }
    return n;
  }

  isActive(s: Silence, now = this.nowMs()): boolean {
    return Date.parse(s.startsAt) <= now && now < Date.parse(s.endsAt);
  }

  /** The active silence muting these labels, if any. */
  mutedBy(labels: Record<string, string>): Silence | undefined {
    const now = this.nowMs();
    for (const s of this.silences.values()) {
      const tests = this.tests.get(s.id);
      if (tests !== undefined && this.isActive(s, now) && tests.every((t) => t(labels))) return s;
    }
    return undefined;
  }

  list(includeExpired: boolean): Array<Silence & { state: 'active' | 'pending' | 'expired' }> {
    const now = this.nowMs();
    return [...this.silences.values()]
      .map((s): Silence & { state: 'active' | 'pending' | 'expired' } => ({ ...s, state: this.isActive(s, now) ? 'active' : Date.parse(s.startsAt) > now ? 'pending' : 'expired' }))
      .filter((s) => includeExpired || s.state !== 'expired')
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  /** Validates `input` (parseSilenceInput) and adds the silence; the route validates first and calls addParsed. */
  async add(input: unknown, createdBy: string): Promise<Silence> {
    return this.addParsed(parseSilenceInput(input), createdBy);
  }

  async addParsed(v: SilenceSpec, createdBy: string): Promise<Silence> {
    // Matcher patterns were checked by the schema (linear-time engine, src/core/pattern.ts).
    if (!v.matchers.some(narrows)) {
      throw badRequest('a silence needs at least one matcher that picks alerts out: name=value, or name=~regex that matches neither the empty string nor any value (a silence that matches everything would mute every alert)');
    }
    const now = this.nowMs();
    const starts = v.startsAt !== undefined ? Date.parse(v.startsAt) : now;
    const ends = v.endsAt !== undefined ? Date.parse(v.endsAt) : starts + (v.duration ?? 3_600_000);
    if (ends <= starts) throw badRequest('endsAt must be after startsAt');
    const s: Silence = {
      id: ulid(), matchers: v.matchers, startsAt: iso(starts), endsAt: iso(ends), comment: v.comment, createdBy, createdAt: iso(now),
    };
    await this.db.insertInto('detect_silences').values({
      id: s.id, matchers: JSON.stringify(s.matchers), starts_at: s.startsAt, ends_at: s.endsAt,
      comment: s.comment, created_by: createdBy, created_at: s.createdAt,
    }).execute();
    this.put(s);
    return s;
  }

  /** Expires a silence now (kept for the record). */
  async expire(id: string): Promise<Silence> {
    const s = this.silences.get(id);
    if (!s) throw notFound(`silence ${id} not found`);
    const endsAt = iso(Math.min(Date.parse(s.endsAt), this.nowMs()));
    const startsAt = Date.parse(s.startsAt) > Date.parse(endsAt) ? endsAt : s.startsAt;
    await this.db.updateTable('detect_silences').set({ ends_at: endsAt, starts_at: startsAt }).where('id', '=', id).execute();
    const next = { ...s, startsAt, endsAt };
    this.put(next);
    return next;
  }
}
