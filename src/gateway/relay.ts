import { isUtf8 } from 'node:buffer';
import type { Duplex } from 'node:stream';
import { UNKNOWN_LINEAGE, type ResultLineage } from './guardrails/index.js';
import type { PreparedNames } from './guardrails/prepared.js';
import { serverParameterRefusal } from './guardrails/lexing.js';
import type { Masker, ResultPlan } from './masking/index.js';
import { detectionBucket } from './masking/budget.js';
import type { TimeBucket } from './user-bucket.js';
import { chunkScheduler, type ChunkQueue, type ChunkScheduler } from './chunk-scheduler.js';
import { PendingQueue, type DescribeItem, type Execution, type ExecuteItem, type Pending, type QueryItem, type StatementInfo } from './pipeline.js';
import { CEILING_STATEMENT, CeilingCheck, ceilingMarker, countedQueryMessages, FLUSH, SYNC_AND_DROP_UNNAMED, type RowCeiling } from './row-ceiling.js';
import { PreparedNamespace } from './prepared-names.js';
import { bindParameters, decodeBind, decodeCopyResponse, decodeErrorFields, decodeExecute, decodeParse, decodeRowDescription, decodeTarget, readCString, rowsFromTag } from './wire/decode.js';
import { describeMessage, errorResponse, noticeResponse, parseMessage, queryMessage, type ErrorFields } from './wire/encode.js';
import { GatewayError, ProtocolViolation, SQLSTATE } from './wire/errors.js';
import { MessageFramer, type MessageLimits } from './wire/framer.js';
import { BACKEND, FRONTEND } from './wire/codes.js';

/**
 * The relay between one client and its upstream connection, after login. Client messages are
 * judged (guardrails at Parse and Query) and forwarded; server messages are attributed to the
 * request they answer (pipeline.ts), masked when they carry data, and forwarded. Unchanged
 * messages travel as slices of the chunk they arrived in.
 *
 * Attribution is exact or the session ends: a server message that does not fit the request at
 * the head of the queue (a row with no judged result shape, a completion nobody asked for, a
 * ReadyForQuery with requests still unanswered) ends the session with a FATAL error, and no
 * byte of it reaches the client. Rows of an Execute are masked by the shape the server gave, for
 * that very portal, just before it ran (the client's Describe, or one the gateway injects): a
 * name's earlier description is never reused, since SQL (PREPARE, DEALLOCATE, DECLARE, CLOSE,
 * DISCARD, functions) can redefine names behind the protocol's back.
 *
 * A blocked statement is replaced, upstream, by one that fails to parse (BLOCK_MARKER); the
 * server's syntax error is swapped for the guardrail's ErrorResponse on the way back. So the
 * server itself discards the rest of the pipeline until Sync, aborts an open transaction, and
 * answers ReadyForQuery with the right status.
 *
 * Backpressure: when a socket's write buffer is full, the other side is paused until 'drain',
 * so a huge result streams through with bounded memory.
 *
 * Server data is worked on in fair shares per user (chunk-scheduler.ts): a chunk read from the
 * upstream waits, the upstream paused, until the scheduler gives this session's user a turn.
 */

export const BLOCK_MARKER = 'tightloop_guardrail_block';

export type Verdict = {
  info: StatementInfo;
  /** Set when the statement must not run: the error the client gets. */
  error?: ErrorFields;
  /** Set when it runs with a warning. */
  notice?: ErrorFields;
  wait?: undefined;
} | {
  /**
   * The judge cannot decide yet (an approval being claimed in the state store, or the user's
   * judging time spent or audit volume in debt: user-bucket.ts): the relay stops at this message, holding it and
   * everything after it, and judges it again once the promise settles (a rejection ends the
   * session).
   */
  wait: Promise<void>;
  info?: undefined;
  error?: undefined;
  notice?: undefined;
};

export interface RelayHooks {
  /** Judges one statement text (Parse or Query). Blocked statements are audited by the caller. */
  judge(sql: string, protocol: 'simple' | 'extended'): Verdict;
  /** Refuses a protocol message the parser cannot see (audited by the caller). */
  refuse(what: string): ErrorFields;
  /** A statement finished (or failed) upstream. */
  finished(exec: Execution): void;
  /** The relay hit something it cannot continue from. */
  fatal(err: Error): void;
  /**
   * Audit before effect: called for each statement about to run (a simple Query, an Execute).
   * A promise holds this client's bytes, from that message on, until it resolves (the audit
   * record is durable); a rejection ends the session with nothing forwarded.
   */
  beforeRun?(info: StatementInfo | undefined, protocol: 'simple' | 'extended', params?: Execution['params']): Promise<void> | undefined;
  /**
   * A counted write changed more rows than its ceiling (or suspended before its count was
   * known). Audits it; an error refuses it (the gateway aborts the transaction), a notice lets
   * it commit with a warning.
   */
  overCeiling?(info: StatementInfo | undefined, params: Execution['params'], rows: number, ceiling: RowCeiling, suspended: boolean): { error?: ErrorFields; notice?: ErrorFields };
  /** The session's ceiling for an Execute of a name the relay cannot tell (row-ceiling.ts `unknown`). */
  unknownCeiling?(): RowCeiling | undefined;
  /**
   * COPY FROM STDIN: each CopyData payload the client sends (the rows a COPY writes or tests are
   * audited like an INSERT's literals), then null when the copy ends (CopyDone, CopyFail).
   */
  copyIn?(chunk: Buffer | null): void;
  /**
   * Asked at each Bind: a promise holds this client's bytes, from the Bind on, until it settles
   * (the user's audit volume is in debt: session.ts). A prepared statement is judged once, at its
   * Parse, and may be bound and executed any number of times after it.
   */
  hold?(): Promise<void> | undefined;
}

export interface RelayStats {
  /** Largest client write buffer seen, in bytes (bounded when backpressure works). */
  maxClientBuffered: number;
  upstreamPauses: number;
}

/** The gateway cannot tell which request a server message answers: it stops relaying. */
export class ProtocolDesync extends ProtocolViolation {
  constructor(what: string) {
    super(`terminating connection: the gateway lost track of the protocol state (${what})`);
  }
}

/** Statement kinds after which the relay forgets what it knew of statement names (audit only). */
const RENAMING = new Set(['DeallocateStmt', 'DiscardStmt', 'PrepareStmt']);
/** Statement kinds after which the relay forgets what it knew of portal names. */
const PORTAL_NAMING = new Set(['DeclareCursorStmt', 'ClosePortalStmt', 'DiscardStmt']);

