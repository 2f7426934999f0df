import type { MessageLimits } from './wire/framer.js';
import { randomInt } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { ulid } from 'ulid';
import { statementHash } from './approvals.js';
import { AUDIT_COPY_CHARS, auditedChars, auditedName, auditedSql, auditedText } from './audit-text.js';
import { actionFor, DEFAULT_ALLOWED_FUNCTIONS, decide, describeBlock, type DecisionContext, type Finding } from './guardrails/index.js';
import { TOO_COMPLEX, TOO_DEEP, TOO_MUCH_WORK } from './guardrails/engine.js';
import type { AccessGrant } from './grants.js';
import type { Masker } from './masking/index.js';
import { mayWrite } from './effect.js';
import type { Execution, StatementInfo } from './pipeline.js';
import { Relay, type Verdict } from './relay.js';
import { ceilingError, type RowCeiling } from './row-ceiling.js';
import { resolveCredential, type Resource } from './resources.js';
import { loadCatalog, refreshCatalog } from './catalog.js';
import { lexingSettingRefusal, serverParameterRefusal } from './guardrails/lexing.js';
import { limitOptions, startupLimits } from './guardrails/session-limits.js';
import type { AuthenticatedUser } from './client-auth.js';
import { authenticate } from './session-auth.js';
import type { GatewayContext } from './context.js';
import { negotiateStartup } from './startup.js';
import { StatementLog } from './statement-log.js';
import { connectUpstream, cancelUpstream, type UpstreamConnection } from './upstream.js';
import { backendKeyData, errorResponse, parameterStatus, readyForQuery, TERMINATE, authRequest, AUTH_OK, type ErrorFields } from './wire/encode.js';
import { GatewayError, SQLSTATE, toGatewayError } from './wire/errors.js';
import { detectionTime } from './masking/budget.js';
import { auditVolume, judgingTime, type TimeBucket } from './user-bucket.js';
import type { BoundParameters } from './wire/decode.js';

/**
 * One client connection, from the first byte to close: startup and TLS, login at the gateway,
 * resource and grant checks, upstream login, then the relay. Every failure ends in an
 * ErrorResponse to this client and a closed connection; nothing here can throw out of `run`.
 */

/** Startup parameters passed through to the server; others (notably `options`) are dropped. */
const PASSED_PARAMS = ['application_name', 'client_encoding', 'DateStyle', 'TimeZone', 'IntervalStyle', 'extra_float_digits'];

/** How often an ending session repeats its CancelRequest while the upstream stays open. */
const UPSTREAM_CANCEL_EVERY_MS = 2_000;
/** How long an ending session waits for the server to close the upstream connection. */
const UPSTREAM_CLOSE_WAIT_MS = 60_000;
/** An ErrorResponse or NoticeResponse is held up to this many bytes; the field cut there is replaced whole. */
export const SERVER_NOTICE_BYTES = 64 * 1024;
/** ParameterStatus and NotificationResponse (NOTIFY payloads are under 8000 bytes) up to this many bytes. */
export const SERVER_SMALL_BYTES = 64 * 1024;

export class ClientSession {
  readonly id = ulid();
  /** The cancel key this client was given (ours, not the server's). */
  readonly key = { pid: randomInt(1, 0x7fffffff), secret: randomInt(0, 0x7fffffff) };
  userName: string | undefined;
  /** Who logged in, with which token and role (session-watch.ts ends the session when that changes). */
  who: AuthenticatedUser | undefined;
  grant: AccessGrant | undefined;
  resource: Resource | undefined;
  relay: Relay | undefined;
  private client: Socket | TLSSocket;
  private upstream: UpstreamConnection | undefined;
  private closed = false;
  private statements = 0;
  /** Statements announced by a durable `statement.start` record. */
  private starts = 0;
  private readonly openedAt = Date.now();
  private expiryTimer: NodeJS.Timeout | undefined;
  private log: StatementLog | undefined;
  /** Approval claims by statement hash (claimApproval). */
  private readonly claims = new Map<string, { settled: boolean; id: string | undefined; done: Promise<void> }>();
  /** The user's audit volume (user-bucket.ts auditVolume), charged for every record's text, values and COPY data. */
  private auditBudget: TimeBucket | undefined;
  /** COPY FROM STDIN data not yet in a `statement.copy_data` record. */
  private copy = { chunks: [] as Buffer[], bytes: 0, part: 0 };

