/**
 * Progressive deploy and automatic rollback.
 *
 * A rollout records a deploy (source `rollout`), then for each canary step runs the service's
 * deploy action with WEIGHT and verifies (`DeployApi.verify`): pass → next step, fail → roll
 * back. After the last step passes the deploy is marked finished and, for local services, the
 * previous version is stopped. Inconclusive at a step follows the service's `onInconclusive`:
 * `hold` (default) verifies again at the same weight up to `maxHolds` times and then goes on —
 * "not enough traffic" must never fail a deploy, and holding at a small weight first limits the
 * exposure while evidence accumulates; `promote` goes on at once; `rollback` treats it as fail.
 *
 * Rollouts are kept in the state store (storage.ts) as they change.
 *
 * Rolling back = the service's rollback action (SERVICE, VERSION = the bad one,
 * PREVIOUS_VERSION = the target), then a deploy record of its own (source `rollback`,
 * rollbackOf = the bad deploy) that is verified like any other, and `markRolledBack` on the bad
 * one. The target is never a value from a request: for a rollout, the version it replaced (the
 * local actuator's live version, else `DeployApi.rollbackTarget`); for any other deploy,
 * `DeployApi.rollbackTarget` (the latest version tightloop saw serving healthily). A deploy
 * recorded explicitly elsewhere (CI, API) that fails verification gets the same rollback — at
 * once with `rollback: auto`, or as an action run waiting for an admin's approval with
 * `rollback: confirm`. An implicit deploy (a version first seen in telemetry, which needs no
 * token on loopback) never triggers an action: it is verified and can alert, nothing more. A
 * failed rollback is never rolled back again (no loops).
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { ulid } from 'ulid';
import { apiError, conflict } from '../../core/app-error.js';
import type { ActionService, ActionRun, Actor, AuditSink } from '../actions/index.js';
import { INTERRUPTED, SYSTEM_ACTOR } from '../actions/index.js';
import type { ActionRunRecord, Deploy, DeployApi, VerdictOutcome, Verification } from '../contract.js';
import { findService, isLocal, type ServiceConfig } from './config.js';
import type { Database } from '../../state/index.js';
import type { LocalActuator } from './local-actuator.js';
import { rolloutDb, type RolloutDatabase } from './storage.js';

export interface RolloutStep {
  weight: number;
  /** Action run that set the weight. */
  runId: string | null;
  verdicts: { outcome: VerdictOutcome; verificationId: string; reason: string | null; at: string }[];
  /** `onInconclusive: promote` took the rollout past this step on an inconclusive verdict. */
  promotedWithoutEvidence?: boolean;
}

/**
 * `held`: verification stayed inconclusive through every hold (`onInconclusive: hold`); the
 * rollout stopped at that step's weight — neither promoted nor rolled back — and said so.
 */
export type RolloutStatus = 'running' | 'promoted' | 'held' | 'rolled_back' | 'failed' | 'aborted';

/** What a rollout tells people when it needs them (a hold with no evidence). */
export interface RolloutNotice {
  kind: 'rollout.held';
  rolloutId: string;
  deployId: string;
  service: string;
  environment: string;
  version: string;
  weight: number;
  title: string;
  text: string;
}

export interface Rollout {
  id: string;
  deployId: string;
  service: string;
  version: string;
  /** What served before: it takes the rest of the traffic at each step (PREVIOUS_VERSION of the deploy action). */
  previousVersion: string | null;
  /**
   * What a rollback restores: the local actuator's live version, else DeployApi.rollbackTarget
   * (seen serving healthily). Undefined in rollouts stored before it existed: previousVersion.
   */
  rollbackTo?: string | null;
  environment: string;
  actor: string;
  status: RolloutStatus;
  steps: RolloutStep[];
  /** Some step went on without a passing verdict (`onInconclusive: promote`): promoted without evidence. */
  promotedWithoutEvidence?: boolean;
  /** Longest verification per step (kept so that a rollout resumed after a restart verifies alike). */
  verifyMaxDurationS?: number;
  /** How many times a restart (or a new lease holder) resumed it. */
  resumed?: number;
  /** The rollback's deploy record, when there was one, and its verdict. */
  rollbackDeployId: string | null;
  rollbackRunId: string | null;
  rollbackVerdict: VerdictOutcome | null;
  reason: string | null;
  startedAt: string;
  finishedAt: string | null;
}