/** SQL that defines or drops statement or portal names behind the protocol's back. */
const NAMING_SQL = new Set([...RENAMING, 'DeclareCursorStmt', 'ClosePortalStmt']);

/**
 * The client's view of statement and portal names, ahead of the server's answers, so "audit
 * before effect" knows what an Execute will run before it is forwarded. Undefined means unknown,
 * which the hook treats as a possible write. A name the client reuses (its Parse or Bind may fail
 * with "already exists", leaving the old meaning) becomes unknown; once SQL has defined or dropped
 * names (PREPARE, DEALLOCATE, DISCARD, DECLARE, CLOSE), every named one stays unknown. The
 * unnamed statement and portal cannot be made by SQL, and a failed Parse drops the old unnamed
 * statement, so they stay known.
 */
class NamesAhead {
  private readonly statements = new Map<string, StatementInfo | undefined>();
  private readonly portals = new Map<string, StatementInfo | undefined>();
  private tainted = false;
  /** A counted write was parsed under a name: an unknown portal may be one (row ceiling). */
  countedNamed = false;

  judged(info: StatementInfo | undefined): void {
    if (info === undefined) return;
    for (const k of info.facts.kinds) if (NAMING_SQL.has(k)) this.tainted = true;
  }

  parse(name: string, info: StatementInfo | undefined): void {
    if (name !== '' && info?.facts.countedWrite === true) this.countedNamed = true;
    this.statements.set(name, name !== '' && (this.tainted || this.statements.has(name)) ? undefined : info);
  }

  bind(portal: string, statement: string): void {
    const info = this.statement(statement);
    this.portals.set(portal, portal !== '' && (this.tainted || this.portals.has(portal)) ? undefined : info);
  }

  close(kind: 'S' | 'P', name: string): void {
    (kind === 'S' ? this.statements : this.portals).delete(name);
  }

  portal(name: string): StatementInfo | undefined {
    return name !== '' && this.tainted ? undefined : this.portals.get(name);
  }

  private statement(name: string): StatementInfo | undefined {
    return name !== '' && this.tainted ? undefined : this.statements.get(name);
  }
}

export class Relay implements ChunkQueue {
  private readonly fromClient: MessageFramer;
  private readonly fromUpstream: MessageFramer;
  private readonly pending = new PendingQueue();
  /** Server-confirmed names (for the audit's statement text). */
  private readonly statements = new Map<string, StatementInfo | undefined>();
  private readonly portals = new Map<string, StatementInfo | undefined>();
  /**
   * Statements parsed on a one-run approval: 'fresh' until their first Bind, then 'spent' (a
   * second Bind is refused). Kept until a protocol Close of the name: a failed re-Parse of a
   * named statement leaves the old one in place, so nothing else clears it (fail closed).
   */
  private readonly approvedOnce = new Map<string, 'fresh' | 'spent'>();
  /**
   * Client-side: the last Describe of each portal and the epoch it was sent in. Any Execute,
   * Query, Sync or Bind can change what a portal name means, so a Describe counts for an
   * Execute only when no such message came between them.
   */
  private readonly described = new Map<string, { item: DescribeItem; epoch: number }>();
  /** Parameter values of each portal's last Bind, in client order (for the audit). */
  private readonly bound = new Map<string, Execution['params']>();
  /** What names will mean once the client's messages so far succeed (for audit before effect). */
  private readonly ahead = new NamesAhead();
  /** Prepared-statement names for SQL EXECUTE (prepared-names.ts). */
  private readonly prepared = new PreparedNamespace();
  private epoch = 0;
  /** The client is inside a COPY FROM STDIN the server has started (its Sync/Flush are ignored). */
  private clientInCopy = false;
  private lastRowDescription: Buffer | undefined;
  private lastPlan: ResultPlan | undefined;
  private lastLineage: ResultLineage | undefined;
  private upstreamPaused = false;
  /** Upstream chunks read and not yet worked on (the upstream is paused while there are any). */
  private readonly upstreamChunks: Buffer[] = [];
  /** This relay is in its user's turn order (chunk-scheduler.ts). */
  private scheduled = false;
  private clientPaused = false;
  private stopped = false;
  txStatus = 'I';
  readonly stats: RelayStats = { maxClientBuffered: 0, upstreamPauses: 0 };

  constructor(
    private readonly client: Duplex,
    private readonly upstream: Duplex,
    private readonly masker: Masker | undefined,
    private readonly hooks: RelayHooks,
    /** Server messages: a number, or limits by type (the largest DataRow, session.ts). */
    maxMessageBytes: number | MessageLimits,
    clientLimits?: MessageLimits,
    /** Detector time still to spend: shared by all of one user's sessions (masking/budget.ts). */
    private readonly detectBudget: TimeBucket = detectionBucket(),
    /** Whose turns this session's server data takes, and who gives them (chunk-scheduler.ts). */
    private readonly turns: { user: string; scheduler: ChunkScheduler } = { user: '', scheduler: chunkScheduler },
  ) {
    this.fromClient = new MessageFramer(clientLimits ?? (typeof maxMessageBytes === 'number' ? maxMessageBytes : maxMessageBytes.max));
    this.fromUpstream = new MessageFramer(maxMessageBytes);
  }

  /** Starts relaying; `clientBytes`/`upstreamBytes` were received before the relay took over. */
  start(clientBytes: Buffer, upstreamBytes: Buffer): void {
    // One listener per socket, no closure per chunk (this runs for every round trip).
    const fromClient = (chunk: Buffer): void => {
      if (this.stopped) return;
      try { this.onClientData(chunk); } catch (err) { this.fail(err as Error); }
    };
    const fromUpstream = (chunk: Buffer): void => {
      if (this.stopped) return;
      if (this.turns.scheduler.direct) {
        try { this.onUpstreamData(chunk); } catch (err) { this.fail(err as Error); }
        return;
      }
      // The chunk waits for this user's turn; nothing more is read from the server meanwhile.
      this.upstreamChunks.push(chunk);
      this.upstream.pause();
      if (!this.scheduled) {
        this.scheduled = true;
        this.turns.scheduler.ready(this.turns.user, this);
      }
    };
    this.client.on('data', fromClient);
    this.upstream.on('data', fromUpstream);
    if (upstreamBytes.length > 0) {
      try { this.onUpstreamData(upstreamBytes); } catch (err) { this.fail(err as Error); }
    }
    if (clientBytes.length > 0) fromClient(clientBytes);
    this.client.resume();
    this.upstream.resume();
  }

