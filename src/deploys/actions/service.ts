/**
 * ActionService: validates a run's parameters, applies the action's approval policy, runs it in
 * the background, stores every run and writes it to the audit chain. A run ends `succeeded` only
 * when the runner says so; anything else (non-zero exit, timeout, HTTP error, shutdown) is
 * `failed`. Running needs the member or admin role (viewers only look).
 *
 * Approval is a minimal engine of its own: the gateway's access requests are bound to database
 * resources and grants, which an action run has neither of. A run of an `approval: required`
 * action waits as `pending_approval` until another admin approves it (nobody approves their own
 * run) or anyone with the admin role denies it.
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { ulid } from 'ulid';
import { apiError, conflict, forbidden, notFound } from '../../core/app-error.js';
import { toTimestamp, type Database } from '../../state/index.js';
import { ActionEvents, type ActionRunRecord } from '../contract.js';
import { findAction, loadActions, type ActionCatalog, type ActionDefinition } from './definitions.js';
import { validateParams, type ParamValues } from './params.js';
import { runCommand, runLocal, runWebhook, type LocalDriver, type RunOutcome } from './runners.js';
import { actionsDb, type ActionRunsTable, type ActionsDatabase } from './storage.js';

/** The slice of the audit chain this module writes to (the gateway's AuditChain fits). */
export interface AuditSink {
  append(event: { kind: string; actor?: string | null; resource?: string | null; data?: Record<string, unknown> }): unknown;
}

/** Who asks: an API principal, or tightloop itself (`userId` null). */
export interface Actor {
  userId: string | null;
  userName: string;
  role: string;
}

export const SYSTEM_ACTOR: Actor = { userId: null, userName: 'tightloop', role: 'admin' };

export interface ActionRun extends ActionRunRecord {
  kind: string;
  requestedAt: string;
  durationMs: number | null;
  output: string;
  outputTruncated: boolean;
  error: string | null;
  decidedBy: string | null;
  note: string | null;
}

export interface ActionServiceOptions {
  db: Kysely<Database>;
  actionsDir: string;
  audit: AuditSink;
  log: Logger;
  local?: LocalDriver;
  /** Output kept in an audit record (the stored run keeps the action's own cap). */
  auditOutputBytes?: number;
  /**
   * A cluster: runs first in the transaction of every write of a run (stored, started, its
   * outcome, approved or denied, marked interrupted) and throws `lease_lost` when this node lost
   * the lease: a node that lost it starts no action (a rollback, a deploy step) and stores no
   * late outcome over what the new holder decided.
   */
  fence?: (tx: Kysely<Database>) => Promise<void>;
}

export interface StartOptions {
  deployId?: string | null;
  /** Drop undeclared parameters instead of rejecting them (tightloop's own deploy/rollback calls). */
  ignoreUnknown?: boolean;
  /** Ask for approval even if the action does not require it (rollback in `confirm` mode). */
  requireApproval?: boolean;
}

function toRun(r: ActionRunsTable): ActionRun {
  return {
    id: r.id, action: r.action, kind: r.kind, params: JSON.parse(r.params) as ParamValues, actor: r.actor,
    status: r.status as ActionRun['status'], exitCode: r.exit_code === null ? null : Number(r.exit_code),
    requestedAt: r.requested_at, startedAt: r.started_at ?? r.requested_at, finishedAt: r.finished_at,
    durationMs: r.duration_ms === null ? null : Number(r.duration_ms), deployId: r.deploy_id, output: r.output,
    outputTruncated: Number(r.output_truncated) === 1, error: r.error, decidedBy: r.decided_by, note: r.note,
  };
}

/** The error of a run its process left running (a crash, or a lease holder that died): outcome unknown. */
export const INTERRUPTED = 'interrupted: tightloop restarted while it ran';

export class ActionService {
  readonly events = new ActionEvents();
  private readonly db: Kysely<ActionsDatabase>;
  private readonly abort = new AbortController();
  private readonly inFlight = new Map<string, Promise<ActionRun>>();
  /** Resolvers of runs waiting for approval (in this process). */
  private readonly waiting = new Map<string, { resolve: (r: ActionRun) => void; def: ActionDefinition }>();
  private closed = false;
  local: LocalDriver | undefined;

  constructor(private readonly opts: ActionServiceOptions) {
    this.db = actionsDb(opts.db);
    this.local = opts.local;
  }

  /** Marks runs a previous process left running as failed (their outcome is unknown). */
  async open(): Promise<void> {
    await this.fenced((db) => db.updateTable('actions_runs')
      .set({ status: 'failed', finished_at: toTimestamp(Date.now()), error: INTERRUPTED })
      .where('status', '=', 'running').execute());
  }

