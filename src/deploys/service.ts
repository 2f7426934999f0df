/**
 * DeployService: the deploys pillar behind `DeployApi`. Records deploys (explicit, implicit from
 * a `service.version` first seen in telemetry, rollout steps, rollbacks), runs their
 * verification from committed rollup deltas (no database polling: the only reads are of the
 * deploy tables themselves) and emits `DeployEvents`. The statistics live in analysis.ts.
 */
import type { Kysely } from 'kysely';
import { ulid } from 'ulid';
import { apiError, badRequest, notFound } from '../core/app-error.js';
import type { Database } from '../state/index.js';
import type { CommittedBatches, RollupSecond } from '../telemetry/index.js';
import type { AnalysisVerdict, VerifyConfig } from './analysis.js';
import {
  DeployEvents, type Deploy, type DeployApi, type DeployEventMap, type DeployRecordInput, type DeployStatus, type Verification,
} from './contract.js';
import type { MetricCheck } from './metric-checks.js';
import { deploysDb, toDeploy, toVerification, type DeploysDatabase, type DeploysTable } from './storage.js';
import { baselineEvidence, Verifier, type RunningVerification } from './verifier.js';

export interface DeployServiceOptions {
  /** The state database (deploys migrations applied). */
  db: Kysely<Database>;
  /** Per-commit rollup deltas and, for metric checks, committed batches (DuckDbTelemetryStore provides both). */
  source: {
    onCommittedRollups(listener: (rows: RollupSecond[]) => void): () => void;
    onCommittedBatches?(listener: (c: CommittedBatches) => void): () => void;
    /** Stored per-operation rollups (newest first): the verifier's history refills from them at start. */
    operationRollups?(level: 'second', fromUs: number, toUs: number, limit: number): Promise<RollupSecond[]>;
  };
  /**
   * A service's configured metric checks (the server reads `metricChecks` from services.yaml).
   * Called at each verification start and at most every 30 s while metric points arrive.
   */
  metricChecks?: (service: string) => readonly MetricCheck[];
  /** `error.new_group` and `error.events` (errors/ provides them on RunningServer.errorEvents). */
  errorEvents?: {
    on(name: 'error.new_group', listener: (p: { group: { id: string; service: string; title: string; level: string; firstRelease: string } }) => void): () => void;
    on(name: 'error.events', listener: (p: { counts: ReadonlyArray<{ groupId: string; service: string; release: string; environment: string; count: number }> }) => void): () => void;
  };
  /** Statistics settings (defaults in analysis.ts; tests use small windows). */
  verify?: Partial<VerifyConfig>;
  /** Seconds of traffic kept per series as pre-deploy baseline. Default 600. */
  preDeployWindowS?: number;
  /** Verification tick. Default 500 ms; 0 disables the timer (tests call tick()). */
  tickMs?: number;
  /** Create implicit deploys for versions first seen in telemetry. Default true. */
  implicitDeploys?: boolean;
  nowMs?: () => number;
  logger?: { warn(obj: object, msg: string): void };
  /**
   * A cluster: runs first in the transaction of every write (deploy records, verification starts,
   * verdicts, rollback and finish marks) and throws `lease_lost` when this node lost the lease
   * (nothing written, no event).
   */
  fence?: (tx: Kysely<DeploysDatabase>) => Promise<void>;
}

export interface DeployListFilter {
  service?: string; environment?: string; version?: string; status?: DeployStatus; from?: string; to?: string; limit?: number;
}

interface Waiter { resolve: (v: Verification) => void; reject: (e: Error) => void }

const MAX_DURATION_LIMIT_S = 86_400;
/** Stored rollup rows read at start (the newest are kept when the window holds more). */
const MAX_WARM_ROWS = 200_000;
const QUIET_LEVELS = new Set(['warning', 'info', 'debug', 'log', 'sample']);

export class DeployService implements DeployApi {
  readonly events = new DeployEvents();
  private readonly db: Kysely<DeploysDatabase>;
  private readonly nowMs: () => number;
  private readonly verifier: Verifier;
  private readonly waiters = new Map<string, Waiter[]>();
  private readonly pending = new Set<Promise<unknown>>();
  private readonly unsubscribes: Array<() => void> = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly maxDurationS: number;