  /** This user's turn (chunk-scheduler.ts): works on the oldest waiting upstream chunk. */
  serveOne(): boolean {
    const chunk = this.upstreamChunks.shift();
    if (chunk !== undefined && !this.stopped) {
      try { this.onUpstreamData(chunk); } catch (err) { this.fail(err as Error); }
    }
    if (this.stopped) this.upstreamChunks.length = 0;
    if (this.upstreamChunks.length > 0) return true;
    this.scheduled = false;
    // A full client buffer keeps the upstream paused (write); its 'drain' resumes it. Once
    // stopped, what the server still sends is read and dropped, so its close is seen.
    if (this.stopped || !this.upstreamPaused) this.upstream.resume();
    return false;
  }

  /**
   * The upstream connection closed: its last chunks (a FATAL error, say) are worked on now, in
   * order, before the session ends, as they were read before the close.
   */
  upstreamClosed(): void {
    while (this.upstreamChunks.length > 0 && !this.stopped) {
      const chunk = this.upstreamChunks.shift() as Buffer;
      try { this.onUpstreamData(chunk); } catch (err) { this.fail(err as Error); }
    }
    this.upstreamChunks.length = 0;
  }

  /** The session ends: nothing more is relayed, and chunks still waiting are dropped. */
  stop(): void {
    this.stopped = true;
    this.upstreamChunks.length = 0;
  }

  /** Nothing more is relayed in either direction (the session is ending). */
  private fail(err: Error): void {
    this.stopped = true;
    this.hooks.fatal(err);
  }

  // ---- client → upstream ---------------------------------------------------------------

  /**
   * Client messages framed while a judge waits (Verdict.wait), from the waiting message on: they
   * are judged in order once it settles, so the session still handles one message at a time.
   */
  private waiting: Buffer[] | undefined;

  /** Is the relay holding this client's bytes for a verdict that waits (Verdict.wait, `hold`)? */
  get holding(): boolean {
    return this.waiting !== undefined;
  }

  private onClientData(chunk: Buffer): void {
    const buf = this.fromClient.push(chunk);
    if (this.waiting !== undefined) {
      if (buf.length > 0) this.waiting.push(buf);
      return;
    }
    this.clientMessages(buf);
  }

  /** Stops judging at a message whose verdict waits; resumes with it once `wait` settles. */
  private suspend(rest: Buffer, wait: Promise<void>): void {
    this.waiting = [rest];
    this.client.pause();
    wait.then(() => {
      if (this.stopped) return;
      const held = this.waiting ?? [];
      this.waiting = undefined;
      try {
        this.clientMessages(Buffer.concat(held));
      } catch (err) {
        this.fail(err as Error);
        return;
      }
      if (this.waiting === undefined && this.held.length === 0 && !this.clientPaused) this.client.resume();
    }, (err: unknown) => this.fail(err as Error));
  }

