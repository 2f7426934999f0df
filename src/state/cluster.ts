import { hostname } from 'node:os';
import { apiError } from '../core/app-error.js';
import { sql, type Kysely } from 'kysely';
import { ulid } from 'ulid';
import type { ModuleMigrations } from './migrations.js';
import type { Database } from './schema.js';

/**
 * Several tightloop nodes on one PostgreSQL state database (issue 19): a registry of the nodes
 * and leases for the work that must happen once.
 *
 * Why a lease row and not an advisory lock: a session advisory lock lives and dies with one
 * connection, so it cannot say *how long* a holder may still act after PostgreSQL stops hearing
 * from it, carries no fencing token, and is invisible to other nodes (`GET /api/cluster` must
 * show who holds what). A row `(name, holder, token, expires_ms)` renewed by a heartbeat gives
 * all three: expiry on PostgreSQL's clock, a token that grows with every change of holder, and
 * a plain table to read. Takeover time ≤ lease TTL + one heartbeat (6 s + 2 s by default).
 *
 * A holder that loses the lease (renewals failed, or another node has it) stops its work, and
 * only then competes again as a standby: a node cut off from PostgreSQL rejoins by itself when
 * PostgreSQL is back.
 *
 * The holder's own view is conservative: it believes it holds the lease only until the time it
 * *sent* its last successful renewal plus the TTL minus a margin, measured on its own monotonic
 * clock. PostgreSQL computed the expiry after receiving that statement, so the holder stops
 * believing before any other node can take over (clock rates, not clock offsets, matter).
 */

/**
 * Lease names. One `active` lease covers everything for now: its holder runs every pillar, the
 * other nodes stand by (docs/cluster.md says why one lease and not one per pillar yet).
 */
export const LEASE_NAMES = ['active'] as const;
export type LeaseName = (typeof LEASE_NAMES)[number];

export const NODE_ROLES = ['api', 'ingest', 'gateway', 'worker'] as const;
export type NodeRole = (typeof NODE_ROLES)[number];

export interface ClusterNodesTable {
  id: string;
  host: string;
  pid: number;
  /** Comma-separated NodeRole list. */
  roles: string;
  /** The node's HTTP URL as it announced it (may be empty when it has no listener). */
  url: string;
  started_ms: number | string;
  heartbeat_ms: number | string;
  /** Set when the node stopped cleanly. */
  stopped_ms: number | string | null;
}

export interface ClusterLeasesTable {
  name: string;
  holder: string | null;
  /** Fencing token: grows by one every time the lease changes holder. */
  token: number | string;
  expires_ms: number | string;
  acquired_ms: number | string;
}

export interface ClusterDatabase extends Database {
  cluster_nodes: ClusterNodesTable;
  cluster_leases: ClusterLeasesTable;
}

export const clusterMigrations: ModuleMigrations = {
  cluster_0001_nodes_leases: {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema.createTable('cluster_nodes')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('host', 'text', (c) => c.notNull())
        .addColumn('pid', 'integer', (c) => c.notNull())
        .addColumn('roles', 'text', (c) => c.notNull())
        .addColumn('url', 'text', (c) => c.notNull())
        .addColumn('started_ms', 'bigint', (c) => c.notNull())
        .addColumn('heartbeat_ms', 'bigint', (c) => c.notNull())
        .addColumn('stopped_ms', 'bigint')
        .execute();
      await db.schema.createTable('cluster_leases')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('holder', 'text')
        .addColumn('token', 'bigint', (c) => c.notNull())
        .addColumn('expires_ms', 'bigint', (c) => c.notNull())
        .addColumn('acquired_ms', 'bigint', (c) => c.notNull())
        .execute();
    },
    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.dropTable('cluster_leases').execute();
      await db.schema.dropTable('cluster_nodes').execute();
    },
  },
};

export interface ClusterTiming {
  /** Heartbeat and lease renewal period (default 2000 ms). */
  heartbeatMs: number;
  /** Lease time to live on PostgreSQL's clock (default 6000 ms). */
  leaseMs: number;
  /** The holder stops believing this long before its lease can expire (default 1000 ms). */
  marginMs: number;
}

export const DEFAULT_TIMING: ClusterTiming = { heartbeatMs: 2_000, leaseMs: 6_000, marginMs: 1_000 };