  constructor(
    private readonly raw: Socket,
    private readonly ctx: GatewayContext,
  ) {
    this.client = raw;
    raw.on('error', () => undefined); // surfaces as 'close'
    raw.setNoDelay(true);
  }

  async run(): Promise<void> {
    try {
      await this.open();
    } catch (err) {
      this.fail(err);
    }
  }

  private get peer(): string {
    return `${this.raw.remoteAddress ?? '?'}:${this.raw.remotePort ?? '?'}`;
  }

  private async open(): Promise<void> {
    const startup = await negotiateStartup(this.raw, {
      secureContext: this.ctx.secureContext,
      onCancel: (key) => this.ctx.registry.cancel(key),
    });
    if (startup === null) return;
    this.client = startup.socket;
    this.client.once('close', () => this.shutdown('client closed'));
    const user = startup.params.get('user');
    const database = startup.params.get('database') ?? user;
    if (user === undefined || user === '') throw new GatewayError('bad_startup', 'no user name given', { fatal: true });
    if (startup.params.has('replication')) throw new GatewayError('unsupported', 'replication connections are not supported', { fatal: true });
    this.userName = user;
    // The gateway must read statement text exactly as the server will (guardrails/lexing.ts).
    const encoding = startup.params.get('client_encoding');
    const badEncoding = encoding === undefined ? undefined : lexingSettingRefusal('client_encoding', encoding);
    if (badEncoding !== undefined) throw new GatewayError('unsupported', badEncoding, { fatal: true, context: { hint: 'connect with client_encoding=UTF8 (PGCLIENTENCODING=UTF8)' } });

    const who = await authenticate(startup, user, this.ctx, this.raw.remoteAddress ?? '', (e) => this.ctx.audit.append({ kind: 'auth.failed', actor: auditedName(user), resource: auditedName(database), data: { peer: this.peer, ...e } }));
    this.client.write(authRequest(AUTH_OK));
    this.who = who;

    const resource = database === undefined ? undefined : await this.ctx.resources.get(database);
    if (resource === undefined) {
      this.ctx.audit.append({ kind: 'connection.refused', actor: user, resource: auditedName(database), data: { peer: this.peer, reason: 'unknown resource' } });
      throw new GatewayError('unknown_resource', `resource "${database ?? ''}" does not exist`, { fatal: true });
    }
    this.resource = resource;
    const grant = await this.ctx.access.grants.activeFor(who.userId, who.role, resource.id);
    if (grant === undefined) {
      this.ctx.audit.append({ kind: 'connection.refused', actor: user, resource: resource.name, data: { peer: this.peer, reason: 'no active grant' } });
      throw new GatewayError('no_grant', `no active access grant for user "${user}" on resource "${resource.name}"`, {
        fatal: true,
        context: { hint: `request one: tightloop access request ${resource.name} --mode read --for 1h --reason "..."` },
      });
    }
    this.grant = grant;
    // One user cannot take every upstream connection slot (attack round 4 #10).
    const cap = this.ctx.maxSessionsPerUser;
    if (!this.ctx.registry.claim(this, who.userId, resource.id, cap)) {
      this.ctx.audit.append({ kind: 'connection.refused', actor: user, resource: resource.name, data: { peer: this.peer, reason: 'too many sessions', limit: cap } });
      throw new GatewayError('too_many_sessions', `too many gateway sessions for user "${user}" on resource "${resource.name}" (at most ${cap} at once: gateway.maxSessionsPerUser)`, { fatal: true });
    }

    // Session limits: the resource's, or lower ones the client asked for at startup; a higher one
    // refuses the login (guardrails/session-limits.ts).
    const limits = resource.policy.limits;
    const asked = startupLimits(startup.params, limits);
    if (asked.refusal !== undefined) {
      this.ctx.audit.append({ kind: 'connection.refused', actor: user, resource: resource.name, data: { peer: this.peer, reason: 'session limit', detail: asked.refusal } });
      throw new GatewayError('session_limit', `blocked by guardrail "session-limit": ${asked.refusal}`, { fatal: true });
    }

    const params: Record<string, string> = { database: resource.database };
    // What the client set reaches the server, and a statement can read it back
    // (`current_setting('application_name')`): recorded whole in `connection.open` (attack round 8).
    const clientSettings: Record<string, string> = {};
    for (const p of PASSED_PARAMS) {
      const v = startup.params.get(p);
      if (v !== undefined) params[p] = clientSettings[p] = v;
    }
    // The parser's string rules and text encoding, whatever the database's defaults (a client
    // that names no encoding would get the server's); both are checked again below.
    params.client_encoding ??= 'UTF8';
    const options = ['-c standard_conforming_strings=on', ...limitOptions(limits, asked.values)];
    // Defence in depth under a read grant: the server refuses writes even if a rule missed one.
    if (grant.mode === 'read') options.push('-c default_transaction_read_only=on');
    params.options = options.join(' ');
    const password = await resolveCredential(resource.credentialRef, this.ctx.resources.credentialSources);
    this.upstream = await connectUpstream(resource, resource.user, password, params);
    const up = this.upstream;
    up.socket.once('close', () => {
      // What the server sent before closing (its FATAL error, say) reaches the client first.
      this.relay?.upstreamClosed();
      this.shutdown('server closed', true);
    });
    if (this.closed) {
      // The client left while the upstream login ran: the slot stays taken until it is closed.
      this.closeUpstream(false);
      return;
    }
    for (const [k, v] of up.parameters) {
      const refusal = serverParameterRefusal(k, v);
      if (refusal !== undefined) throw new GatewayError('lexing_mismatch', refusal, { fatal: true });
    }
    const masker = this.ctx.maskerFor(resource);
    // Column rules follow lineage through views, and columns are classified from samples of their
    // values (cached per resource). Without a recent enough catalog the session waits for it on
    // its own connection, and a failed load refuses it (never weaker masking); a merely stale one
    // is refreshed in the background on a connection of its own.
    const catalog = masker.exempts(who.role) ? 'fresh' : masker.catalogState;
    if (catalog === 'missing') masker.setCatalog(await loadCatalog(up, (t) => masker.sampleWanted(t)));
    else if (catalog === 'stale') refreshCatalog(resource, password, masker, this.ctx.log);
    if (this.closed) return;

    const hello: Buffer[] = [];
    for (const [k, v] of up.parameters) hello.push(parameterStatus(k, v));
    hello.push(...up.notices, backendKeyData(this.key.pid, this.key.secret), readyForQuery('I'));
    this.client.write(Buffer.concat(hello));

    const masking = masker.exempts(who.role) ? undefined : masker;
    const decisionCtx: DecisionContext = {
      mode: grant.mode,
      rules: resource.policy.guardrails.rules,
      modes: resource.policy.guardrails.modes,
      role: resource.policy.guardrails.roles[who.role as 'admin' | 'member' | 'viewer'],
      maskingActive: masking !== undefined,
      allowFunctions: new Set([...DEFAULT_ALLOWED_FUNCTIONS, ...resource.policy.guardrails.allowFunctions]),
      limits,
    };
    this.ctx.registry.add(this);
    this.auditBudget = auditVolume.of(who.userId);
    this.log = new StatementLog(this.ctx.audit, { actor: user, resource: resource.name, session: this.id }, this.ctx.auditWindowMs);
    this.ctx.audit.append({
      kind: 'connection.open', actor: user, resource: resource.name, session: this.id,
      data: { peer: this.peer, tls: startup.tls, auth: who.method, grant: grant.id, mode: grant.mode, application: startup.params.get('application_name') ?? null, settings: clientSettings, masking: masking !== undefined },
    });
    this.armExpiry(who);

    const hash = (sql: string): string => statementHash(sql);
    this.relay = new Relay(this.client, up.socket, masking, {
      judge: (sql, protocol) => this.judge(sql, protocol, decisionCtx, who, resource, hash, masking),
      refuse: (what) => {
        this.ctx.audit.append({ kind: 'statement', actor: user, resource: resource.name, session: this.id, data: { decision: 'block', rule: 'protocol', detail: what } });
        return { severity: 'ERROR', code: SQLSTATE.insufficientPrivilege, message: `blocked: the ${what} is not allowed through the gateway` };
      },
      finished: (exec) => this.finished(exec),
      fatal: (err) => this.fail(err),
      beforeRun: (info, protocol, params) => this.beforeRun(info, protocol, params),
      overCeiling: (info, params, rows, ceiling, suspended) => this.overCeiling(info, params, rows, ceiling, suspended, who, resource),
      unknownCeiling: () => this.sessionCeiling(decisionCtx, resource),
      copyIn: (chunk) => this.copyIn(chunk),
      hold: () => this.auditHold(),
    }, this.upstreamLimits(), this.ctx.clientLimits, detectionTime.of(who.userId), { user: who.userId, scheduler: this.ctx.chunks });
    this.relay.start(startup.reader.detach(), up.leftover);
  }