  private clientMessages(buf: Buffer): void {
    let out: Buffer[] = [];
    let gate: Promise<void> | undefined; // audit before effect: the last durability promise
    // Bytes after a counted write wait for its row count (row-ceiling.ts): one segment each.
    const segments: { out: Buffer[]; gate: Promise<void> | undefined }[] = [];
    let counted: Promise<void> | undefined; // the ceiling gate of the current segment
    let check: CeilingCheck | undefined; // set by the message just handled
    let run = 0; // start of the current run of messages forwarded unchanged
    let off = 0;
    const cut = (replacement?: Buffer): void => {
      if (off > run) out.push(buf.subarray(run, off));
      if (replacement !== undefined) out.push(replacement);
    };
    while (off < buf.length) {
      const type = buf[off];
      const end = off + 1 + buf.readInt32BE(off + 1);
      const body = buf.subarray(off + 5, end);
      let replace: Buffer | undefined;
      if (this.clientInCopy && type !== FRONTEND.CopyData && type !== FRONTEND.CopyDone && type !== FRONTEND.CopyFail && type !== FRONTEND.Sync && type !== FRONTEND.Flush && type !== FRONTEND.Terminate) {
        throw new ProtocolViolation(`message '${String.fromCharCode(type)}' inside COPY FROM STDIN`);
      }
      switch (type) {
        case FRONTEND.Query: {
          if (!textIsUtf8(body, 1)) {
            replace = this.refuseQuery();
            break;
          }
          // The judge → forward step of the simple protocol.
          let v = this.hooks.judge(readCString(body, 0).value, 'simple');
          if (v.wait !== undefined) return this.waitAt(off, v.wait, buf, cut, segments, out, both(counted, gate));
          const unresolved = v.error === undefined ? this.prepared.refusal(v.info, 'simple') : undefined;
          if (unresolved !== undefined) v = { info: v.info, error: this.hooks.refuse(unresolved) };
          else if (v.error === undefined) this.prepared.judged(v.info);
          this.ahead.judged(v.info);
          const exec = this.execution(v.info, 'simple');
          this.nextEpoch();
          if (v.error !== undefined) {
            exec.blocked = true;
            this.pending.push({ kind: 'query', exec, blocked: errorResponse(v.error) });
            replace = queryMessage(BLOCK_MARKER);
          } else {
            if (v.info.rowCeiling !== undefined && v.info.facts.countedWrite === true && !this.pending.discarding) {
              check = new CeilingCheck(v.info.rowCeiling, true);
              replace = this.countedQuery(v.info, exec, check);
            } else this.pending.push({ kind: 'query', exec });
            if (v.notice !== undefined) this.client.write(noticeResponse(v.notice));
            gate = this.hooks.beforeRun?.(v.info, 'simple') ?? gate; // audit before effect
          }
          break;
        }
        case FRONTEND.Parse: {
          // The judge → forward step of the extended protocol.
          const parse = decodeParse(body);
          let v = textIsUtf8(body, 2) ? this.hooks.judge(parse.sql, 'extended') : this.refuseText(parse.sql);
          if (v.wait !== undefined) return this.waitAt(off, v.wait, buf, cut, segments, out, both(counted, gate));
          // A prepared FETCH/MOVE outlives its cursor, and a Describe of it after the cursor closed
          // kills the PostgreSQL 18.4 backend (and restarts the cluster): docs/gateway.md. The
          // unnamed statement survives a named Parse/Bind/Execute of CLOSE, so no name is safe:
          // FETCH and MOVE run only in a simple Query, where no statement outlives the call.
          if (v.error === undefined && v.info?.facts.kinds.includes('FetchStmt') === true) {
            v = { info: v.info, error: this.hooks.refuse(PREPARED_FETCH) };
          }
          const unresolved = v.error === undefined ? this.prepared.refusal(v.info, 'extended') : undefined;
          if (unresolved !== undefined) v = { info: v.info, error: this.hooks.refuse(unresolved) };
          else if (v.error === undefined) {
            this.prepared.judged(v.info);
            this.prepared.parsed(parse.name);
          }
          this.ahead.judged(v.info);
          this.onceParsed(parse.name, v.error === undefined && v.info?.approvedOnce === true);
          if (v.error !== undefined) {
            this.ahead.parse(parse.name, undefined);
            this.pending.push({ kind: 'parse', name: parse.name, info: v.info, blocked: errorResponse(v.error) });
            // The unnamed statement, so an existing name cannot produce a different error first.
            replace = parseMessage('', BLOCK_MARKER);
          } else {
            this.ahead.parse(parse.name, v.info);
            this.pending.push({ kind: 'parse', name: parse.name, info: v.info });
            if (v.notice !== undefined) this.client.write(noticeResponse(v.notice));
          }
          break;
        }
        case FRONTEND.Bind: {
          const hold = this.hooks.hold?.();
          if (hold !== undefined) return this.waitAt(off, hold, buf, cut, segments, out, both(counted, gate));
          const bind = decodeBind(body);
          this.described.delete(bind.portal);
          const once = this.approvedOnce.get(bind.statement);
          const params = bindParameters(body);
          // An approval is for the text the approver saw: values bound after it would change
          // what runs (attack round 4 #5), so an approved statement takes none.
          if (once === 'spent' || (once === 'fresh' && params.count > 0)) {
            const why = once === 'spent' ? APPROVED_ONCE : APPROVED_PARAMS;
            // A statement approved for one run, bound again: refused like a blocked Parse (the
            // marker fails upstream, which also drops the unnamed statement).
            this.ahead.bind(bind.portal, '\u0000refused');
            this.ahead.parse('', undefined);
            this.approvedOnce.set(bind.statement, 'spent');
            this.approvedOnce.delete('');
            this.pending.push({ kind: 'bind', portal: bind.portal, statement: bind.statement, blocked: errorResponse(this.hooks.refuse(why)) });
            replace = parseMessage('', BLOCK_MARKER);
            break;
          }
          if (once === 'fresh') this.approvedOnce.set(bind.statement, 'spent');
          if (params.count > 0) this.bound.set(bind.portal, params);
          else this.bound.delete(bind.portal);
          this.ahead.bind(bind.portal, bind.statement);
          this.pending.push({ kind: 'bind', portal: bind.portal, statement: bind.statement });
          break;
        }
        case FRONTEND.Describe: {
          const t = decodeTarget(body);
          const item: DescribeItem = { kind: 'describe', target: t.kind, name: t.name, swallow: false };
          if (t.kind === 'P') this.described.set(t.name, { item, epoch: this.epoch });
          this.pending.push(item);
          break;
        }
        case FRONTEND.Execute: {
          const name = decodeExecute(body).portal;
          let describe: DescribeItem | undefined;
          if (this.masker !== undefined) {
            const d = this.described.get(name);
            if (d !== undefined && d.epoch === this.epoch) describe = d.item;
            else {
              // Rows are coming and nothing current says what they look like: ask the server.
              cut(describeMessage('P', name));
              run = off;
              describe = { kind: 'describe', target: 'P', name, swallow: true };
              this.pending.push(describe);
            }
          }
          this.nextEpoch();
          const item: ExecuteItem = { kind: 'execute', portal: name, exec: this.execution(undefined, 'extended'), describe };
          const params = this.bound.get(name);
          if (params !== undefined) item.exec.params = params;
          const ceiling = this.ceilingOf(name);
          if (ceiling !== undefined && !this.pending.discarding) check = item.ceiling = new CeilingCheck(ceiling, false);
          this.pending.push(item);
          gate = this.hooks.beforeRun?.(this.ahead.portal(name), 'extended', params) ?? gate; // audit before effect
          break;
        }
        case FRONTEND.Close: {
          const t = decodeTarget(body);
          if (t.kind === 'P') {
            this.described.delete(t.name);
            this.bound.delete(t.name);
          } else this.approvedOnce.delete(t.name);
          this.ahead.close(t.kind, t.name);
          this.pending.push({ kind: 'close', target: t.kind, name: t.name });
          break;
        }
        case FRONTEND.Sync:
          // Inside COPY FROM STDIN the server ignores Sync (libpq sends one there).
          if (!this.clientInCopy) {
            this.nextEpoch();
            this.pending.push({ kind: 'sync' });
          }
          break;
        case FRONTEND.FunctionCall:
          // FunctionCall names a function by OID, out of the parser's sight: fail closed.
          replace = this.refuseQuery('FunctionCall message');
          break;
        case FRONTEND.CopyDone:
        case FRONTEND.CopyFail:
          if (this.clientInCopy) {
            this.clientInCopy = false;
            this.hooks.copyIn?.(null);
          } else if (this.pending.length > 0) this.pending.push({ kind: 'copyend' });
          break;
        case FRONTEND.CopyData:
          if (this.clientInCopy) this.hooks.copyIn?.(body);
          break;
        case FRONTEND.Flush:
        case FRONTEND.Terminate:
          break;
        default:
          throw new ProtocolViolation(`unexpected message type '${String.fromCharCode(type)}' from client`);
      }
      if (replace !== undefined) {
        cut(replace);
        run = end;
      }
      off = end;
      if (check !== undefined) {
        // The write goes now (its answer flushed); what follows waits for its row count.
        cut(check.simple ? undefined : FLUSH);
        run = end;
        segments.push({ out, gate: both(counted, gate) });
        out = [];
        gate = undefined;
        counted = check.gate;
        check = undefined;
      }
    }
    cut();
    segments.push({ out, gate: both(counted, gate) });
    for (const s of segments) this.forward(s.out, s.gate);
  }