export interface RolloutInput {
  service: string;
  version: string;
  environment?: string;
  commit?: string | null;
  commitTime?: string | null;
  url?: string | null;
  /** Overrides the service's steps. */
  steps?: number[];
  verifyMaxDurationS?: number;
}

export interface RollbackResult {
  run: ActionRun;
  rollbackDeploy: Deploy | null;
  verification: Verification | null;
}

export interface RolloutManagerOptions {
  deploys: DeployApi;
  actions: ActionService;
  actuator?: LocalActuator;
  services: () => ServiceConfig[];
  audit: AuditSink;
  log: Logger;
  /** Where rollouts are kept (without it they live in memory only). */
  db?: Kysely<Database>;
  /** Tells people (the server: every receiver of rules.yaml). A failure is logged. */
  notify?: (n: RolloutNotice) => Promise<void>;
  /**
   * A cluster: runs first in the transaction of every write of a rollout row and throws
   * `lease_lost` when this node lost the lease (the row is not written; docs/cluster.md).
   */
  fence?: (tx: Kysely<RolloutDatabase>) => Promise<void>;
}

const now = (): string => new Date().toISOString();

/** A failed verdict whose rollback never started is resumed only this soon after it (not a stale one at every start). */
const RESUME_UNSTARTED_MS = 10 * 60_000;
/** Failed deploys started this recently are looked at (an interrupted rollback of an older one is a person's call). */
const RESUME_WITHIN_MS = 24 * 3_600_000;

export class RolloutManager {
  private readonly rollouts = new Map<string, Rollout>();
  private readonly running = new Map<string, Promise<Rollout>>();
  /** Deploys whose failure is already being rolled back (or was). */
  private readonly handled = new Set<string>();
  private readonly pendingWork = new Set<Promise<unknown>>();
  private closed = false;
  private readonly db: Kysely<RolloutDatabase> | undefined;
  private writes: Promise<void> = Promise.resolve();
  /** Action runs this process started and waits for itself. */
  private readonly ownRuns = new Set<string>();
  /**
   * A rollback run nobody here waits for — approved after a restart, or run by hand with
   * `--deploy <failed deploy>` — still gets its rollback deploy recorded and verified.
   */
  private readonly onActionFinished = (run: ActionRunRecord): void => {
    if (this.ownRuns.delete(run.id) || run.status !== 'succeeded' || run.deployId === null || this.closed) return;
    this.track(this.adoptRollback(run));
  };
  private readonly onVerdict = ({ deploy, verification }: { deploy: Deploy; verification: Verification }): void => {
    if (verification.outcome !== 'fail' || deploy.source === 'rollout' || deploy.source === 'rollback') return;
    if (deploy.source === 'implicit') {
      // Telemetry alone (tokenless on loopback) must never make tightloop act in production.
      this.o.log.warn({ deploy: deploy.id, service: deploy.service, version: deploy.version }, 'implicit deploy failed verification: no action (only explicitly recorded deploys are rolled back)');
      return;
    }
    this.track(this.rollbackExternal(deploy));
  };

  constructor(private readonly o: RolloutManagerOptions) {
    this.db = o.db === undefined ? undefined : rolloutDb(o.db);
  }

  /**
   * Loads the latest rollouts. Those a restart (or the death of a cluster's lease holder)
   * interrupted stay `running` until resumeRollouts() continues or aborts them.
   */
  async open(): Promise<void> {
    if (this.db === undefined) return;
    const rows = await this.db.selectFrom('rollout_rollouts').selectAll().orderBy('started_at', 'desc').limit(500).execute();
    for (const row of rows.reverse()) {
      const r = JSON.parse(row.data) as Rollout;
      this.rollouts.set(r.id, r);
    }
  }