export interface LeaseHandlers {
  /** This node now holds the lease (token = fencing token). Work starts here. */
  onAcquired(token: number): Promise<void> | void;
  /**
   * This node can no longer be sure it holds the lease (renewals failed or another node has
   * it). Work must stop at once. The node competes for the lease again only once the returned
   * promise resolves (the work has stopped); a rejection means the work could not be stopped
   * for sure, and the node never competes for this lease again (fail closed; restart it).
   */
  onLost(reason: string): Promise<void> | void;
}

export interface ClusterLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface ClusterNodeView {
  id: string;
  host: string;
  pid: number;
  roles: NodeRole[];
  url: string;
  startedAt: string;
  lastHeartbeatAt: string;
  /** Heartbeat within the lease TTL, as PostgreSQL's clock sees it. */
  alive: boolean;
  stoppedAt: string | null;
  leases: Array<{ name: string; token: number; expiresAt: string }>;
  self: boolean;
}

export interface ClusterView {
  mode: 'single' | 'cluster';
  self: string;
  nodes: ClusterNodeView[];
  leases: Array<{ name: string; holder: string | null; token: number; acquiredAt: string; expiresAt: string; expired: boolean }>;
}

interface Wanted {
  handlers: LeaseHandlers;
  state: 'standby' | 'acquiring' | 'held' | 'lost';
  token: number;
  /** A lease statement in flight (heartbeats never overlap with the first try). */
  busy: boolean;
  /** performance.now() until which this node may act as holder. */
  validUntil: number;
  /** performance.now() before which this node does not compete (after its work failed to start). */
  notBefore: number;
  expiry?: NodeJS.Timeout;
  /** A standby's try aimed at the holder's expiry (instead of waiting for the next heartbeat). */
  aim?: NodeJS.Timeout;
}

const nowMsSql = sql<number>`(extract(epoch from clock_timestamp()) * 1000)::bigint`;

/**
 * One node's membership in the cluster: its row in `cluster_nodes`, a heartbeat, and the leases
 * it competes for. PostgreSQL only (the SQL reads PostgreSQL's clock); on SQLite a node is alone
 * and holds every lease (see {@link singleNodeCluster}).
 */
export class ClusterNode {
  readonly id: string;
  private readonly db: Kysely<ClusterDatabase>;
  private readonly timing: ClusterTiming;
  private readonly wanted = new Map<LeaseName, Wanted>();
  private timer: NodeJS.Timeout | undefined;
  private beating: Promise<void> = Promise.resolve();
  private stopped = false;
  private readonly startedMs = Date.now();
  private lastBeatOk = true;

  constructor(private readonly o: { db: Kysely<Database>; roles: readonly NodeRole[]; url?: () => string; host?: string; timing?: Partial<ClusterTiming>; log?: ClusterLogger; id?: string }) {
    this.db = o.db as unknown as Kysely<ClusterDatabase>;
    this.id = o.id ?? ulid();
    this.timing = { ...DEFAULT_TIMING, ...o.timing };
  }

  get roles(): readonly NodeRole[] { return this.o.roles; }

  /** Registers the node (the first heartbeat) and starts beating. */
  async join(): Promise<void> {
    await this.db.insertInto('cluster_nodes').values({
      id: this.id, host: this.o.host ?? hostname(), pid: process.pid, roles: this.o.roles.join(','), url: this.o.url?.() ?? '',
      started_ms: this.startedMs, heartbeat_ms: nowMsSql, stopped_ms: null,
    }).execute();
    this.schedule(this.timing.heartbeatMs);
  }

  /** Competes for `name` from the next heartbeat on (and tries once now). */
  async want(name: LeaseName, handlers: LeaseHandlers): Promise<void> {
    if (this.wanted.has(name)) throw new Error(`lease ${name} is already wanted`);
    this.wanted.set(name, { handlers, state: 'standby', token: 0, busy: false, validUntil: -Infinity, notBefore: -Infinity });
    await this.tryLease(name);
  }

  /** Whether the last heartbeat reached the state database. */
  get reachable(): boolean { return this.lastBeatOk; }

  /** Whether this node may act as the holder of `name` right now. */
  holds(name: LeaseName): boolean {
    const w = this.wanted.get(name);
    return w !== undefined && w.state === 'held' && performance.now() < w.validUntil;
  }

