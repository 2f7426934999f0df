import type { ClientSession } from './session.js';

/**
 * Live sessions, by the cancel key handed to the client and by the grant they run under, so a
 * CancelRequest reaches the right upstream backend and an ended grant ends its sessions.
 */
export class SessionRegistry {
  private readonly byKey = new Map<string, ClientSession>();
  private readonly live = new Set<ClientSession>();

  add(s: ClientSession): void {
    this.live.add(s);
    this.byKey.set(`${s.key.pid}:${s.key.secret}`, s);
  }

  remove(s: ClientSession): void {
    this.live.delete(s);
    this.byKey.delete(`${s.key.pid}:${s.key.secret}`);
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