  /**
   * One write under the fence (a cluster: in a transaction that checks the lease first, so a
   * node that lost the lease writes nothing: `lease_lost`), else as it is.
   */
  private async fenced<T>(write: (db: Kysely<ActionsDatabase>) => Promise<T>): Promise<T> {
    const fence = this.opts.fence;
    if (fence === undefined) return write(this.db);
    return this.db.transaction().execute(async (tx) => {
      await fence(tx as unknown as Kysely<Database>);
      return write(tx);
    });
  }

  catalog(): ActionCatalog {
    return loadActions(this.opts.actionsDir);
  }

  definition(name: string): ActionDefinition {
    return findAction(this.catalog(), name);
  }

  /** Validates, stores and starts (or holds for approval) a run; `done` settles when it ends. */
  async start(name: string, input: Record<string, unknown>, who: Actor, so: StartOptions = {}): Promise<{ run: ActionRun; done: Promise<ActionRun> }> {
    if (this.closed) throw apiError('unavailable', 'tightloop is shutting down');
    if (who.role !== 'admin' && who.role !== 'member') throw forbidden('running an action needs the member or admin role');
    const def = this.definition(name);
    const params = validateParams(def.name, def.params, input, { ignoreUnknown: so.ignoreUnknown });
    const needsApproval = def.approval === 'required' || so.requireApproval === true;
    const now = toTimestamp(Date.now());
    const row: ActionRunsTable = {
      id: ulid(), action: def.name, kind: def.kind, params: JSON.stringify(params), actor: who.userName, actor_id: who.userId,
      status: needsApproval ? 'pending_approval' : 'running', exit_code: null, requested_at: now, started_at: null,
      finished_at: null, duration_ms: null, deploy_id: so.deployId ?? null, output: '', output_truncated: 0, error: null,
      decided_by: null, note: null,
    };
    await this.fenced((db) => db.insertInto('actions_runs').values(row).execute());
    if (needsApproval) {
      this.opts.audit.append({ kind: 'action.requested', actor: who.userName, resource: `action:${def.name}`, data: { run: row.id, params, deployId: row.deploy_id } });
      const done = new Promise<ActionRun>((resolve) => this.waiting.set(row.id, { resolve, def }));
      return { run: toRun(row), done };
    }
    const done = this.execute(def, row);
    return { run: { ...toRun(row), startedAt: now }, done };
  }

  private execute(def: ActionDefinition, row: ActionRunsTable): Promise<ActionRun> {
    const p = (async () => {
      const started = Date.now();
      await this.fenced((db) => db.updateTable('actions_runs').set({ status: 'running', started_at: toTimestamp(started) }).where('id', '=', row.id).execute());
      const running = toRun({ ...row, status: 'running', started_at: toTimestamp(started) });
      this.events.emit('action.started', running);
      const params = JSON.parse(row.params) as ParamValues;
      let outcome: RunOutcome;
      try {
        outcome = def.kind === 'command' ? await runCommand(def, params, this.abort.signal)
          : def.kind === 'webhook' ? await runWebhook(def, params, this.abort.signal)
            : await runLocal(def, params, this.local);
      } catch (err) {
        outcome = { ok: false, exitCode: null, output: '', outputTruncated: false, error: `runner failed: ${(err as Error).message}` };
      }
      const finished = Date.now();
      const fin: Partial<ActionRunsTable> = {
        status: outcome.ok ? 'succeeded' : 'failed', exit_code: outcome.exitCode, finished_at: toTimestamp(finished),
        duration_ms: finished - started, output: outcome.output, output_truncated: outcome.outputTruncated ? 1 : 0, error: outcome.error,
      };
      // Fenced, and only over the run as this process left it (`running`): a node that lost the
      // lease does not overwrite what the new holder decided (the run marked interrupted, and
      // its rollback run again), and a late outcome never replaces another one.
      const stored = await this.fenced((db) => db.updateTable('actions_runs').set(fin).where('id', '=', row.id).where('status', '=', 'running').executeTakeFirst());
      if (stored.numUpdatedRows === 0n) throw conflict(`action run ${row.id} was decided by another process while it ran; its outcome (${String(fin.status)}) is not stored`);
      const run = toRun({ ...row, started_at: toTimestamp(started), ...fin });
      const cap = this.opts.auditOutputBytes ?? 4096;
      this.opts.audit.append({
        kind: 'action.run', actor: row.actor, resource: `action:${def.name}`,
        data: {
          run: run.id, kind: def.kind, status: run.status, params, exitCode: run.exitCode, durationMs: run.durationMs, error: run.error,
          output: run.output.length > cap ? `${run.output.slice(0, cap)}… [truncated]` : run.output, deployId: run.deployId, approvedBy: run.decidedBy,
        },
      });
      if (!outcome.ok) this.opts.log.warn({ action: def.name, run: run.id, error: outcome.error }, 'action failed');
      this.events.emit('action.finished', run);
      return run;
    })();
    this.inFlight.set(row.id, p);
    const forget = (): void => {
      this.inFlight.delete(row.id);
    };
    p.then(forget, (err: unknown) => {
      forget();
      this.opts.log.error({ err, run: row.id }, 'cannot record an action run');
    });
    return p;
  }

