import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Database } from '../state/index.js';
import type { SessionRegistry } from './registry.js';
import { gatewayDb } from './schema.js';

/**
 * Live sessions follow what their login rested on. A session was opened with one API token of
 * one user, under that user's role and one access grant; when the token is revoked or expires,
 * the user is removed, the role changes (masking exemptions and guardrail overrides depend on
 * it) or the grant is revoked, the session ends (FATAL 57P01; the user reconnects and is judged
 * afresh). The gateway checks every live session's token, user and grant against the state
 * database every `intervalMs` (default 500 ms, one query per table for all sessions), so a
 * change made by any path — API, CLI, another process — takes effect within about a second.
 * Grant expiry has its own exact timer (session.ts), which also renews a session onto a
 * successor grant.
 */
export class SessionWatch {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly registry: SessionRegistry,
    private readonly log: Logger,
    private readonly intervalMs = 500,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      if (this.running !== undefined || this.registry.size === 0) return;
      this.running = this.check()
        .then(() => undefined, (err: unknown) => this.log.error({ err }, 'gateway session check failed'))
        .finally(() => {
          this.running = undefined;
        });
    }, this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** Ends every live session whose token, user, role or grant no longer holds. */
  async check(now = Date.now()): Promise<number> {
    const sessions = this.registry.sessions().filter((s) => s.who !== undefined);
    if (sessions.length === 0) return 0;
    const tokenIds = [...new Set(sessions.map((s) => s.who?.tokenId ?? ''))];
    const grantIds = [...new Set(sessions.map((s) => s.grant?.id).filter((id): id is string => id !== undefined))];
    const [tokens, grants] = await Promise.all([
      this.db
        .selectFrom('api_tokens as t')
        .innerJoin('users as u', 'u.id', 't.user_id')
        .select(['t.id as id', 't.revoked_at as revokedAt', 't.expires_at as expiresAt', 'u.id as userId', 'u.role as role'])
        .where('t.id', 'in', tokenIds)
        .execute(),
      grantIds.length === 0
        ? Promise.resolve([])
        : gatewayDb(this.db).selectFrom('gateway_grants').select(['id', 'revoked_at']).where('id', 'in', grantIds).execute(),
    ]);
    const byToken = new Map(tokens.map((t) => [t.id, t]));
    const revokedGrants = new Set(grants.filter((g) => g.revoked_at !== null).map((g) => g.id));
    const knownGrants = new Set(grants.map((g) => g.id));
    let ended = 0;
    for (const s of sessions) {
      const who = s.who;
      if (who === undefined) continue;
      const t = byToken.get(who.tokenId);
      let reason: string | undefined;
      if (t === undefined || t.userId !== who.userId) reason = 'the user or the token was removed';
      else if (t.revokedAt !== null) reason = 'the token was revoked';
      else if (t.expiresAt !== null && !(now < Date.parse(t.expiresAt))) reason = 'the token expired';
      else if (t.role !== who.role) reason = `the user's role changed (${who.role} → ${t.role}); reconnect`;
      else if (s.grant !== undefined && (revokedGrants.has(s.grant.id) || !knownGrants.has(s.grant.id))) reason = 'access grant revoked';
      if (reason === undefined) continue;
      s.terminate(reason);
      ended++;
    }
    return ended;
  }
}