  private judge(sql: string, protocol: 'simple' | 'extended', decisionCtx: DecisionContext, who: { userId: string; userName: string }, resource: Resource, hash: (s: string) => string, masking?: Masker): Verdict {
    // Judging time is the user's (attack round 8 G1): all of a user's sessions draw it from one
    // bucket; while it is empty, the statement waits for it to refill instead of taking the thread.
    // So does the user's audit volume (round 9 H2): while it is in debt, the next statement waits.
    const judging = judgingTime.of(who.userId);
    const refill = Math.max(judging.msUntilAvailable(), auditVolume.of(who.userId).msUntilAvailable());
    if (refill > 0) return { wait: new Promise((resolve) => setTimeout(resolve, Math.ceil(refill)).unref()) };
    const facts = judging.charge(() => this.ctx.guardrails.analyze(sql));
    let decision = decide(facts, decisionCtx);
    // COPY output is only scanned by content detectors: no COPY of what a column rule masks.
    // Judged per COPY statement: other statements of the string have column plans of their own.
    let copyRefusal: string | undefined;
    let copyAt = 1;
    if (masking !== undefined) {
      facts.kinds.forEach((kind, i) => {
        if (kind !== 'CopyStmt' || copyRefusal !== undefined) return;
        const lineage = facts.statementLineage === undefined ? facts.lineage : facts.statementLineage[i];
        copyRefusal = masking.copyRefusal(lineage);
        copyAt = i + 1;
      });
    }
    if (copyRefusal !== undefined && decision.action !== 'block') {
      const finding = { rule: 'masking-bypass' as const, detail: copyRefusal, statement: copyAt };
      decision = { action: 'block', finding, applied: [...decision.applied, { finding, action: 'block' }] };
    }
    // Masked values written where a later read would not mask them (masker.ts writeRefusal).
    const writeRefusal = masking !== undefined && decision.action !== 'block' ? masking.writeRefusal(facts.writes) : undefined;
    if (writeRefusal !== undefined) {
      const finding = { rule: 'masking-bypass' as const, detail: writeRefusal.detail, statement: writeRefusal.statement };
      decision = { action: 'block', finding, applied: [...decision.applied, { finding, action: 'block' }] };
    }
    // Masked values used as quantities: row counts, LIMIT, window numbering (masker.ts quantityRefusal).
    const quantityRefusal = masking !== undefined && decision.action !== 'block' ? masking.quantityRefusal(facts.quantities) : undefined;
    if (quantityRefusal !== undefined) {
      const finding = { rule: 'masking-bypass' as const, detail: quantityRefusal.detail, statement: quantityRefusal.statement };
      decision = { action: 'block', finding, applied: [...decision.applied, { finding, action: 'block' }] };
    }
    const info: StatementInfo = { sql, facts, decision };
    // A counted write runs under the row ceiling unless an approval of this very text is used
    // up by this run (an approval of an earlier refusal: approve → run it again).
    if (facts.countedWrite === true && decision.action !== 'block' && decision.action !== 'approve') {
      const ceiling = this.sessionCeiling(decisionCtx, resource);
      if (ceiling !== undefined) {
        const claim = ceiling.action === 'approve' ? this.claimApproval(who, resource, hash(sql)) : { id: undefined };
        if ('wait' in claim) return { wait: claim.wait };
        if (claim.id !== undefined) info.approvedOnce = true;
        else info.rowCeiling = ceiling;
      }
    }
    if (decision.action === 'allow') return { info };
    const rule = decision.finding?.rule;
    if (decision.action === 'warn') {
      return { info, notice: { severity: 'WARNING', code: '01000', message: `guardrail "${rule ?? ''}": ${decision.finding?.detail ?? ''} (allowed, audited)` } };
    }
    const base = { actor: who.userName, resource: resource.name, session: this.id };
    if (decision.action === 'approve') {
      const h = hash(sql);
      // An approval is for one run: SQL PREPARE would keep it for any number of EXECUTEs, and a
      // protocol statement gets one Bind (relay.ts).
      if (facts.kinds.includes('PrepareStmt')) {
        const detail = `${decision.finding?.detail ?? ''}: a statement that needs approval cannot be PREPAREd (an approval is for one run; send the statement itself)`;
        this.ctx.audit.append({ kind: 'statement', ...base, data: { protocol, ...auditedSql(facts.normalized), fingerprint: facts.fingerprint, ...this.recordedText(sql, undefined), decision: 'block', rule, detail } });
        return { info, error: { severity: 'ERROR', code: SQLSTATE.insufficientPrivilege, message: `blocked by guardrail "${rule ?? ''}": ${detail}` } };
      }
      const claim = this.claimApproval(who, resource, h);
      if ('wait' in claim) return { wait: claim.wait };
      if (claim.id !== undefined) return { info: { ...info, approvedOnce: true } };
      // The request names every construct that needs approval, in every statement of the text
      // (attack round 4 #11: "ddl: CREATE" hid a DROP and a TRUNCATE after it).
      const held = heldFor(decision);
      const id = this.ctx.approvals.hold(who, { id: resource.id, name: resource.name, reviewWindowS: resource.policy.reviewWindowS }, sql, h, held);
      this.ctx.audit.append({ kind: 'statement', ...base, data: { protocol, ...auditedSql(facts.normalized), fingerprint: facts.fingerprint, ...this.recordedText(sql, undefined), decision: 'approval-required', rule, request: id } });
      return {
        info,
        error: {
          severity: 'ERROR', code: SQLSTATE.insufficientPrivilege,
          message: `statement held for approval by guardrail "${rule ?? ''}": ${held?.detail ?? ''} (request ${id})`,
          hint: `an approver runs: tightloop access approve ${id} — then run the same statement again`,
        },
      };
    }
    this.ctx.audit.append({ kind: 'statement', ...base, data: { protocol, ...auditedSql(facts.normalized), fingerprint: facts.fingerprint, ...this.recordedText(sql, undefined), decision: 'block', rule, detail: decision.finding?.detail } });
    const tooDeep = decision.finding?.rule === 'unparseable' && (decision.finding.detail === TOO_DEEP || decision.finding.detail === TOO_MUCH_WORK);
    const tooComplex = decision.finding?.rule === 'unparseable' && decision.finding.detail === TOO_COMPLEX;
    return { info, error: { severity: 'ERROR', code: tooDeep ? '54001' : tooComplex ? '54000' : SQLSTATE.insufficientPrivilege, message: describeBlock(decision) } };
  }