  /**
   * Continues the rollouts a previous process left `running` (it crashed, or it held the
   * cluster's lease and died), as a controller restarted mid-rollout does: from the step it
   * recorded last, whose deploy action runs again (it sets the same weight: idempotent, like a
   * rollback action) before that step is verified — unless that action's run is recorded as
   * succeeded (the process stopped during the step's verification): then the step is only
   * verified, its action is not repeated; a rollout whose verification (or deploy
   * action) had failed is rolled back; one whose steps had all passed is promoted. Aborted
   * instead (a person's call, as before): a rollout started over RESUME_WITHIN_MS ago, of a
   * service no longer configured, or driven by `local` actions (its versions ran as children of
   * the process that stopped). Call after attach(), on the lease holder; returns how many resumed.
   */
  async resumeRollouts(): Promise<number> {
    let n = 0;
    for (const r of [...this.rollouts.values()]) {
      if (r.status !== 'running' || this.running.has(r.id)) continue;
      const why = 'tightloop restarted during the rollout';
      let cfg: ServiceConfig;
      let deploy: Deploy;
      try {
        cfg = findService(this.o.services(), r.service);
        deploy = await this.o.deploys.get(r.deployId);
      } catch { // the service left the configuration or its deploy is gone: nothing to resume, it is aborted
        await this.settle(r, 'aborted', `${why}; its service or deploy is gone`);
        continue;
      }
      if (Date.now() - Date.parse(r.startedAt) > RESUME_WITHIN_MS) {
        await this.settle(r, 'aborted', `${why}; started over 24 h ago, not resumed`);
        continue;
      }
      if (this.isLocalAction(cfg.deployAction) || (isLocal(cfg) && cfg.deployAction === null)) {
        await this.settle(r, 'aborted', `${why}; its local versions ran in the process that stopped`);
        continue;
      }
      r.resumed = (r.resumed ?? 0) + 1;
      await this.save(r);
      this.o.log.warn({ rollout: r.id, service: r.service, version: r.version }, 'rollout interrupted by a restart or a lease holder that stopped: resuming it');
      this.o.audit.append({ kind: 'rollout.resumed', actor: 'tightloop', resource: `service:${r.service}`, data: { rollout: r.id, deployId: r.deployId, version: r.version, resumed: r.resumed } });
      this.run(r, this.resume(r, cfg, deploy));
      n++;
    }
    return n;
  }

  /** Ends a rollout and waits for its row (resumeRollouts: a refused write stops the start). */
  private async settle(r: Rollout, status: RolloutStatus, reason: string): Promise<void> {
    this.finish(r, status, reason);
    await this.writes;
  }

  /** Where a resumed rollout goes on: rolled back, promoted, or driven from its first step without a pass. */
  private async resume(r: Rollout, cfg: ServiceConfig, deploy: Deploy): Promise<Rollout> {
    const maxDurationS = r.verifyMaxDurationS ?? cfg.verifyMaxDurationS;
    if (deploy.status === 'rolled_back') {
      this.finish(r, 'rolled_back', 'rolled back before tightloop restarted');
      return r;
    }
    for (const step of r.steps) {
      const last = step.verdicts.at(-1)?.outcome;
      const passed = last === 'pass' || step.promotedWithoutEvidence === true;
      // The step's recorded deploy action: failed by itself (not one a restart interrupted) is a
      // failed step; succeeded, its weight is set (the process stopped while verifying it).
      const run = step.runId !== null && !passed ? await this.o.actions.get(step.runId).catch((err: unknown) => {
        this.o.log.warn({ err, rollout: r.id, run: step.runId }, 'rollout: cannot read the deploy action of a step; judging the step by its verdicts');
        return null;
      }) : null;
      const runFailed = run !== null && last === undefined && run.status !== 'succeeded' && run.error !== INTERRUPTED;
      if (deploy.status === 'failed' || last === 'fail' || (last === 'inconclusive' && cfg.onInconclusive === 'rollback') || runFailed) {
        await this.rollBack(r, deploy, cfg, `verification or deploy action failed at ${step.weight} % before tightloop restarted; rolled back after it`);
        return r;
      }
      if (!passed) return this.drive(r, cfg, deploy, maxDurationS, r.steps.indexOf(step), run?.status === 'succeeded');
    }
    return this.promote(r, cfg, deploy);
  }

