import type { ClientSession } from './session.js';

/**
 * Live sessions, by the cancel key handed to the client and by the grant they run under, so a
 * CancelRequest reaches the right upstream backend and an ended grant ends its sessions.
 */
export class SessionRegistry {
  private readonly byKey = new Map<string, ClientSession>();
  private readonly live = new Set<ClientSession>();
  /** Sessions past login, per user and resource (attack round 4 #10), with the key each holds. */
  private readonly perUser = new Map<string, Set<ClientSession>>();
  private readonly slotOf = new Map<ClientSession, string>();

  add(s: ClientSession): void {
    this.live.add(s);
    this.byKey.set(`${s.key.pid}:${s.key.secret}`, s);
  }

  /**
   * Takes one of `cap` slots of this user on this resource before the session connects upstream
   * (checked and taken in one step, so concurrent logins cannot all pass); false when all are
   * taken. Released by `release`.
   */
  claim(s: ClientSession, userId: string, resourceId: string, cap: number): boolean {
    const key = `${userId}\u0000${resourceId}`;
    const set = this.perUser.get(key) ?? new Set<ClientSession>();
    if (cap > 0 && set.size >= cap) return false;
    set.add(s);
    this.perUser.set(key, set);
    this.slotOf.set(s, key);
    return true;
  }

  /** The session ended: no longer listed nor cancellable (its slot is freed by `release`). */
  remove(s: ClientSession): void {
    this.live.delete(s);
    this.byKey.delete(`${s.key.pid}:${s.key.secret}`);
  }

  /**
   * Frees the session's slot: its upstream connection is closed (attack round 7 F3: a statement
   * left running upstream kept a backend busy while the slot was free again).
   */
  release(s: ClientSession): void {
    const key = this.slotOf.get(s);
    if (key !== undefined) {
      this.slotOf.delete(s);
      const set = this.perUser.get(key);
      set?.delete(s);
      if (set?.size === 0) this.perUser.delete(key);
    }
  }

  /** A CancelRequest with an unknown key is ignored, as PostgreSQL does. */
  cancel(key: { pid: number; secret: number }): void {
    this.byKey.get(`${key.pid}:${key.secret}`)?.cancel();
  }

  endGrant(grantId: string, reason: string): number {
    let n = 0;
    for (const s of [...this.live]) {
      if (s.grant?.id !== grantId) continue;
      s.terminate(reason);
      n++;
    }
    return n;
  }

  get size(): number {
    return this.live.size;
  }

  sessions(): ClientSession[] {
    return [...this.live];
  }
}