  async get(id: string): Promise<ActionRun> {
    const row = await this.db.selectFrom('actions_runs').selectAll().where('id', '=', id).executeTakeFirst();
    if (row === undefined) throw notFound(`action run ${id} not found`);
    return toRun(row);
  }

  async listRuns(filter: { action?: string; status?: string; deployId?: string; limit?: number } = {}): Promise<ActionRun[]> {
    let sel = this.db.selectFrom('actions_runs').selectAll();
    if (filter.action !== undefined) sel = sel.where('action', '=', filter.action);
    if (filter.status !== undefined) sel = sel.where('status', '=', filter.status);
    if (filter.deployId !== undefined) sel = sel.where('deploy_id', '=', filter.deployId);
    const rows = await sel.orderBy('requested_at', 'desc').orderBy('id', 'desc').limit(filter.limit ?? 100).execute();
    return rows.map(toRun);
  }

  /** Resolves when the run has finished (or at once when it already has). */
  async waitFor(id: string, timeoutMs = 60_000): Promise<ActionRun> {
    const p = this.inFlight.get(id);
    if (p !== undefined) {
      const timeout = new Promise<undefined>((r) => {
        const t = setTimeout(() => r(undefined), timeoutMs);
        t.unref();
      });
      const run = await Promise.race([p, timeout]);
      if (run !== undefined) return run;
    }
    return this.get(id);
  }

  private async pending(who: Actor, id: string, verb: 'approve' | 'deny'): Promise<{ run: ActionRun; row: ActionRunsTable }> {
    const row = await this.db.selectFrom('actions_runs').selectAll().where('id', '=', id).executeTakeFirst();
    if (row === undefined) throw notFound(`action run ${id} not found`);
    if (row.status !== 'pending_approval') throw conflict(`action run ${id} is ${row.status}, not pending approval`);
    if (who.role !== 'admin') throw forbidden(`to ${verb} an action run needs the admin role`);
    if (verb === 'approve' && row.actor_id !== null && row.actor_id === who.userId) throw forbidden('you cannot approve your own action run');
    return { run: toRun(row), row };
  }

  async approve(who: Actor, id: string, note?: string): Promise<ActionRun> {
    const { row } = await this.pending(who, id, 'approve');
    const changed = await this.fenced((db) => db.updateTable('actions_runs').set({ status: 'running', decided_by: who.userName, note: note ?? null })
      .where('id', '=', id).where('status', '=', 'pending_approval').executeTakeFirst());
    if (changed.numUpdatedRows === 0n) throw conflict(`action run ${id} was decided concurrently`);
    this.opts.audit.append({ kind: 'action.approved', actor: who.userName, resource: `action:${row.action}`, data: { run: id, note } });
    const waiter = this.waiting.get(id);
    this.waiting.delete(id);
    // After a restart the definition is read again from the folder (it may have changed: the
    // approver approved these parameters of this action, which is what runs).
    const def = waiter?.def ?? this.definition(row.action);
    const done = this.execute(def, { ...row, decided_by: who.userName, note: note ?? null });
    done.then((r) => waiter?.resolve(r), () => undefined);
    return { ...toRun({ ...row, status: 'running', decided_by: who.userName, note: note ?? null }) };
  }

  async deny(who: Actor, id: string, note?: string): Promise<ActionRun> {
    const { row } = await this.pending(who, id, 'deny');
    const now = toTimestamp(Date.now());
    const changed = await this.fenced((db) => db.updateTable('actions_runs').set({ status: 'denied', decided_by: who.userName, note: note ?? null, finished_at: now })
      .where('id', '=', id).where('status', '=', 'pending_approval').executeTakeFirst());
    if (changed.numUpdatedRows === 0n) throw conflict(`action run ${id} was decided concurrently`);
    this.opts.audit.append({ kind: 'action.denied', actor: who.userName, resource: `action:${row.action}`, data: { run: id, note } });
    const run = await this.get(id);
    this.events.emit('action.finished', run);
    this.waiting.get(id)?.resolve(run);
    this.waiting.delete(id);
    return run;
  }

  /** Stops running commands (recorded failed) and waits for their records. */
  async close(): Promise<void> {
    this.closed = true;
    this.abort.abort();
    await Promise.allSettled([...this.inFlight.values()]);
  }
}