  /** `auditedText` (audit-text.ts), its text and values charged to the user's audit volume. */
  private recordedText(sql: string | undefined, params: BoundParameters | undefined): ReturnType<typeof auditedText> {
    const t = auditedText(sql, params);
    this.auditBudget?.spend(auditedChars(t));
    return t;
  }

  /**
   * While the user's audit volume is in debt, a Bind (relay.ts `hold`) waits for it to refill:
   * a prepared statement executed again and again with large values is not judged again.
   */
  private auditHold(): Promise<void> | undefined {
    const ms = this.auditBudget?.msUntilAvailable() ?? 0;
    return ms > 0 ? new Promise((resolve) => setTimeout(resolve, Math.ceil(ms)).unref()) : undefined;
  }

  /**
   * An approval of this statement for this run. Claiming one waits on the state store
   * (approvals.ts): the first judging starts the claim and tells the relay to wait (Verdict.wait);
   * the relay judges the same message again once it settled, and gets the outcome here — the
   * request id, or undefined (none, or the claim failed: held as unapproved).
   */
  private claimApproval(who: { userId: string; userName: string }, resource: Resource, h: string): { id: string | undefined } | { wait: Promise<void> } {
    const running = this.claims.get(h);
    if (running !== undefined) {
      if (!running.settled) return { wait: running.done };
      this.claims.delete(h);
      return { id: running.id };
    }
    if (!this.ctx.approvals.offered(who, resource, h)) return { id: undefined };
    const claim: { settled: boolean; id: string | undefined; done: Promise<void> } = { settled: false, id: undefined, done: Promise.resolve() };
    claim.done = this.ctx.approvals.consume(who, resource, h).then((id) => {
      claim.id = id;
      claim.settled = true;
    });
    this.claims.set(h, claim);
    return { wait: claim.done };
  }