  /**
   * Writes a rollout's current state behind the caller (in order; a failure is logged). The
   * promise settles when this write did: rejected when it failed (e.g. `lease_lost`).
   */
  private save(r: Rollout, insert = false): Promise<void> {
    const db = this.db;
    if (db === undefined) return Promise.resolve();
    const row = { id: r.id, deploy_id: r.deployId, service: r.service, version: r.version, status: r.status, started_at: r.startedAt, updated_at: now(), data: JSON.stringify(r) };
    const fence = this.o.fence;
    const write = async (tx: Kysely<RolloutDatabase>): Promise<void> => {
      await fence?.(tx);
      if (insert) await tx.insertInto('rollout_rollouts').values(row).execute();
      else await tx.updateTable('rollout_rollouts').set({ status: row.status, updated_at: row.updated_at, data: row.data }).where('id', '=', r.id).execute();
    };
    const done = this.writes.then(() => (fence === undefined ? write(db) : db.transaction().execute(write)));
    this.writes = done.catch((err: unknown) => this.o.log.error({ err, rollout: r.id }, 'cannot store a rollout'));
    return done;
  }

  /** Subscribes to verdicts: deploys made elsewhere that fail get their rollback action. */
  attach(): void {
    this.o.deploys.events.on('deploy.verdict', this.onVerdict);
    this.o.actions.events.on('action.finished', this.onActionFinished);
  }

  private track(p: Promise<unknown>): void {
    const q = p.catch((err: unknown) => this.o.log.error({ err }, 'rollout: background work failed'));
    this.pendingWork.add(q);
    void q.finally(() => this.pendingWork.delete(q));
  }

  list(): Rollout[] {
    return [...this.rollouts.values()].sort((a, b) => b.startedAt.localeCompare(a.startedAt));
  }

  get(id: string): Rollout {
    const r = this.rollouts.get(id) ?? [...this.rollouts.values()].find((x) => x.deployId === id);
    if (r === undefined) throw apiError('not_found', `rollout ${id} not found`);
    return r;
  }

  /** Resolves when the rollout has ended. */
  async wait(id: string): Promise<Rollout> {
    const r = this.get(id);
    return (await this.running.get(r.id)) ?? r;
  }