  /** Forwards what was judged before the message at `off`, then waits there (suspend). */
  private waitAt(off: number, wait: Promise<void>, buf: Buffer, cut: () => void, segments: { out: Buffer[]; gate: Promise<void> | undefined }[], out: Buffer[], gate: Promise<void> | undefined): void {
    cut();
    segments.push({ out, gate });
    for (const s of segments) this.forward(s.out, s.gate);
    this.suspend(buf.subarray(off), wait);
  }

  /**
   * A simple Query that is a counted write, sent as the extended protocol's unnamed statement
   * so that its commit (the Sync) waits for the row count (row-ceiling.ts). Returns its bytes.
   */
  private countedQuery(info: StatementInfo, exec: Execution, check: CeilingCheck): Buffer {
    this.onceParsed('', false);
    this.ahead.parse('', info);
    this.ahead.bind('', '');
    this.described.delete('');
    this.pending.push({ kind: 'parse', name: '', info, swallow: true });
    this.pending.push({ kind: 'bind', portal: '', statement: '', swallow: true });
    const describe: DescribeItem = { kind: 'describe', target: 'P', name: '', swallow: false, dropNoData: true };
    this.pending.push(describe);
    this.pending.push({ kind: 'execute', portal: '', exec, describe, ceiling: check });
    this.pending.push({ kind: 'sync' });
    // A simple Query leaves no unnamed statement or portal behind: the gateway closes the ones it
    // made after its Sync (SYNC_AND_DROP_UNNAMED), so a Bind of '' gets 26000 as from PostgreSQL.
    this.pending.push({ kind: 'close', target: 'S', name: '', swallow: true });
    this.pending.push({ kind: 'close', target: 'P', name: '', swallow: true });
    this.ahead.close('S', '');
    this.ahead.close('P', '');
    return countedQueryMessages(info.sql);
  }

  /** The row ceiling an Execute of this portal runs under, if any. */
  private ceilingOf(portal: string): RowCeiling | undefined {
    const info = this.ahead.portal(portal);
    if (info === undefined) return this.ahead.countedNamed ? this.hooks.unknownCeiling?.() : undefined;
    return info.facts.countedWrite === true ? info.rowCeiling : undefined;
  }

  /**
   * Answers a message with a refusal, in the server's order: upstream it becomes a query that
   * fails to parse, whose error is swapped for the refusal. Returns that replacement.
   */
  private refuseQuery(what = INVALID_TEXT): Buffer {
    const exec = this.execution(undefined, 'simple');
    exec.blocked = true;
    this.nextEpoch();
    this.pending.push({ kind: 'query', exec, blocked: errorResponse(this.hooks.refuse(what)) });
    return queryMessage(BLOCK_MARKER);
  }

  /** Tracks a Parse for the one-run approval rule (approvedOnce). */
  private onceParsed(name: string, approved: boolean): void {
    // Any Parse of the unnamed statement replaces it (a failed one drops it).
    if (name === '') {
      if (approved) this.approvedOnce.set('', 'fresh');
      else this.approvedOnce.delete('');
    } else if (approved && !this.approvedOnce.has(name)) this.approvedOnce.set(name, 'fresh');
  }

  /** A Parse whose text is not valid UTF-8: blocked like a guardrail block. */
  private refuseText(sql: string): Verdict {
    const info: StatementInfo = {
      sql,
      facts: { findings: [], normalized: '', fingerprint: '', kinds: [], literalDependent: true },
      decision: { action: 'block', finding: undefined, applied: [] },
    };
    return { info, error: this.hooks.refuse(INVALID_TEXT) };
  }

  // ---- audit before effect (gw-audit): hold client bytes until their audit is durable -----

  private held: { out: Buffer[]; ready: boolean }[] = [];

  /**
   * Records become durable in sequence order, so one promise per chunk (its last) covers every
   * statement in it. While anything is held the client is paused (bounded memory), and later
   * chunks queue behind it, so the upstream sees the client's bytes in order.
   */
  private forward(out: Buffer[], gate: Promise<void> | undefined): void {
    if (gate === undefined && this.held.length === 0) {
      this.write(this.upstream, out, 'upstream');
      return;
    }
    const entry = { out, ready: gate === undefined };
    this.held.push(entry);
    this.client.pause();
    if (gate !== undefined) {
      gate.then(() => {
        entry.ready = true;
        this.release();
      }, (err: unknown) => this.fail(err as Error));
    }
  }

  private release(): void {
    if (this.stopped) return;
    const out: Buffer[] = [];
    while (this.held.length > 0 && this.held[0].ready) out.push(...(this.held.shift() as { out: Buffer[] }).out);
    if (this.upstream.destroyed || !this.upstream.writable) return;
    this.write(this.upstream, out, 'upstream');
    if (this.held.length === 0 && !this.clientPaused && this.waiting === undefined) this.client.resume();
  }

  /** Something that can redefine names may run: earlier Describes no longer count. */
  private nextEpoch(): void {
    this.epoch++;
    if (this.described.size > 0) this.described.clear();
  }

  private execution(info: StatementInfo | undefined, protocol: 'simple' | 'extended'): Execution {
    return { info, protocol, startedAt: performance.now(), rows: 0, sent: 0, masked: {} };
  }

  // ---- upstream → client ---------------------------------------------------------------

  private onUpstreamData(chunk: Buffer): void {
    const buf = this.fromUpstream.push(chunk);
    const out: Buffer[] = [];
    let run = 0;
    let off = 0;
    while (off < buf.length) {
      const type = buf[off];
      const end = off + 1 + buf.readInt32BE(off + 1);
      const replace = this.onServerMessage(type, buf, off, end);
      if (replace !== undefined) {
        if (off > run) out.push(buf.subarray(run, off));
        if (replace !== DROP) out.push(replace);
        run = end;
      }
      off = end;
    }
    if (buf.length > run) out.push(run === 0 ? buf : buf.subarray(run));
    this.write(this.client, out, 'client');
  }

