/**
 * WriteGate: access to the store's write connections.
 *
 * Appends take one connection each ("shared"), so while one group's COMMIT runs on a DuckDB
 * thread (WAL write + fsync) the next group fills its data chunks on the JS thread — DuckDB
 * appends from concurrent transactions never conflict. Flushes, retention and close take every
 * connection ("exclusive"): they start when no append is in flight, so whatever has committed
 * has also reached the in-memory rollups. Waiters are served in arrival order; a waiting
 * exclusive task holds back later appends, so it cannot starve.
 */
interface Waiter<C> {
  exclusive: boolean;
  grant: (con: C) => void;
}

export class WriteGate<C> {
  private readonly free: C[];
  private readonly queue: Array<Waiter<C>> = [];
  private active = 0;
  private exclusiveRunning = false;

  constructor(private readonly connections: readonly C[]) {
    if (connections.length === 0) throw new Error('WriteGate needs a connection');
    this.free = [...connections];
  }

  shared<T>(fn: (con: C) => Promise<T>): Promise<T> {
    return this.enter(false, fn);
  }

  exclusive<T>(fn: (con: C) => Promise<T>): Promise<T> {
    return this.enter(true, fn);
  }

  /** Every connection, for closing (call inside `exclusive`). */
  all(): readonly C[] {
    return this.connections;
  }

  private async enter<T>(exclusive: boolean, fn: (con: C) => Promise<T>): Promise<T> {
    const con = await new Promise<C>((grant) => {
      this.queue.push({ exclusive, grant });
      this.pump();
    });
    try {
      return await fn(con);
    } finally {
      if (exclusive) this.exclusiveRunning = false;
      else { this.active--; this.free.push(con); }
      this.pump();
    }
  }

  private pump(): void {
    while (this.queue.length > 0 && !this.exclusiveRunning) {
      const head = this.queue[0];
      if (head.exclusive) {
        if (this.active > 0) return;
        this.queue.shift();
        this.exclusiveRunning = true;
        head.grant(this.connections[0]);
        return;
      }
      const con = this.free.pop();
      if (con === undefined) return;
      this.queue.shift();
      this.active++;
      head.grant(con);
    }
  }
}