  /** Records the deploy and starts the rollout in the background; answers at once. */
  async start(input: RolloutInput, who: Actor): Promise<Rollout> {
    if (this.closed) throw apiError('unavailable', 'tightloop is shutting down');
    if (who.role !== 'admin' && who.role !== 'member') throw apiError('forbidden', 'a rollout needs the member or admin role');
    const cfg = findService(this.o.services(), input.service);
    if (cfg.deployAction === null) throw apiError('no_deploy_action', `service ${cfg.name} names no deployAction`);
    for (const r of this.rollouts.values()) {
      if (r.service === cfg.name && r.status === 'running') throw conflict(`a rollout of ${cfg.name} is running (${r.id}: ${r.version})`);
    }
    const environment = input.environment ?? cfg.environment;
    let previous: string | null;
    let rollbackTo: string | null;
    // What serves now: the local actuator's live version (a process tightloop runs and health-checks),
    // else the latest explicitly recorded version that did not fail — never one known only from
    // telemetry. A rollback restores the live version, else only one seen serving healthily.
    if (isLocal(cfg) && this.o.actuator !== undefined) {
      previous = this.o.actuator.liveVersion(cfg.name);
      rollbackTo = previous;
    } else {
      rollbackTo = await this.o.deploys.rollbackTarget({ id: '', service: cfg.name, environment, version: input.version, startedAt: now() });
      const recorded = (await this.o.deploys.list({ service: cfg.name, environment, limit: 100 }))
        .find((d) => d.source !== 'implicit' && d.status !== 'failed' && d.status !== 'rolled_back');
      previous = recorded?.version ?? rollbackTo;
    }
    if (previous === input.version) throw conflict(`${cfg.name} ${input.version} is already live`);
    const deploy = await this.o.deploys.record({
      service: cfg.name, version: input.version, environment, source: 'rollout', previousVersion: previous, actor: who.userName,
      commit: input.commit ?? null, commitTime: input.commitTime ?? null, url: input.url ?? null, verify: false,
    });
    const steps = previous === null ? [100] : (input.steps ?? cfg.steps);
    const r: Rollout = {
      id: ulid(), deployId: deploy.id, service: cfg.name, version: input.version, previousVersion: previous, rollbackTo, environment, actor: who.userName,
      status: 'running', steps: steps.map((w) => ({ weight: w, runId: null, verdicts: [] })), verifyMaxDurationS: input.verifyMaxDurationS ?? cfg.verifyMaxDurationS,
      rollbackDeployId: null, rollbackRunId: null,
      rollbackVerdict: null, reason: null, startedAt: now(), finishedAt: null,
    };
    this.rollouts.set(r.id, r);
    await this.save(r, true);
    this.o.audit.append({ kind: 'rollout.started', actor: who.userName, resource: `service:${cfg.name}`, data: { rollout: r.id, deployId: deploy.id, version: input.version, previousVersion: previous, rollbackTo, steps } });
    this.run(r, this.drive(r, cfg, deploy, r.verifyMaxDurationS ?? cfg.verifyMaxDurationS));
    return { ...r };
  }

  /** Tracks a rollout's drive; an error ends it `failed`. */
  private run(r: Rollout, drive: Promise<Rollout>): void {
    const p = drive.catch((err: unknown) => {
      this.o.log.error({ err, rollout: r.id }, 'rollout failed');
      this.finish(r, 'failed', (err as Error).message);
      return r;
    });
    this.running.set(r.id, p);
    void p.finally(() => this.running.delete(r.id));
  }

  /**
   * In a cluster, a node that stops (it lost the lease, or it is shut down) leaves its rollouts
   * `running` for the next holder to resume: it ends none of them.
   */
  private handingOver(): boolean {
    return this.closed && this.o.fence !== undefined;
  }

  private finish(r: Rollout, status: RolloutStatus, reason: string | null): void {
    if (r.status !== 'running' || this.handingOver()) return;
    r.status = status;
    r.reason = reason;
    r.finishedAt = now();
    void this.save(r);
    this.o.audit.append({ kind: `rollout.${status}`, actor: 'tightloop', resource: `service:${r.service}`, data: { rollout: r.id, deployId: r.deployId, version: r.version, previousVersion: r.previousVersion, reason, rollbackDeployId: r.rollbackDeployId } });
  }

  private async runAction(name: string, params: Record<string, string | number>, deployId: string, requireApproval = false): Promise<ActionRun> {
    const { run, done } = await this.o.actions.start(name, params, SYSTEM_ACTOR, { deployId, ignoreUnknown: true, requireApproval });
    this.ownRuns.add(run.id);
    return done;
  }