  /** Attributes one server message; returns its replacement, DROP, or undefined (unchanged). */
  private onServerMessage(type: number, buf: Buffer, off: number, end: number): Buffer | undefined {
    const head = this.pending.head;
    const masker = this.masker;
    switch (type) {
      case BACKEND.DataRow: {
        let plan: ResultPlan | null | undefined;
        let counts;
        let check: CeilingCheck | undefined;
        if (head?.kind === 'query' && head.copyOut !== true) {
          plan = head.plan;
          counts = head.exec.masked;
        } else if (head?.kind === 'execute' && head.copyOut !== true) {
          plan = head.describe?.plan;
          counts = head.exec.masked;
          check = head.ceiling;
        } else throw new ProtocolDesync(`DataRow while waiting for ${what(head)}`);
        let row: Buffer | undefined;
        if (masker !== undefined) {
          if (plan === undefined || plan === null) throw new ProtocolDesync('DataRow without a judged row description');
          row = masker.maskDataRow(buf, off, end, plan, counts, this.detectBudget);
        }
        if (check === undefined) {
          head.exec.sent++;
          return row;
        }
        // RETURNING of a counted write: nothing reaches the client before its count.
        check.hold(row ?? buf.subarray(off, end));
        return DROP;
      }
      case BACKEND.CopyData:
        if ((head?.kind !== 'query' && head?.kind !== 'execute') || head.copyOut !== true) throw new ProtocolDesync(`CopyData while waiting for ${what(head)}`);
        return masker?.maskCopyData(buf, off, end, head.exec.masked, this.detectBudget);
      case BACKEND.CopyDone:
        if ((head?.kind !== 'query' && head?.kind !== 'execute') || head.copyOut !== true) throw new ProtocolDesync(`CopyDone while waiting for ${what(head)}`);
        return undefined;
      case BACKEND.ParseComplete:
        if (head?.kind !== 'parse') throw new ProtocolDesync(`ParseComplete while waiting for ${what(head)}`);
        this.statements.set(head.name, head.info);
        this.prepared.parseComplete(head.name, head.info.sql);
        this.pending.shift();
        return head.swallow === true ? DROP : undefined;
      case BACKEND.BindComplete:
        if (head?.kind !== 'bind') throw new ProtocolDesync(`BindComplete while waiting for ${what(head)}`);
        this.portals.set(head.portal, this.statements.get(head.statement));
        this.pending.shift();
        return head.swallow === true ? DROP : undefined;
      case BACKEND.CloseComplete:
        if (head?.kind !== 'close') throw new ProtocolDesync(`CloseComplete while waiting for ${what(head)}`);
        if (head.target === 'S') {
          this.statements.delete(head.name);
          this.prepared.closeComplete(head.name);
        } else this.portals.delete(head.name);
        this.pending.shift();
        return head.swallow === true ? DROP : undefined;
      case BACKEND.ParameterDescription:
        if (head?.kind !== 'describe' || head.target !== 'S') throw new ProtocolDesync(`ParameterDescription while waiting for ${what(head)}`);
        return undefined;
      case BACKEND.RowDescription: {
        const body = buf.subarray(off + 5, end);
        if (head?.kind === 'describe') {
          // Answers come in order, so the confirmed names say what is described; a name the
          // relay does not know (made by SQL PREPARE, say) has no lineage: masked as a whole.
          const info = head.target === 'S' ? this.statements.get(head.name) : this.portals.get(head.name);
          if (masker !== undefined) head.plan = this.planFor(body, info === undefined ? UNKNOWN_LINEAGE : info.facts.lineage);
          this.pending.shift();
          return head.swallow ? DROP : undefined;
        }
        if (head?.kind === 'query' && head.copyOut !== true) {
          if (masker !== undefined) head.plan = this.planFor(body, queryLineage(head));
          return undefined;
        }
        throw new ProtocolDesync(`RowDescription while waiting for ${what(head)}`);
      }
      case BACKEND.NoData:
        if (head?.kind !== 'describe') throw new ProtocolDesync(`NoData while waiting for ${what(head)}`);
        head.plan = null;
        this.pending.shift();
        return head.swallow || head.dropNoData === true ? DROP : undefined;
      case BACKEND.CommandComplete:
      case BACKEND.EmptyQueryResponse:
      case BACKEND.PortalSuspended:
        if (head?.kind === 'execute') {
          if (type === BACKEND.CommandComplete) {
            head.exec.rows += rowsFromTag(buf.subarray(off + 5, end));
            const info = this.portals.get(head.portal);
            this.namesCompleted(head.exec, readCString(buf, off + 5).value, info?.facts.prepared?.[0], info?.sql);
          } else if (type === BACKEND.PortalSuspended) {
            // No tag counts a suspended portal's rows: the DataRows this Execute sent do (attack round 5 #6).
            head.exec.rows = head.exec.sent;
            head.exec.suspended = true;
          }
          this.pending.shift();
          const replacement = head.ceiling === undefined ? undefined : this.ceilingVerdict(head, head.ceiling, type, buf.subarray(off, end));
          this.finishExecute(head);
          return replacement;
        }
        if (head?.kind === 'query' && type !== BACKEND.PortalSuspended) {
          if (type === BACKEND.CommandComplete) {
            head.exec.rows += rowsFromTag(buf.subarray(off + 5, end));
            this.namesCompleted(head.exec, readCString(buf, off + 5).value, head.exec.info?.facts.prepared?.[head.completed ?? 0], head.exec.info?.sql);
          }
          head.completed = (head.completed ?? 0) + 1;
          head.plan = undefined;
          head.copyOut = false;
          this.afterStatement(head.exec.info);
          return undefined;
        }
        throw new ProtocolDesync(`completion while waiting for ${what(head)}`);
      case BACKEND.ErrorResponse:
        return this.onError(buf, off, end);
      case BACKEND.ReadyForQuery:
        if (head?.kind === 'query') {
          this.pending.shift();
          this.statements.delete(''); // a simple Query drops the unnamed statement
          if (head.exec.blocked !== true) this.hooks.finished(head.exec);
        } else if (head?.kind === 'sync') this.pending.shift();
        else throw new ProtocolDesync(`ReadyForQuery while waiting for ${what(head)}`);
        this.txStatus = String.fromCharCode(buf[off + 5]);
        // Every request sent so far is answered: the names are the server's.
        if (this.pending.length === 0) this.prepared.settled();
        // Outside a transaction block, every portal a Bind made is gone.
        if (this.txStatus === 'I') this.portals.clear();
        return undefined;
      case BACKEND.CopyOutResponse:
        if ((head?.kind !== 'query' && head?.kind !== 'execute') || head.copyOut === true) throw new ProtocolDesync(`CopyOutResponse while waiting for ${what(head)}`);
        head.copyOut = true;
        if (masker !== undefined && decodeCopyResponse(buf.subarray(off + 5, end)).format === 1) {
          // Binary COPY cannot be inspected; guardrails refuse it, so this is a bypass attempt.
          throw new ProtocolViolation('binary COPY output cannot be masked');
        }
        return undefined;
      case BACKEND.CopyInResponse: {
        if (head?.kind !== 'query' && head?.kind !== 'execute') throw new ProtocolDesync(`CopyInResponse while waiting for ${what(head)}`);
        const state = this.pending.enterCopyIn();
        if (state === 'invalid') throw new ProtocolViolation('requests sent inside COPY FROM STDIN');
        this.clientInCopy = state === 'open';
        return undefined;
      }
      case BACKEND.CopyBothResponse:
        throw new ProtocolViolation('replication (COPY BOTH) is not supported through the gateway');
      case BACKEND.NoticeResponse:
        return masker?.maskErrorMessage(buf, off, end, head !== undefined && 'exec' in head ? head.exec.masked : {}, sqlOf(head, this.portals));
      case BACKEND.ParameterStatus: {
        // A setting that changes how the server reads statements ends the session (lexing.ts).
        const name = readCString(buf, off + 5);
        const refusal = serverParameterRefusal(name.value, readCString(buf, name.next).value);
        if (refusal !== undefined) throw new GatewayError('lexing_mismatch', `terminating connection: ${refusal}`, { fatal: true });
        return masker?.maskParameterStatus(buf, off, end, head !== undefined && 'exec' in head ? head.exec.masked : {});
      }
      case BACKEND.NotificationResponse:
        return masker?.maskNotification(buf, off, end, {});
      default:
        throw new ProtocolDesync(`unexpected server message '${String.fromCharCode(type)}'`);
    }
  }