  /** The row ceiling this session's counted writes run under (undefined: the rule is off). */
  private sessionCeiling(decisionCtx: DecisionContext, resource: Resource): RowCeiling | undefined {
    const action = actionFor('row-ceiling', decisionCtx);
    if (action === 'allow') return undefined;
    return { limit: resource.policy.guardrails.maxWriteRows, action };
  }

  /**
   * A counted write changed more rows than the ceiling (the relay has not let it commit):
   * audited, then refused — held for approval under `approve` (run it again once approved) —
   * or let through with a warning under `warn`.
   */
  private overCeiling(info: StatementInfo | undefined, params: Execution['params'], rows: number, ceiling: RowCeiling, suspended: boolean, who: { userId: string; userName: string }, resource: Resource): { error?: ErrorFields; notice?: ErrorFields } {
    const detail = suspended
      ? 'a counted write executed with a row limit: its rows cannot be counted before it commits (Execute it without a row limit)'
      : `${verbOf(info)} changed ${rows} rows, over this resource's ceiling of ${ceiling.limit} (guardrails.maxWriteRows); undone`;
    const base = { actor: who.userName, resource: resource.name, session: this.id };
    const data = { protocol: 'ceiling', ...auditedSql(info?.facts.normalized), fingerprint: info?.facts.fingerprint ?? null, ...this.recordedText(info?.sql, params), rule: 'row-ceiling', detail, rows, limit: ceiling.limit };
    if (ceiling.action === 'warn' && !suspended) {
      this.ctx.audit.append({ kind: 'statement', ...base, data: { ...data, decision: 'warn' } });
      return { notice: { severity: 'WARNING', code: '01000', message: `guardrail "row-ceiling": ${detail.replace(/; undone$/, '')} (allowed, audited)` } };
    }
    if (ceiling.action === 'approve' && !suspended && info !== undefined && info.sql !== '') {
      const id = this.ctx.approvals.hold(who, { id: resource.id, name: resource.name, reviewWindowS: resource.policy.reviewWindowS }, info.sql, statementHash(info.sql), { rule: 'row-ceiling', detail, statement: 1 });
      this.ctx.audit.append({ kind: 'statement', ...base, data: { ...data, decision: 'approval-required', request: id } });
      return {
        error: ceilingError(`statement held for approval by guardrail "row-ceiling": ${detail} (request ${id})`, `an approver runs: tightloop access approve ${id} — then run the same statement again`),
      };
    }
    this.ctx.audit.append({ kind: 'statement', ...base, data: { ...data, decision: 'block' } });
    return { error: ceilingError(`blocked by guardrail "row-ceiling": ${detail}`) };
  }