  /**
   * Drives the steps from `from` on. Each step's run and each verdict are stored before the
   * rollout acts on them (a refused write, e.g. `lease_lost`, stops it): what resumeRollouts()
   * continues from.
   */
  private async drive(r: Rollout, cfg: ServiceConfig, deploy: Deploy, maxDurationS: number, from = 0, weightSet = false): Promise<Rollout> {
    const base = { SERVICE: r.service, VERSION: r.version, ...(r.previousVersion === null ? {} : { PREVIOUS_VERSION: r.previousVersion }) };
    for (const step of r.steps.slice(from)) {
      if (this.closed) return r;
      // Resumed while this step was being verified: its deploy action had succeeded (recorded
      // before its verification began), so its weight is set; the step is verified, not run again.
      const verifying = weightSet && step === r.steps[from];
      if (!verifying) {
        const run = await this.runAction(cfg.deployAction ?? 'local-deploy', { ...base, WEIGHT: step.weight }, deploy.id);
        if (this.closed) return r; // a run ended by the shutdown is no verdict on the version
        step.runId = run.id;
        await this.save(r);
        if (run.status !== 'succeeded') {
          await this.rollBack(r, deploy, cfg, `deploy action ${run.action} ${run.status} at ${step.weight} %: ${run.error ?? ''}`.trim());
          return r;
        }
        this.o.audit.append({ kind: 'rollout.step', actor: 'tightloop', resource: `service:${r.service}`, data: { rollout: r.id, deployId: deploy.id, weight: step.weight, run: run.id } });
        if (cfg.warmupS > 0) await new Promise((resolve) => setTimeout(resolve, cfg.warmupS * 1000));
      }
      // A resumed step counts the holds it had already made.
      let holds = step.verdicts.filter((x) => x.outcome === 'inconclusive').length;
      for (;;) {
        const v = await this.o.deploys.verify(deploy.id, { maxDurationS });
        const outcome = v.outcome ?? 'inconclusive';
        step.verdicts.push({ outcome, verificationId: v.id, reason: v.reason, at: now() });
        await this.save(r);
        if (outcome === 'pass') break;
        if (outcome === 'fail' || cfg.onInconclusive === 'rollback') {
          await this.rollBack(r, deploy, cfg, `verification ${outcome} at ${step.weight} %${v.reason === null ? '' : `: ${v.reason}`}`);
          return r;
        }
        if (cfg.onInconclusive === 'promote') {
          // The service chose to go on without evidence: recorded, audited, shown as such.
          step.promotedWithoutEvidence = true;
          r.promotedWithoutEvidence = true;
          await this.save(r);
          this.o.audit.append({ kind: 'rollout.promoted_without_evidence', actor: 'tightloop', resource: `service:${r.service}`, data: { rollout: r.id, deployId: deploy.id, weight: step.weight, reason: v.reason } });
          break;
        }
        if (holds >= cfg.maxHolds) {
          // No evidence either way after every hold: stay at this weight and tell people.
          const reason = `held at ${step.weight} %: verification inconclusive ${holds + 1} time(s)${v.reason === null ? '' : ` (${v.reason})`}; not promoted without evidence`;
          this.finish(r, 'held', reason);
          this.tell({
            kind: 'rollout.held', rolloutId: r.id, deployId: deploy.id, service: r.service, environment: r.environment, version: r.version, weight: step.weight,
            title: `rollout of ${r.service} ${r.version} held at ${step.weight} %`,
            text: `${reason}. Run \`tightloop deploy start\` again with more traffic or \`onInconclusive: promote\`, or roll back.`,
          });
          return r;
        }
        holds++;
      }
    }
    return this.promote(r, cfg, deploy);
  }

  /** Every step passed (or was promoted without evidence): the deploy is finished, the previous local version stopped. */
  private async promote(r: Rollout, cfg: ServiceConfig, deploy: Deploy): Promise<Rollout> {
    await this.o.deploys.markFinished(deploy.id);
    if (r.previousVersion !== null && isLocal(cfg) && this.o.actuator !== undefined && this.isLocalAction(cfg.deployAction)) {
      try {
        await this.o.actuator.stop(r.service, r.previousVersion);
      } catch (err) {
        this.o.log.warn({ err, service: r.service }, 'rollout: cannot stop the previous version');
      }
    }
    this.finish(r, 'promoted', null);
    return r;
  }

  private tell(n: RolloutNotice): void {
    this.o.log.warn({ rollout: n.rolloutId, service: n.service, version: n.version, weight: n.weight }, n.title);
    if (this.o.notify !== undefined) this.track(this.o.notify(n));
  }

  private isLocalAction(name: string | null): boolean {
    try {
      return name !== null && this.o.actions.definition(name).kind === 'local';
    } catch { // an action no longer configured is not local
      return false;
    }
  }