  /** A statement completed: follows the names it defined or dropped; records what an EXECUTE ran. */
  private namesCompleted(exec: Execution, tag: string, p: PreparedNames | undefined, sql: string | undefined): void {
    const texts = this.prepared.texts(p);
    if (texts !== undefined) exec.prepared = { ...exec.prepared, ...texts };
    this.prepared.completed(tag, p, sql ?? '');
  }

  /** Simple queries repeat the same RowDescription; reuse the last plan when the bytes match. */
  private planFor(body: Buffer, lineage: ResultLineage | undefined): ResultPlan | undefined {
    if (this.lastRowDescription !== undefined && this.lastLineage === lineage && this.lastRowDescription.equals(body)) return this.lastPlan;
    const plan = this.masker?.plan(decodeRowDescription(body), undefined, lineage);
    this.lastRowDescription = Buffer.from(body);
    this.lastLineage = lineage;
    this.lastPlan = plan;
    return plan;
  }

  private finishExecute(item: ExecuteItem): void {
    item.exec.info = this.portals.get(item.portal);
    this.afterStatement(item.exec.info);
    this.hooks.finished(item.exec);
  }

  /**
   * SQL that can redefine names: what we knew of them may be stale now, so they become unknown
   * (no lineage: masked as a whole). Called when the statement completes or fails.
   */
  private afterStatement(info: StatementInfo | undefined): void {
    if (info === undefined) return;
    for (const k of info.facts.kinds) {
      if (RENAMING.has(k)) for (const name of this.statements.keys()) this.statements.set(name, undefined);
      if (PORTAL_NAMING.has(k)) for (const name of this.portals.keys()) this.portals.set(name, undefined);
    }
  }

  /** Swaps the marker's syntax error for the guardrail's; applies the server's skip-to-Sync. */
  private onError(buf: Buffer, off: number, end: number): Buffer | undefined {
    const head = this.pending.head;
    const fields = decodeErrorFields(buf.subarray(off + 5, end));
    const isMarker = fields.get('C') === '42601' && (fields.get('M') ?? '').includes(BLOCK_MARKER);
    let replacement: Buffer | undefined;
    if ((head?.kind === 'parse' || head?.kind === 'query' || head?.kind === 'bind') && head.blocked !== undefined && isMarker) replacement = head.blocked;
    else if (this.masker !== undefined) replacement = this.masker.maskErrorMessage(buf, off, end, head !== undefined && 'exec' in head ? head.exec.masked : {}, sqlOf(head, this.portals));
    const severity = fields.get('V') ?? fields.get('S');
    if (severity === 'FATAL' || severity === 'PANIC') {
      // The server ends the session; nothing after this is attributed.
      this.stopped = true;
      return replacement;
    }
    if (head === undefined) throw new ProtocolDesync('ErrorResponse with no request pending');
    switch (head.kind) {
      case 'query':
        // Simple protocol: the error ends the query string; ReadyForQuery follows.
        head.exec.error ??= fields.get('C');
        head.plan = undefined;
        head.copyOut = false;
        this.clientInCopy = false; // an error ends a COPY FROM STDIN too
        this.afterStatement(head.exec.info);
        return replacement;
      case 'sync':
        // The implicit COMMIT at Sync failed; ReadyForQuery follows.
        return replacement;
      case 'parse':
        // The row ceiling's marker goes to a name of its own: nothing of the client's is dropped.
        if (head.name === CEILING_STATEMENT && head.blocked !== undefined) break;
        // A failed Parse of the unnamed statement (or our marker) still dropped the old one.
        this.statements.delete('');
        if (head.name !== '' && head.blocked === undefined) this.statements.delete(head.name);
        break;
      case 'bind':
        this.portals.delete(head.portal);
        // A refused Bind was sent as the marker Parse, which dropped the unnamed statement.
        if (head.blocked !== undefined) this.statements.delete('');
        break;
      case 'execute':
        head.exec.error = fields.get('C');
        this.pending.shift();
        this.finishExecute(head);
        // The counted write failed: nothing to hold back.
        if (head.ceiling !== undefined) this.ceilingSkipped(head.ceiling);
        break;
      default:
        break;
    }
    this.clientInCopy = false;
    for (const p of this.pending.dropUntilSync()) {
      // A counted write the server skips ran nothing (a simple one's own Parse or Bind failed).
      if (p.kind !== 'execute' || p.ceiling === undefined) continue;
      if (p.ceiling.simple) {
        p.exec.error ??= fields.get('C');
        this.hooks.finished(p.exec);
      }
      this.ceilingSkipped(p.ceiling);
    }
    return replacement;
  }

  // ---- row ceiling (row-ceiling.ts) -----------------------------------------------------