  constructor(private readonly opts: DeployServiceOptions) {
    this.db = deploysDb(opts.db);
    this.nowMs = opts.nowMs ?? Date.now;
    this.maxDurationS = opts.verify?.maxDurationS ?? 600;
    this.verifier = new Verifier({
      verify: opts.verify ?? {},
      preDeployWindowS: opts.preDeployWindowS ?? 600,
      nowMs: this.nowMs,
      onVerdict: (run, verdict) => this.track(this.finish(run, verdict)),
      onNewSeries: (service, environment, version, second) => {
        if (version !== '' && opts.implicitDeploys !== false) this.track(this.implicit(service, environment, version, second));
      },
      metricChecks: opts.metricChecks,
      onChecksError: (err) => opts.logger?.warn({ err }, 'deploys: reading metric checks failed; the last good ones stay'),
    });
  }

  /** Refills the verifier's history, subscribes to telemetry and error groups; resumes verifications a restart interrupted. */
  async start(): Promise<void> {
    await this.warm();
    this.unsubscribes.push(this.opts.source.onCommittedRollups((rows) => this.verifier.onDeltas(rows)));
    if (this.opts.metricChecks && this.opts.source.onCommittedBatches) {
      this.unsubscribes.push(this.opts.source.onCommittedBatches((c) => {
        for (const b of c.metrics) this.verifier.onMetrics(b);
      }));
    }
    if (this.opts.errorEvents) {
      this.unsubscribes.push(this.opts.errorEvents.on('error.new_group', ({ group }) => {
        if (!QUIET_LEVELS.has(group.level)) this.verifier.newErrorGroup(group.service, group.firstRelease, group.id, group.title);
      }));
      this.unsubscribes.push(this.opts.errorEvents.on('error.events', ({ counts }) => {
        for (const c of counts) this.verifier.errorGroupEvents(c.service, c.release, c.environment, c.groupId, c.count);
      }));
    }
    for (const r of await this.db.selectFrom('deploys').selectAll().where('status', '=', 'verifying').execute()) {
      await this.startVerification(toDeploy(r), this.maxDurationS);
    }
    const tickMs = this.opts.tickMs ?? 500;
    if (tickMs > 0) {
      this.timer = setInterval(() => this.tick(), tickMs);
      this.timer.unref();
    }
  }

  /**
   * Refills the verifier's seconds per version (the pre-deploy window; a rollback's own history,
   * which is what its verdict compares with) from the telemetry store's per-operation rollups of
   * the last `preDeployWindowS`, through the same path as live deltas. So a process that starts —
   * restarted, or the cluster node that took the lease over — verifies with the history its
   * store holds: with telemetry in ClickHouse, every node's (the dead holder's ingest included);
   * with the embedded DuckDB store, what this node ingested. Read before live deltas are
   * subscribed: this node ingests nothing before its listener opens, after the start, and in a
   * cluster only the lease holder ingests. A failed read is logged and leaves the history to
   * refill from live traffic (as before: a rollback verified meanwhile is inconclusive).
   */
  private async warm(): Promise<void> {
    const src = this.opts.source;
    if (src.operationRollups === undefined) return;
    const nowUs = this.nowMs() * 1000;
    let rows: RollupSecond[];
    try {
      rows = await src.operationRollups('second', nowUs - (this.opts.preDeployWindowS ?? 600) * 1e6, nowUs + 1e6, MAX_WARM_ROWS);
    } catch (err) {
      this.opts.logger?.warn({ err }, 'deploys: reading the stored rollups failed; verification history refills from live traffic');
      return;
    }
    if (rows.length > 0) this.verifier.onDeltas(rows.sort((a, b) => a.second - b.second));
  }

  /**
   * Verifies the deploys the state database says are `verifying` and this process does not run
   * (recorded or re-verified through another node of a cluster); returns how many it started.
   */
  async adoptVerifying(): Promise<number> {
    let n = 0;
    for (const r of await this.db.selectFrom('deploys').selectAll().where('status', '=', 'verifying').execute()) {
      if (this.verifier.runningFor(r.id)) continue;
      await this.startVerification(toDeploy(r), this.maxDurationS);
      n++;
    }
    return n;
  }