  /**
   * The fencing token of a lease this node holds, else undefined. Also while its work starts
   * (`acquiring`): the start-up of the pillars writes too (recovered alerts, incidents, resumed
   * rollbacks), under the token it just took.
   */
  fence(name: LeaseName): number | undefined {
    const w = this.wanted.get(name);
    return w !== undefined && (w.state === 'held' || w.state === 'acquiring') && performance.now() < w.validUntil ? w.token : undefined;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.beating = this.beat().finally(() => this.schedule(this.timing.heartbeatMs));
    }, ms);
    this.timer.unref();
  }

  /** One heartbeat: the node row, then every wanted lease. Never throws. */
  private async beat(): Promise<void> {
    try {
      await this.db.updateTable('cluster_nodes').set({ heartbeat_ms: nowMsSql, url: this.o.url?.() ?? '' }).where('id', '=', this.id).execute();
      if (!this.lastBeatOk) this.o.log?.info({ node: this.id }, 'cluster: heartbeat restored');
      this.lastBeatOk = true;
    } catch (err) {
      if (this.lastBeatOk) this.o.log?.warn({ err, node: this.id }, 'cluster: heartbeat failed (state database unreachable?)');
      this.lastBeatOk = false;
    }
    for (const name of this.wanted.keys()) await this.tryLease(name);
  }

  /** Acquires or renews `name`; on a holder, a failed renewal leaves the local expiry to decide. */
  private async tryLease(name: LeaseName, aimed = false): Promise<void> {
    const w = this.wanted.get(name);
    if (w === undefined || w.state === 'lost' || w.busy || this.stopped) return;
    if (w.state === 'standby' && performance.now() < w.notBefore) return;
    w.busy = true;
    try {
      await this.tryLeaseOnce(name, w, aimed);
    } finally {
      w.busy = false;
    }
  }

  private async tryLeaseOnce(name: LeaseName, w: Wanted, aimed: boolean): Promise<void> {
    const sentAt = performance.now();
    const ttl = this.timing.leaseMs;
    let row: { holder: string | null; token: number | string } | undefined;
    try {
      // One statement: insert the lease, or take it over when it is free or expired, or renew
      // it when this node holds it. The token grows with every new holding: a change of holder,
      // or this node taking it again after it lost it (its row may still name it).
      const renew = w.state !== 'standby';
      const r = await sql<{ holder: string | null; token: number | string }>`
        insert into cluster_leases as l (name, holder, token, expires_ms, acquired_ms)
        values (${name}, ${this.id}, 1, ${nowMsSql} + ${ttl}, ${nowMsSql})
        on conflict (name) do update set
          holder = excluded.holder,
          token = case when ${renew} and l.holder = excluded.holder then l.token else l.token + 1 end,
          acquired_ms = case when ${renew} and l.holder = excluded.holder then l.acquired_ms else excluded.acquired_ms end,
          expires_ms = excluded.expires_ms
        where l.holder = excluded.holder or l.holder is null or l.expires_ms < excluded.acquired_ms
        returning holder, token`.execute(this.db);
      row = r.rows[0];
    } catch (err) {
      if (w.state !== 'standby') this.o.log?.warn({ err, lease: name }, 'cluster: lease renewal failed; the lease lapses unless a renewal succeeds in time');
      return;
    }
    if (this.stopped || w.state === 'lost') return;
    if (row === undefined || row.holder !== this.id) {
      // Another node holds it. A holder that reads this lost it (e.g. it stalled past the TTL).
      if (w.state !== 'standby') this.lose(name, w, 'another node holds the lease');
      else await this.aimAtExpiry(name, w, aimed);
      return;
    }
    const token = Number(row.token);
    if (w.state !== 'standby' && token !== w.token) {
      // Same holder id with a new token cannot happen; treat any surprise as a loss (fail closed).
      this.lose(name, w, `fencing token changed ${w.token} → ${token}`);
      return;
    }
    w.validUntil = sentAt + ttl - this.timing.marginMs;
    clearTimeout(w.expiry);
    w.expiry = setTimeout(() => {
      if (w.state !== 'standby' && performance.now() >= w.validUntil) this.lose(name, w, `no successful renewal within ${ttl - this.timing.marginMs} ms`);
    }, Math.max(0, w.validUntil - performance.now()) + 5);
    w.expiry.unref();
    if (w.state === 'standby') {
      w.state = 'acquiring';
      w.token = token;
      this.o.log?.info({ lease: name, token, node: this.id }, 'cluster: lease acquired');
      // Renewals go on while the work starts (warm-ups may take longer than the TTL).
      w.busy = false;
      try {
        await w.handlers.onAcquired(token);
      } catch (err) {
        this.o.log?.error({ err, lease: name }, 'cluster: starting the work of a lease failed; giving the lease up');
        w.state = 'held';
        // Another node may start it; this one tries again after a pause, not at every heartbeat.
        w.notBefore = performance.now() + 2 * this.timing.leaseMs;
        this.lose(name, w, 'starting its work failed');
        await this.release(name).catch((err: unknown) => this.o.log?.warn({ err, lease: name }, 'cluster: releasing the lease failed; it expires by itself'));
        return;
      }
      if (w.state === 'acquiring') w.state = 'held';
    }
  }

  /**
   * A standby that found the lease held reads when it expires (PostgreSQL's clock) and, when that
   * comes before its next heartbeat, tries again just after it: a dead holder is replaced at its
   * lease's expiry, not up to one heartbeat later. Safety is unchanged (the statement takes only
   * an expired lease); a live holder renews before, and the aimed try then finds it held again
   * and aims at the new expiry (at most one try per lease period, never a loop: an aimed try
   * that finds the lease already expired leaves it to the heartbeat).
   */
  private async aimAtExpiry(name: LeaseName, w: Wanted, aimed: boolean): Promise<void> {
    if (w.aim !== undefined || this.stopped) return;
    let left: number;
    try {
      const r = await sql<{ left: number | string }>`select expires_ms - ${nowMsSql} as left from cluster_leases where name = ${name}`.execute(this.db);
      if (r.rows[0] === undefined) return;
      left = Number(r.rows[0].left);
    } catch {
      return; // the next heartbeat tries anyway
    }
    if (left >= this.timing.heartbeatMs - 50 || (aimed && left <= 0) || this.stopped || w.aim !== undefined) return;
    w.aim = setTimeout(() => {
      w.aim = undefined;
      void this.tryLease(name, true);
    }, Math.max(0, left) + 25);
    w.aim.unref();
  }

  /**
   * The lease is lost: its work stops (the handler), and only once it has stopped does this node
   * compete again, as a standby (a new holding gets a new fencing token).
   */
  private lose(name: LeaseName, w: Wanted, reason: string): void {
    if (w.state === 'lost') return;
    w.state = 'lost';
    w.validUntil = -Infinity;
    clearTimeout(w.expiry);
    this.o.log?.error({ lease: name, node: this.id, reason }, 'cluster: lease lost; stopping its work on this node');
    let stopping: Promise<void> | void;
    try {
      stopping = w.handlers.onLost(reason);
    } catch (err) {
      stopping = Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    Promise.resolve(stopping).then(() => {
      if (this.stopped || w.state !== 'lost') return;
      w.state = 'standby';
      w.token = 0;
      this.o.log?.info({ lease: name, node: this.id }, 'cluster: the lease\'s work stopped; this node competes for it again as a standby');
    }, (err: unknown) => {
      this.o.log?.error({ err, lease: name, node: this.id }, 'cluster: stopping the lease\'s work failed; this node no longer competes for it (restart it)');
    });
  }

  /** Gives a held lease up at once (clean stop): another node takes over at its next heartbeat. */
  private async release(name: LeaseName): Promise<void> {
    await this.db.updateTable('cluster_leases').set({ holder: null, expires_ms: 0 }).where('name', '=', name).where('holder', '=', this.id).execute();
  }

  /** Stops beating, gives its leases up and marks the node stopped. Call after the work stopped. */
  async leave(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.timer);
    await this.beating;
    for (const [name, w] of this.wanted) {
      clearTimeout(w.expiry);
      clearTimeout(w.aim);
      w.state = 'lost';
      await this.release(name).catch((err: unknown) => this.o.log?.warn({ err, lease: name }, 'cluster: releasing the lease failed; it expires by itself'));
    }
    await this.db.updateTable('cluster_nodes').set({ stopped_ms: nowMsSql }).where('id', '=', this.id).execute()
      .catch((err: unknown) => this.o.log?.warn({ err }, 'cluster: marking the node stopped failed'));
  }

  /** Nodes seen in the last hour (and every live one), their leases; for GET /api/cluster. */
  async view(): Promise<ClusterView> {
    const now = Number((await sql<{ now: number | string }>`select ${nowMsSql} as now`.execute(this.db)).rows[0].now);
    const nodes = await this.db.selectFrom('cluster_nodes').selectAll()
      .where('heartbeat_ms', '>', now - 3_600_000).orderBy('started_ms').execute();
    const leases = await this.db.selectFrom('cluster_leases').selectAll().orderBy('name').execute();
    const iso = (ms: number | string) => new Date(Number(ms)).toISOString();
    return {
      mode: 'cluster',
      self: this.id,
      nodes: nodes.map((n) => ({
        id: n.id, host: n.host, pid: n.pid, roles: n.roles === '' ? [] : n.roles.split(',') as NodeRole[], url: n.url,
        startedAt: iso(n.started_ms), lastHeartbeatAt: iso(n.heartbeat_ms),
        alive: n.stopped_ms === null && now - Number(n.heartbeat_ms) <= this.timing.leaseMs,
        stoppedAt: n.stopped_ms === null ? null : iso(n.stopped_ms),
        leases: leases.filter((l) => l.holder === n.id && Number(l.expires_ms) >= now).map((l) => ({ name: l.name, token: Number(l.token), expiresAt: iso(l.expires_ms) })),
        self: n.id === this.id,
      })),
      leases: leases.map((l) => ({ name: l.name, holder: l.holder, token: Number(l.token), acquiredAt: iso(l.acquired_ms), expiresAt: iso(l.expires_ms), expired: Number(l.expires_ms) < now })),
    };
  }

  /**
   * Fencing, inside the transaction of a write that only the holder of `name` may make: passes
   * only if this node believes it holds the lease and PostgreSQL agrees (same holder, same token,
   * not expired on its clock). The lease row is read FOR SHARE, so a takeover (an UPDATE of that
   * row) waits for the fenced transaction to end: the write commits under a holding that was
   * still valid, or not at all. Throws `lease_lost`.
   */
  async assertHolds<DB>(name: LeaseName, tx: Kysely<DB>): Promise<void> {
    const token = this.fence(name);
    if (token === undefined) throw apiError('lease_lost', `this node no longer holds the ${name} lease; the write is refused (fencing)`);
    const r = await sql<{ ok: number }>`select 1 as ok from cluster_leases where name = ${name} and holder = ${this.id}
      and token = ${token} and expires_ms > ${nowMsSql} for share`.execute(tx);
    if (r.rows.length === 0) throw apiError('lease_lost', `the ${name} lease passed to another node (token ${token} is no longer current); the write is refused (fencing)`);
  }

  /** The node holding `name` now (lease not expired on PostgreSQL's clock) and its URL, else undefined. */
  async holder(name: LeaseName): Promise<{ id: string; url: string; token: number } | undefined> {
    const r = await sql<{ id: string; url: string; token: number | string }>`select n.id, n.url, l.token from cluster_leases l
      join cluster_nodes n on n.id = l.holder
      where l.name = ${name} and l.expires_ms > ${nowMsSql} and n.stopped_ms is null`.execute(this.db);
    const row = r.rows[0];
    return row === undefined ? undefined : { id: row.id, url: row.url, token: Number(row.token) };
  }

  /** The distinct role lists of the other nodes with a live heartbeat. */
  async liveRoles(): Promise<string[]> {
    const r = await sql<{ roles: string }>`select distinct roles from cluster_nodes
      where id <> ${this.id} and stopped_ms is null and heartbeat_ms >= ${nowMsSql} - ${this.timing.leaseMs}`.execute(this.db);
    return r.rows.map((x) => x.roles);
  }

  /** Whether any other node has a live heartbeat (e.g. before recovering "running" work a dead process left). */
  async othersAlive(): Promise<boolean> {
    const r = await sql<{ n: number | string }>`select count(*) as n from cluster_nodes
      where id <> ${this.id} and stopped_ms is null and heartbeat_ms >= ${nowMsSql} - ${this.timing.leaseMs}`.execute(this.db);
    return Number(r.rows[0].n) > 0;
  }
}

/** The cluster view of a node alone on its (SQLite) state: it holds every lease, always. */
export function singleNodeView(id: string, roles: readonly NodeRole[], url: string, startedMs: number): ClusterView {
  const now = new Date().toISOString();
  const started = new Date(startedMs).toISOString();
  return {
    mode: 'single', self: id,
    nodes: [{ id, host: hostname(), pid: process.pid, roles: [...roles], url, startedAt: started, lastHeartbeatAt: now, alive: true, stoppedAt: null,
      leases: LEASE_NAMES.map((name) => ({ name, token: 1, expiresAt: now })), self: true }],
    leases: LEASE_NAMES.map((name) => ({ name, holder: id, token: 1, acquiredAt: started, expiresAt: now, expired: false })),
  };
}