  /**
   * The tag (or suspension) of a counted write is in: under the ceiling, its held rows and tag
   * go to the client (and a simple one's Sync upstream); over it, the marker that aborts the
   * transaction goes upstream ahead of every held client byte, and the client gets the refusal.
   */
  private ceilingVerdict(item: ExecuteItem, check: CeilingCheck, type: number, msg: Buffer): Buffer | undefined {
    const suspended = type === BACKEND.PortalSuspended;
    const v = type === BACKEND.CommandComplete ? check.judge(msg.subarray(5)) : { rows: check.held, over: check.held > check.ceiling.limit };
    const out: Buffer[] = [];
    if (v.over || suspended) {
      const info = item.exec.info ?? this.portals.get(item.portal);
      const answer = this.hooks.overCeiling?.(info, item.exec.params, v.rows, check.ceiling, suspended) ?? { error: { severity: 'ERROR', code: SQLSTATE.insufficientPrivilege, message: 'blocked by guardrail "row-ceiling"' } };
      if (answer.error !== undefined) {
        item.exec.error = answer.error.code;
        this.pending.unshift({ kind: 'parse', name: CEILING_STATEMENT, info: info ?? MARKER_INFO, blocked: errorResponse(answer.error) });
        this.write(this.upstream, [ceilingMarker(BLOCK_MARKER, check.simple)], 'upstream');
        check.settle();
        return DROP;
      }
      if (answer.notice !== undefined) out.push(noticeResponse(answer.notice));
    }
    out.push(...check.heldRows(), Buffer.from(msg));
    if (check.simple) this.write(this.upstream, [SYNC_AND_DROP_UNNAMED], 'upstream');
    check.settle();
    return Buffer.concat(out);
  }

  /** A counted write that ran nothing: a simple one's Sync goes, then the held bytes. */
  private ceilingSkipped(check: CeilingCheck): void {
    if (check.simple) this.write(this.upstream, [SYNC_AND_DROP_UNNAMED], 'upstream');
    check.settle();
  }

  // ---- output and backpressure ---------------------------------------------------------

  private write(to: Duplex, out: Buffer[], side: 'client' | 'upstream'): void {
    if (out.length === 0) return;
    if (out.length === 1) to.write(out[0]);
    else {
      to.cork();
      for (const b of out) to.write(b);
      to.uncork();
    }
    if (side === 'client' && to.writableLength > this.stats.maxClientBuffered) this.stats.maxClientBuffered = to.writableLength;
    if (!to.writableNeedDrain) return;
    const from = side === 'client' ? this.upstream : this.client;
    if (side === 'client' ? this.upstreamPaused : this.clientPaused) return;
    if (side === 'client') {
      this.upstreamPaused = true;
      this.stats.upstreamPauses++;
    } else this.clientPaused = true;
    from.pause();
    to.once('drain', () => {
      if (side === 'client') this.upstreamPaused = false;
      else this.clientPaused = false;
      // A judge still waiting keeps the client paused (suspend resumes it).
      // Chunks still waiting for their turn keep the upstream paused (serveOne resumes it).
      if (side === 'client' ? this.upstreamChunks.length === 0 : this.waiting === undefined) from.resume();
    });
  }

  /**
   * Statements still running when the session ends (a client that leaves before CommandComplete
   * must not leave without a record): every judged, unblocked execution not yet answered.
   */
  unfinished(): Execution[] {
    const out: Execution[] = [];
    for (const p of this.pending.all()) {
      if (p.kind === 'execute') p.exec.info ??= this.portals.get(p.portal) ?? this.ahead.portal(p.portal);
      if ((p.kind === 'query' || p.kind === 'execute') && p.exec.blocked !== true) out.push(p.exec);
    }
    return out;
  }

  /** Writes a gateway-originated message to the client (between whole messages). */
  sendToClient(msg: Buffer): void {
    this.client.write(msg);
  }
}

/**
 * The gateway parses statement text as UTF-8 and the server reads it in the session's client
 * encoding (UTF8 or SQL_ASCII, lexing.ts): text that is not valid UTF-8 would be read one way
 * here (with replacement characters) and another way there, so it is refused.
 */
const INVALID_TEXT = 'statement text that is not valid UTF-8';
const APPROVED_ONCE = 'second execution of a statement approved for one run (ask for a new approval)';
const APPROVED_PARAMS = 'Bind with parameter values of a statement approved for one run (the approver saw only $n: put the values in the statement text and ask for a new approval)';
const PREPARED_FETCH = 'FETCH or MOVE in the extended protocol (send it as a simple Query)';

/** Are the first `strings` NUL-terminated strings of a message body valid UTF-8? */
function textIsUtf8(body: Buffer, strings: number): boolean {
  let end = -1;
  for (let i = 0; i < strings; i++) {
    end = body.indexOf(0, end + 1);
    if (end === -1) return true; // malformed: the decoder reports it
  }
  return isUtf8(body.subarray(0, end));
}

/**
 * The lineage of the query string's current result: its own statement's when the string has
 * several (the server answers them in order, one completion each), else the string's.
 */
function queryLineage(item: QueryItem): ResultLineage | undefined {
  const facts = item.exec.info?.facts;
  if (facts === undefined) return UNKNOWN_LINEAGE;
  const per = facts.statementLineage;
  const i = item.completed ?? 0;
  return per !== undefined && i < per.length ? per[i] : facts.lineage;
}

/** Marks a server message the client must not see (the answer to an injected Describe). */
const DROP = Buffer.alloc(0);

/** Stands for the statement of a row-ceiling marker when the write's own is not known. */
const MARKER_INFO: StatementInfo = {
  sql: '',
  facts: { findings: [], normalized: '', fingerprint: '', kinds: [], literalDependent: false },
  decision: { action: 'block', finding: undefined, applied: [] },
};

/** A gate that opens when both have (either may be absent). */
function both(a: Promise<void> | undefined, b: Promise<void> | undefined): Promise<void> | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Promise.all([a, b]).then(() => undefined);
}

/** The statement an error or notice answers: what the client wrote itself (masking/errors.ts). */
function sqlOf(p: Pending | undefined, portals: ReadonlyMap<string, StatementInfo | undefined>): string | undefined {
  if (p === undefined) return undefined;
  if (p.kind === 'parse') return p.info.sql;
  if (p.kind === 'query') return p.exec.info?.sql;
  if (p.kind === 'execute') return p.exec.info?.sql ?? portals.get(p.portal)?.sql;
  return undefined;
}

function what(p: Pending | undefined): string {
  return p === undefined ? 'nothing' : p.kind;
}

export type { QueryItem };