  /**
   * Audit before effect: a statement that may write gets its own `statement.start` record, and
   * goes upstream only once that record is durable (group commit, see audit.ts). Provably
   * read-only statements (effect.ts) do not wait, under any grant; their outcome is recorded
   * when they finish, as for every statement.
   */
  private beforeRun(info: StatementInfo | undefined, protocol: 'simple' | 'extended', params?: Execution['params']): Promise<void> | undefined {
    if (info?.decision.action === 'block' || !mayWrite(info)) return undefined;
    this.starts++;
    const { ticket } = this.ctx.audit.append({
      kind: 'statement.start', actor: this.userName, resource: this.resource?.name, session: this.id,
      data: { protocol, n: this.starts, ...auditedSql(info?.facts.normalized), fingerprint: info?.facts.fingerprint ?? null, ...this.recordedText(info?.sql, params), decision: info?.decision.action ?? 'unknown' },
    });
    return this.ctx.audit.durable(ticket);
  }

  /**
   * COPY FROM STDIN data, recorded as it passes (attack round 8: the rows a COPY loads, e.g. into
   * a table a later statement joins against, were nowhere in the trail). In `statement.copy_data`
   * records of up to AUDIT_COPY_CHARS characters each, numbered by `part`, after the COPY's own
   * `statement.start` (`n`), the last with `end: true`: whole, as sent (text; binary as `\x` hex).
   */
  private copyIn(chunk: Buffer | null): void {
    if (chunk !== null) {
      this.copy.chunks.push(Buffer.from(chunk));
      this.copy.bytes += chunk.length;
      if (this.copy.bytes < AUDIT_COPY_CHARS) return;
    }
    this.writeCopy(chunk === null);
  }

  private writeCopy(end: boolean): void {
    const c = this.copy;
    if (c.bytes === 0 && (!end || c.part === 0)) return;
    const bytes = Buffer.concat(c.chunks, c.bytes);
    const data = isUtf8(bytes) ? bytes.toString('utf8') : `\\x${bytes.toString('hex')}`;
    this.auditBudget?.spend(data.length);
    this.ctx.audit.append({
      kind: 'statement.copy_data', actor: this.userName, resource: this.resource?.name, session: this.id,
      data: { n: this.starts, part: ++c.part, data, ...(end ? { end: true } : {}) },
    });
    this.copy = end ? { chunks: [], bytes: 0, part: 0 } : { chunks: [], bytes: 0, part: c.part };
  }