  private async rollBack(r: Rollout, deploy: Deploy, cfg: ServiceConfig, reason: string): Promise<void> {
    this.handled.add(deploy.id);
    const target = r.rollbackTo === undefined ? r.previousVersion : r.rollbackTo;
    if (target === null || cfg.rollbackAction === null) {
      this.finish(r, 'failed', `${reason}; nothing to roll back to${target === null && r.previousVersion !== null ? ` (${r.previousVersion} was never seen serving healthily)` : ''}`);
      return;
    }
    const res = await this.rollbackDeploy(await this.o.deploys.get(deploy.id), target, cfg, false);
    r.rollbackRunId = res.run.id;
    r.rollbackDeployId = res.rollbackDeploy?.id ?? null;
    r.rollbackVerdict = res.verification?.outcome ?? null;
    if (res.run.status !== 'succeeded') this.finish(r, 'failed', `${reason}; rollback action ${res.run.action} ${res.run.status}: ${res.run.error ?? ''}`.trim());
    else this.finish(r, 'rolled_back', reason);
  }

  /**
   * The version a rollback of `bad` restores: for a rollout's deploy, the version the rollout
   * replaced; otherwise `DeployApi.rollbackTarget`. Never `bad.previousVersion`, never a request's.
   */
  async rollbackTargetOf(bad: Deploy): Promise<string | null> {
    if (bad.source === 'rollout') {
      const r = [...this.rollouts.values()].find((x) => x.deployId === bad.id);
      if (r !== undefined) return r.rollbackTo === undefined ? r.previousVersion : r.rollbackTo;
    }
    return this.o.deploys.rollbackTarget(bad);
  }

  /**
   * Runs the service's rollback action for `bad` back to `target` (from rollbackTargetOf or the
   * rollout), then records and verifies the rollback deploy. Returns when the rollback's
   * verification has decided (or the action did not succeed).
   */
  private async rollbackDeploy(bad: Deploy, target: string | null, cfg: ServiceConfig, requireApproval: boolean): Promise<RollbackResult> {
    if (target === null || cfg.rollbackAction === null) throw apiError('no_rollback', `deploy ${bad.id} has no version to roll back to or its service no rollbackAction`);
    const run = await this.runAction(cfg.rollbackAction, { SERVICE: bad.service, VERSION: bad.version, PREVIOUS_VERSION: target }, bad.id, requireApproval);
    if (run.status !== 'succeeded') {
      this.o.log.error({ deploy: bad.id, run: run.id, status: run.status, error: run.error }, 'rollback action did not succeed');
      return { run, rollbackDeploy: null, verification: null };
    }
    return this.completeRollback(bad, target, cfg, run);
  }

  /** After a successful rollback run to `target`: the rollback's own deploy record, marks, verification. */
  private async completeRollback(bad: Deploy, target: string, cfg: ServiceConfig, run: ActionRun): Promise<RollbackResult> {
    const rb = await this.o.deploys.record({
      service: bad.service, version: target, environment: bad.environment, source: 'rollback', rollbackOf: bad.id,
      previousVersion: bad.version, actor: 'tightloop', verify: false,
    });
    await this.o.deploys.markRolledBack(bad.id, rb.id);
    await this.o.deploys.markFinished(rb.id);
    this.o.audit.append({ kind: 'deploy.rolled_back', actor: 'tightloop', resource: `service:${bad.service}`, data: { deployId: bad.id, version: bad.version, rollbackDeployId: rb.id, toVersion: target, run: run.id } });
    const verification = await this.o.deploys.verify(rb.id, { maxDurationS: cfg.verifyMaxDurationS });
    if (verification.outcome === 'fail') this.o.log.error({ deploy: rb.id }, 'the rollback itself failed verification; not rolling back again');
    return { run, rollbackDeploy: rb, verification };
  }

