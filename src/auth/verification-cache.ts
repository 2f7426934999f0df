import type { Role } from '../state/index.js';

/** Who a valid token speaks for. */
export interface VerifiedToken {
  userId: string;
  userName: string;
  role: Role;
  tokenId: string;
  scopes: readonly string[];
}

/** How long a successful verification is reused before the database is asked again. */
export const VERIFICATION_CACHE_TTL_MS = 10_000;
const MAX_ENTRIES = 10_000;

interface Entry {
  verified: VerifiedToken;
  validUntilMs: number;
}

/**
 * Successful verifications by token hash, so the API hot path does not query the state
 * database on every request. Only successes are cached, so the size is bounded by live tokens
 * in use; the cap is a safety net, evicting the oldest insertion.
 *
 * Invalidation races: a verification that read the row just before a revocation committed
 * must not put the revoked token back. `generation` changes on every invalidation and `set`
 * refuses results read under an older generation.
 */
export class VerificationCache {
  private readonly entries = new Map<string, Entry>();
  private gen = 0;

  get generation(): number {
    return this.gen;
  }

  get(hash: string, nowMs: number): VerifiedToken | undefined {
    const entry = this.entries.get(hash);
    if (entry === undefined) return undefined;
    if (nowMs >= entry.validUntilMs) {
      this.entries.delete(hash);
      return undefined;
    }
    return entry.verified;
  }

  /** Caches until `validUntilMs` (the caller caps it at the token's own expiry). */
  set(hash: string, verified: VerifiedToken, validUntilMs: number, readAtGeneration: number): void {
    if (readAtGeneration !== this.gen) return;
    this.entries.delete(hash);
    if (this.entries.size >= MAX_ENTRIES) {
      const oldest = this.entries.keys().next();
      if (oldest.done !== true) this.entries.delete(oldest.value);
    }
    this.entries.set(hash, { verified, validUntilMs });
  }

  delete(hash: string): void {
    this.gen++;
    this.entries.delete(hash);
  }

  clear(): void {
    this.gen++;
    this.entries.clear();
  }
}