  private finished(exec: Execution, cancelled = false): void {
    this.statements++;
    const info = exec.info;
    const d = info?.decision;
    this.log?.record({
      protocol: exec.protocol,
      ...auditedSql(info?.facts.normalized),
      fingerprint: info?.facts.fingerprint ?? null,
      ...this.recordedText(info?.sql, exec.params),
      decision: d?.action ?? 'allow',
      rule: d?.finding?.rule ?? null,
      rows: exec.rows,
      durationMs: Math.round((performance.now() - exec.startedAt) * 1000) / 1000,
      masked: exec.masked,
      ...(exec.error === undefined ? {} : { error: exec.error, rowsSent: exec.sent }),
      ...(exec.prepared === undefined ? {} : { prepared: exec.prepared }),
      ...(exec.suspended === true ? { suspended: true } : {}),
      ...(cancelled ? { cancelled: true } : {}),
    });
  }

  /**
   * Ends the session when its grant runs out — unless another live grant of the same mode has
   * taken over (an extension or a fresh JIT approval), in which case the session continues.
   */
  private armExpiry(who: { userId: string; role: string }): void {
    const expiresAt = this.grant?.expiresAt;
    if (expiresAt === null || expiresAt === undefined) return;
    const ms = Math.max(0, Math.min(Date.parse(expiresAt) - Date.now(), 2 ** 31 - 1));
    this.expiryTimer = setTimeout(() => {
      const current = this.grant;
      if (current === undefined || this.resource === undefined) return;
      this.ctx.access.grants.activeFor(who.userId, who.role, this.resource.id).then(
        (next) => {
          if (next !== undefined && next.id !== current.id && next.mode === current.mode) {
            this.grant = next;
            this.ctx.audit.append({ kind: 'session.grant_renewed', actor: this.userName, resource: this.resource?.name, session: this.id, data: { from: current.id, to: next.id } });
            this.armExpiry(who);
          } else this.terminate('access grant expired');
        },
        () => this.terminate('access grant expired'),
      );
    }, ms);
  }

  /**
   * What the server may send: a result row over gateway.maxRowBytes ends the session with 54000
   * as soon as its header arrives, before any of it is held (attack round 7 F6: a 100 MB row
   * cost the gateway ~4.5 times its size while it was framed, masked and sent).
   */
  private upstreamLimits(): MessageLimits {
    const row = Math.min(this.ctx.maxRowBytes, this.ctx.maxMessageBytes);
    const rowTooLarge = `a result row is over the gateway's limit of %max bytes (gateway.maxRowBytes); select less of it (substr, length) or ask an admin to raise the limit`;
    // Attack round 8 G4: every kind the server sends has a bound on what is held. Errors and
    // notices are cut (framer.ts clip: the session goes on); a COPY OUT line is a row; a setting
    // or a notification over its bound ends the session (the server keeps both far smaller).
    const small = `a server %kind is over the gateway's limit of %max bytes`;
    return {
      max: this.ctx.maxMessageBytes,
      byType: { D: row, d: row, S: SERVER_SMALL_BYTES, A: SERVER_SMALL_BYTES },
      tooLarge: { D: rowTooLarge, d: rowTooLarge, S: small.replace('%kind', 'setting report (ParameterStatus)'), A: small.replace('%kind', 'notification (NOTIFY)') },
      clip: { types: 'EN', bytes: SERVER_NOTICE_BYTES },
    };
  }

  /** Cancels the running query upstream (a client's CancelRequest). */
  cancel(): void {
    const key = this.upstream?.key;
    if (key === undefined || this.resource === undefined) return;
    // Best effort, as PostgreSQL's own cancel is: the statement may have ended already.
    cancelUpstream(this.resource, key).catch((err: unknown) => this.ctx.log.warn({ err, session: this.id, resource: this.resource?.name }, 'gateway: cancel request upstream failed'));
  }

  /** Ends the session from the gateway's side (grant expired or revoked, shutdown). */
  terminate(reason: string): void {
    if (this.closed) return;
    this.ctx.audit.append({ kind: 'session.terminated', actor: this.userName, resource: this.resource?.name, session: this.id, data: { reason, grant: this.grant?.id } });
    this.cancel();
    this.fail(new GatewayError('session_terminated', `terminating connection: ${reason}`, { fatal: true }));
  }