  private async adoptRollback(record: ActionRunRecord): Promise<void> {
    const run = await this.o.actions.get(record.id);
    const bad = await this.o.deploys.get(run.deployId ?? '');
    let cfg: ServiceConfig;
    try {
      cfg = findService(this.o.services(), bad.service);
    } catch { // the service left the configuration: no rollback of it to adopt
      return;
    }
    if (cfg.rollbackAction !== run.action || bad.status !== 'failed' || bad.source === 'implicit') return;
    // Recorded as the deploy's rollback only when it restored the one version tightloop would have chosen.
    const target = await this.rollbackTargetOf(bad);
    if (target === null || run.params.PREVIOUS_VERSION !== target) return;
    this.o.log.info({ deploy: bad.id, run: run.id }, 'rollback run finished: recording the rollback');
    await this.completeRollback(bad, target, cfg, run);
  }

  /**
   * Rollbacks a previous process left undone (it crashed, or it held the cluster's lease and
   * died): an explicitly recorded deploy that failed its verification and is not rolled back,
   * whose rollback run was interrupted — or never started, when its verdict came within
   * RESUME_UNSTARTED_MS — is rolled back again, as the verdict would have had it. Its action runs
   * once more (the interrupted run's outcome is unknown; a rollback action restores one version,
   * so a second run of it is harmless: docs/cluster.md). A run that ended by itself (failed,
   * denied, pending approval) is left as it is. Call after attach(), on the lease holder.
   */
  async resumeRollbacks(): Promise<number> {
    let n = 0;
    const recent = await this.o.deploys.list({ from: new Date(Date.now() - RESUME_WITHIN_MS).toISOString(), limit: 1000 });
    for (const d of recent) {
      if (d.status !== 'failed' || d.source === 'implicit' || d.source === 'rollout' || d.source === 'rollback' || this.handled.has(d.id)) continue;
      const runs = await this.o.actions.listRuns({ deployId: d.id, limit: 20 });
      const interrupted = runs.length > 0 && runs.every((r) => r.status === 'failed' && r.error === INTERRUPTED);
      const unstarted = runs.length === 0 && d.decidedAt !== null && Date.now() - Date.parse(d.decidedAt) < RESUME_UNSTARTED_MS;
      if (!interrupted && !unstarted) continue;
      this.o.log.warn({ deploy: d.id, service: d.service, version: d.version, interrupted: runs.map((r) => r.id) }, 'deploy failed verification and its rollback was left undone by a previous process: rolling back');
      this.track(this.rollbackExternal(d));
      n++;
    }
    return n;
  }

  private async rollbackExternal(deploy: Deploy): Promise<void> {
    if (this.closed || this.handled.has(deploy.id)) return;
    let cfg: ServiceConfig;
    try {
      cfg = findService(this.o.services(), deploy.service);
    } catch {
      return; // no rollback configured for this service
    }
    if (cfg.rollbackAction === null) return;
    this.handled.add(deploy.id);
    const target = await this.o.deploys.rollbackTarget(deploy);
    if (target === null) {
      this.o.log.warn({ deploy: deploy.id }, 'deploy failed verification but no earlier version was seen serving healthily: nothing to roll back to');
      return;
    }
    this.o.log.warn({ deploy: deploy.id, service: deploy.service, version: deploy.version, toVersion: target, mode: cfg.rollback }, 'deploy failed verification: rolling back');
    await this.rollbackDeploy(deploy, target, cfg, cfg.rollback === 'confirm');
  }

  /** Stops reacting; rollouts still running are recorded as aborted (waits at most `graceMs` for them). */
  async close(graceMs = 3_000): Promise<void> {
    this.closed = true;
    this.o.deploys.events.off('deploy.verdict', this.onVerdict);
    this.o.actions.events.off('action.finished', this.onActionFinished);
    // Single node: a rollout still running is recorded aborted. In a cluster finish() leaves it
    // running: the next lease holder resumes it.
    for (const r of this.rollouts.values()) this.finish(r, 'aborted', 'tightloop shut down during the rollout');
    const grace = new Promise<void>((resolve) => {
      setTimeout(resolve, graceMs).unref();
    });
    await Promise.race([Promise.allSettled([...this.running.values(), ...this.pendingWork]), grace]);
    await this.writes;
  }
}