  /** Stops listening; running verifications stay `verifying` and resume at the next start. */
  async stop(): Promise<void> {
    for (const u of this.unsubscribes.splice(0)) u();
    clearInterval(this.timer);
    for (const [id, ws] of this.waiters) {
      for (const w of ws) w.reject(apiError('unavailable', 'server shutting down before the verdict'));
      this.waiters.delete(id);
    }
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  /** Feeds running verifications (the timer calls it; tests may too). */
  tick(): void {
    this.verifier.tick();
  }

  async record(input: DeployRecordInput): Promise<Deploy> {
    for (const [k, v] of [['service', input.service], ['version', input.version]] as const) {
      if (typeof v !== 'string' || v.trim() === '') throw badRequest(`'${k}' is required`);
    }
    // No environment given: the one the service's telemetry reports, when there is exactly one.
    const seen = this.verifier.environmentsOf(input.service);
    const environment = input.environment ?? (seen.length === 1 ? seen[0] : 'production');
    const now = new Date(this.nowMs()).toISOString();
    const latest = await this.db.selectFrom('deploys').selectAll()
      .where('service', '=', input.service).where('environment', '=', environment)
      .orderBy('started_at', 'desc').orderBy('id', 'desc').limit(1).executeTakeFirst();
    const source = input.source ?? 'api';
    if (latest && latest.version === input.version && latest.source === 'implicit' && source !== 'implicit' && latest.rollback_of === null) {
      // CI recorded a version the telemetry already announced: complete the implicit record.
      await this.fenced((tx) => tx.updateTable('deploys').set({
        source, commit_sha: input.commit ?? latest.commit_sha, commit_time: input.commitTime ?? latest.commit_time,
        url: input.url ?? latest.url, actor: input.actor ?? latest.actor, rollback_of: input.rollbackOf ?? null, updated_at: now,
      }).where('id', '=', latest.id).execute());
      return this.get(latest.id);
    }
    if (input.rollbackOf != null) await this.get(input.rollbackOf);
    const previousVersion = input.previousVersion !== undefined ? input.previousVersion
      : latest ? (latest.version !== input.version ? latest.version : latest.previous_version)
        : this.verifier.latestOtherVersion(input.service, environment, input.version);
    const row: DeploysTable = {
      id: ulid(), service: input.service, version: input.version, environment, previous_version: previousVersion,
      status: 'started', source, commit_sha: input.commit ?? null, commit_time: input.commitTime ?? null,
      url: input.url ?? null, actor: input.actor ?? null, rollback_of: input.rollbackOf ?? null,
      started_at: input.startedAt ?? now, finished_at: null, decided_at: null, verification_id: null, updated_at: now,
    };
    await this.fenced((tx) => tx.insertInto('deploys').values(row).execute());
    const deploy = toDeploy(row);
    this.emit('deploy.recorded', deploy);
    if (input.verify === false) return deploy;
    const v = await this.startVerification(deploy, this.maxDurationS);
    return { ...deploy, status: 'verifying', verificationId: v.id };
  }

  async get(id: string): Promise<Deploy> {
    const r = await this.db.selectFrom('deploys').selectAll().where('id', '=', id).executeTakeFirst();
    if (!r) throw notFound(`deploy ${id} not found`);
    return toDeploy(r);
  }

  async list(filter: DeployListFilter = {}): Promise<Deploy[]> {
    let q = this.db.selectFrom('deploys').selectAll();
    if (filter.service !== undefined) q = q.where('service', '=', filter.service);
    if (filter.environment !== undefined) q = q.where('environment', '=', filter.environment);
    if (filter.version !== undefined) q = q.where('version', '=', filter.version);
    if (filter.status !== undefined) q = q.where('status', '=', filter.status);
    if (filter.from !== undefined) q = q.where('started_at', '>=', isoOf('from', filter.from));
    if (filter.to !== undefined) q = q.where('started_at', '<=', isoOf('to', filter.to));
    const rows = await q.orderBy('started_at', 'desc').orderBy('id', 'desc').limit(filter.limit ?? 100).execute();
    return rows.map(toDeploy);
  }

  /**
   * The only version a rollback of `bad` may restore: the most recent version of the same service
   * and environment, other than `bad`'s, that tightloop saw serving healthily before `bad`
   * started — an explicit record (a member's or admin's, or tightloop's own rollout or rollback;
   * never one known only from telemetry) whose verification passed, or one tightloop itself
   * rolled out or restored to the end (finished) without a failed verdict. Null: nothing to
   * restore. Never a value from a request: `bad.previousVersion` is only descriptive.
   */
  async rollbackTarget(bad: Pick<Deploy, 'id' | 'service' | 'environment' | 'version' | 'startedAt'>): Promise<string | null> {
    const row = await this.db.selectFrom('deploys').select('version')
      .where('service', '=', bad.service).where('environment', '=', bad.environment)
      .where('version', '!=', bad.version).where('id', '!=', bad.id)
      .where('source', 'in', ['api', 'cli', 'rollout', 'rollback'])
      .where('started_at', '<=', bad.startedAt)
      .where((eb) => eb.or([
        eb('status', '=', 'passed'),
        eb.and([eb('status', '=', 'inconclusive'), eb('finished_at', 'is not', null), eb('source', 'in', ['rollout', 'rollback'])]),
      ]))
      .orderBy('started_at', 'desc').orderBy('id', 'desc').limit(1).executeTakeFirst();
    return row?.version ?? null;
  }

  async markFinished(id: string): Promise<Deploy> {
    const d = await this.get(id);
    const now = new Date(this.nowMs()).toISOString();
    await this.fenced((tx) => tx.updateTable('deploys').set({ finished_at: now, updated_at: now }).where('id', '=', id).execute());
    return { ...d, finishedAt: now };
  }

  /** One write under the fence (a cluster: in a transaction that checks the lease first), else as it is. */
  private async fenced(write: (db: Kysely<DeploysDatabase>) => Promise<unknown>): Promise<void> {
    const fence = this.opts.fence;
    if (fence === undefined) {
      await write(this.db);
      return;
    }
    await this.db.transaction().execute(async (tx) => {
      await fence(tx);
      await write(tx);
    });
  }

  async markRolledBack(id: string, byDeployId: string): Promise<Deploy> {
    const d = await this.get(id);
    await this.get(byDeployId);
    const run = this.verifier.drop(id);
    this.verifier.forget(id);
    // The status and the stopped verification commit together.
    const { deploy, emit, stopped } = await this.db.transaction().execute(async (tx) => {
      await this.opts.fence?.(tx);
      const changed = await this.writeStatus(tx, d, 'rolled_back');
      const v = run ? await this.writeVerdict(tx, run, run.analysis.abandon(`rolled back by deploy ${byDeployId} before a verdict`)) : undefined;
      return { ...changed, stopped: v };
    });
    emit();
    if (run && stopped) this.wake(run, 'stopped', stopped);
    return deploy;
  }

  async verification(deployId: string): Promise<Verification | null> {
    const run = this.verifier.runningFor(deployId);
    if (run) return this.liveVerification(run);
    const d = await this.get(deployId);
    if (d.verificationId === null) return null;
    const r = await this.db.selectFrom('deploy_verifications').selectAll().where('id', '=', d.verificationId).executeTakeFirst();
    return r ? toVerification(r) : null;
  }

  async verify(deployId: string, opts: { maxDurationS?: number } = {}): Promise<Verification> {
    await this.startVerification(await this.get(deployId), opts.maxDurationS);
    return this.waitForVerdict(deployId);
  }

  /** Starts (or restarts) a deploy's verification and returns it, pending, at once. */
  async startVerification(deploy: Deploy, maxDurationS = this.maxDurationS): Promise<Verification> {
    if (!Number.isFinite(maxDurationS) || maxDurationS <= 0 || maxDurationS > MAX_DURATION_LIMIT_S) {
      throw badRequest(`'maxDurationS': expected a number of seconds from 1 to ${MAX_DURATION_LIMIT_S}`);
    }
    const old = this.verifier.drop(deploy.id);
    if (old) await this.saveVerdict(old, old.analysis.abandon('superseded by a new verification'), 'superseded');
    const id = ulid();
    // A rollback is compared with its version's own history before the deploy it rolls back.
    const bad = deploy.rollbackOf === null ? null : await this.get(deploy.rollbackOf).catch((err: unknown) => {
      this.opts.logger?.warn({ err, deploy: deploy.id, rollbackOf: deploy.rollbackOf }, 'deploys: cannot read the deploy this one rolls back; verifying it without that comparison');
      return null;
    });
    const run = this.verifier.start(id, deploy, maxDurationS, bad === null ? undefined : { deployId: bad.id, version: bad.version, startedMs: Date.parse(bad.startedAt) });
    const now = new Date(run.startedMs).toISOString();
    const current = await this.get(deploy.id);
    // The verification, the deploy's pointer to it and its status commit together: a deploy
    // never points at a verification that was not stored.
    const changed = await this.db.transaction().execute(async (tx) => {
      await this.opts.fence?.(tx);
      await tx.insertInto('deploy_verifications').values({
        id, deploy_id: deploy.id, baseline_kind: baselineKindOf(run), baseline_version: run.baselineVersion,
        started_at: now, decided_at: null, outcome: null, reason: null, evidence: '[]', updated_at: now,
      }).execute();
      await tx.updateTable('deploys').set({ verification_id: id, decided_at: null, updated_at: now }).where('id', '=', deploy.id).execute();
      return current.status !== 'verifying' ? this.writeStatus(tx, { ...current, verificationId: id, decidedAt: null }, 'verifying') : undefined;
    });
    changed?.emit();
    return this.liveVerification(run);
  }

  async waitForVerdict(deployId: string, timeoutMs?: number): Promise<Verification> {
    if (!this.verifier.runningFor(deployId)) {
      const v = await this.verification(deployId);
      if (v === null) throw apiError('not_verified', `deploy ${deployId} has no verification`);
      if (v.outcome !== null) return v;
      // Still being saved by finish(): wait below for its waiter call.
    }
    return new Promise<Verification>((resolve, reject) => {
      const list = this.waiters.get(deployId) ?? [];
      let timer: NodeJS.Timeout | undefined;
      const w: Waiter = {
        resolve: (v) => { clearTimeout(timer); resolve(v); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      };
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          const ws = this.waiters.get(deployId);
          ws?.splice(ws.indexOf(w), 1);
          reject(apiError('verification_pending', `no verdict for deploy ${deployId} within ${timeoutMs} ms`));
        }, timeoutMs);
      }
      list.push(w);
      this.waiters.set(deployId, list);
    });
  }

  private liveVerification(run: RunningVerification): Verification {
    const peek = run.analysis.peek();
    return {
      id: run.id, deployId: run.deploy.id, baselineKind: baselineKindOf(run), baselineVersion: run.baselineVersion,
      startedAt: new Date(run.startedMs).toISOString(), decidedAt: null, outcome: null, reason: null,
      evidence: [...peek.evidence, baselineEvidence(run)],
    };
  }

  private async finish(run: RunningVerification, verdict: AnalysisVerdict): Promise<void> {
    await this.saveVerdict(run, verdict, 'final');
  }

  /**
   * Stores a verdict. `final`: the deploy's status follows and waiters wake; `superseded`: waiters
   * wait for the next verification. (A rollback before a verdict: markRolledBack.)
   */
  private async saveVerdict(run: RunningVerification, verdict: AnalysisVerdict, how: 'final' | 'superseded'): Promise<void> {
    const before = how === 'final' ? await this.get(run.deploy.id) : undefined;
    // The verdict, the deploy's decision time and its status commit together; events leave after.
    const { verification, deploy, status } = await this.db.transaction().execute(async (tx) => {
      await this.opts.fence?.(tx);
      const v = await this.writeVerdict(tx, run, verdict);
      if (before === undefined) return { verification: v, deploy: undefined, status: undefined };
      const decidedAt = v.decidedAt ?? '';
      await tx.updateTable('deploys').set({ decided_at: decidedAt, updated_at: decidedAt }).where('id', '=', before.id).execute();
      const d = { ...before, decidedAt };
      const next = v.outcome === 'pass' ? 'passed' : v.outcome === 'fail' ? 'failed' : 'inconclusive';
      return { verification: v, deploy: d, status: d.status === 'verifying' ? await this.writeStatus(tx, d, next) : undefined };
    });
    if (how === 'superseded') return;
    if (deploy !== undefined) this.emit('deploy.verdict', { deploy, verification, at: verification.decidedAt ?? '' });
    status?.emit();
    this.wake(run, how, verification);
  }

  /** Stores a verification's verdict (in `tx`); the verification as it now reads. */
  private async writeVerdict(tx: Kysely<DeploysDatabase>, run: RunningVerification, verdict: AnalysisVerdict): Promise<Verification> {
    const decidedAt = new Date(this.nowMs()).toISOString();
    const outcome = verdict.outcome === 'pending' ? 'inconclusive' : verdict.outcome;
    const verification: Verification = {
      ...this.liveVerification(run), decidedAt, outcome, reason: verdict.reason,
      evidence: [...verdict.evidence, baselineEvidence(run)],
    };
    await tx.updateTable('deploy_verifications').set({
      baseline_kind: verification.baselineKind, decided_at: decidedAt, outcome, reason: verdict.reason,
      evidence: JSON.stringify(verification.evidence), updated_at: decidedAt,
    }).where('id', '=', run.id).execute();
    return verification;
  }

  /** Wakes the deploy's waiters with the verdict (`superseded`: they wait for the next verification). */
  private wake(run: RunningVerification, how: 'final' | 'stopped' | 'superseded', verification: Verification): void {
    if (how === 'superseded') return;
    const ws = this.waiters.get(run.deploy.id) ?? [];
    this.waiters.delete(run.deploy.id);
    for (const w of ws) w.resolve(verification);
  }

  /** Writes a status change (in `tx`); `emit` announces it once the transaction committed. */
  private async writeStatus(tx: Kysely<DeploysDatabase>, d: Deploy, status: DeployStatus): Promise<{ deploy: Deploy; emit: () => void }> {
    const at = new Date(this.nowMs()).toISOString();
    await tx.updateTable('deploys').set({ status, updated_at: at }).where('id', '=', d.id).execute();
    const deploy = { ...d, status };
    return { deploy, emit: () => this.emit('deploy.status', { deploy, from: d.status, at }) };
  }

  private async implicit(service: string, environment: string, version: string, second: number): Promise<void> {
    const known = await this.db.selectFrom('deploys').select('id')
      .where('service', '=', service).where('environment', '=', environment).where('version', '=', version)
      .limit(1).executeTakeFirst();
    if (known) return;
    await this.record({
      service, version, environment, source: 'implicit', actor: 'tightloop',
      startedAt: new Date(Math.min(second * 1000, this.nowMs())).toISOString(),
    });
  }

  private emit<K extends keyof DeployEventMap>(name: K, ...args: DeployEventMap[K]): void {
    try {
      (this.events.emit as (n: K, ...a: DeployEventMap[K]) => boolean)(name, ...args);
    } catch (err) {
      this.opts.logger?.warn({ err }, `deploys: a ${name} listener failed`);
    }
  }

  private track(p: Promise<void>): void {
    const t = p.catch((err: unknown) => this.opts.logger?.warn({ err }, 'deploys: background write failed'));
    this.pending.add(t);
    void t.finally(() => this.pending.delete(t));
  }
}

function baselineKindOf(run: RunningVerification): Verification['baselineKind'] {
  return run.concurrentN > 0 && run.concurrentN >= run.replayN ? 'canary' : 'pre_deploy';
}

function isoOf(name: string, v: string): string {
  const ms = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(ms)) throw badRequest(`'${name}': expected epoch milliseconds or ISO 8601 (got '${v}')`);
  return new Date(ms).toISOString();
}