  private fail(err: unknown): void {
    if (this.closed) return;
    const e = toGatewayError(err);
    if (e.code === 'internal') this.ctx.log.error({ err, session: this.id }, 'gateway session failed');
    const fields: ErrorFields = { severity: 'FATAL', code: e.sqlstate, message: e.message };
    const hint = e.context?.hint;
    if (typeof hint === 'string') fields.hint = hint;
    if (!this.client.destroyed && this.client.writable) this.client.end(errorResponse(fields));
    this.shutdown(e.message);
  }

  /**
   * Ends the upstream connection of an ending session (attack round 7 F3). A statement still
   * running there is cancelled (CancelRequest with the backend's key: the server reads nothing
   * from the connection while a statement runs, so Terminate alone would wait for its end, and an
   * aggregate or a sort sends nothing by which a closed socket would be noticed), again every
   * UPSTREAM_CANCEL_EVERY_MS until the server closes the connection. The user's session slot
   * (gateway.maxSessionsPerUser) stays taken until then, so leaving a statement behind does not
   * free a slot; after UPSTREAM_CLOSE_WAIT_MS the socket is dropped and the slot freed.
   */
  private closeUpstream(cancel: boolean): void {
    const up = this.upstream?.socket;
    if (up === undefined || up.destroyed) {
      this.ctx.registry.release(this);
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    if (cancel) {
      this.cancel();
      timer = setInterval(() => this.cancel(), UPSTREAM_CANCEL_EVERY_MS);
      timer.unref();
    }
    const drop = setTimeout(() => up.destroy(), UPSTREAM_CLOSE_WAIT_MS);
    drop.unref();
    up.once('close', () => {
      if (timer !== undefined) clearInterval(timer);
      clearTimeout(drop);
      this.ctx.registry.release(this);
    });
    // Read (and drop) what the server still sends, so its closing the connection is seen; the
    // relay no longer judges it (nothing reaches the client any more).
    up.removeAllListeners('data');
    up.resume();
    up.end(TERMINATE);
  }

  private shutdown(reason: string, serverSide = false): void {
    if (this.closed) return;
    this.closed = true;
    if (this.expiryTimer !== undefined) clearTimeout(this.expiryTimer);
    this.ctx.registry.remove(this);
    const running = this.relay?.unfinished() ?? [];
    this.relay?.stop();
    this.closeUpstream(running.length > 0);
    if (serverSide && !this.client.destroyed) {
      this.client.end(errorResponse({ severity: 'FATAL', code: SQLSTATE.connectionFailure, message: 'server closed the connection' }));
    }
    setTimeout(() => this.client.destroy(), 1_000).unref();
    // Statements the session ended under (the client left before their completion) are
    // recorded too, with the rows already sent (attack round 4 #6).
    // They were cancelled upstream (closeUpstream): `cancelled` says so.
    for (const exec of running) {
      exec.error ??= 'session-ended';
      this.finished(exec, true);
    }
    this.writeCopy(true);
    this.log?.flush();
    if (this.resource !== undefined && this.grant !== undefined) {
      this.ctx.audit.append({
        kind: 'connection.close', actor: this.userName, resource: this.resource.name, session: this.id,
        data: { reason, durationMs: Date.now() - this.openedAt, statements: this.statements, started: this.starts },
      });
    }
  }
}

/** The finding a statement request is held under, its detail listing every held construct. */
function heldFor(decision: { finding: Finding | undefined; applied: readonly { finding: Finding; action: string }[] }): Finding | undefined {
  const top = decision.finding;
  if (top === undefined) return undefined;
  const parts = decision.applied
    .filter((a) => a.action === 'approve')
    .map((a) => `${a.finding.rule === top.rule ? '' : `${a.finding.rule}: `}${a.finding.detail}${a.finding.statement > 1 ? ` (statement ${a.finding.statement})` : ''}`);
  const detail = [...new Set(parts)].join('; ');
  return detail === '' ? top : { ...top, detail };
}

/** The verb of a counted write, for messages. */
function verbOf(info: StatementInfo | undefined): string {
  const kind = info?.facts.kinds[0];
  if (kind === 'InsertStmt') return 'INSERT ... ON CONFLICT DO UPDATE';
  return kind === undefined ? 'the statement' : kind.replace(/Stmt$/, '').toUpperCase();
}
