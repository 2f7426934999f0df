import type { Duplex } from 'node:stream';
import type { Masker, ResultPlan } from './masking/index.js';
import { PendingQueue, type Execution, type PortalInfo, type StatementInfo } from './pipeline.js';
import { decodeBind, decodeCopyResponse, decodeErrorFields, decodeExecute, decodeParse, decodeRowDescription, decodeTarget, readCString, rowsFromTag, type FieldDescription } from './wire/decode.js';
import { describeMessage, errorResponse, noticeResponse, parseMessage, queryMessage, type ErrorFields } from './wire/encode.js';
import { ProtocolViolation } from './wire/errors.js';
import { MessageFramer, type MessageLimits } from './wire/framer.js';

/**
 * The relay between one client and its upstream connection, after login. Client messages are
 * judged (guardrails at Parse and Query) and forwarded; server messages are attributed to the
 * request they answer (pipeline.ts), masked when they carry row data, and forwarded. Unchanged
 * messages travel as slices of the chunk they arrived in.
 *
 * A blocked statement is replaced, upstream, by one that fails to parse (BLOCK_MARKER); the
 * server's syntax error is swapped for the guardrail's ErrorResponse on the way back. So the
 * server itself discards the rest of the pipeline until Sync, aborts an open transaction, and
 * answers ReadyForQuery with the right status: the client sees exactly what it would see if
 * PostgreSQL had refused the statement, and the connection stays usable.
 *
 * Backpressure: when a socket's write buffer is full, the other side is paused until 'drain',
 * so a huge result streams through with bounded memory.
 */

export const BLOCK_MARKER = 'tightloop_guardrail_block';

export interface Verdict {
  info: StatementInfo;
  /** Set when the statement must not run: the error the client gets. */
  error?: ErrorFields;
  /** Set when it runs with a warning. */
  notice?: ErrorFields;
}

export interface RelayHooks {
  /** Judges one statement text (Parse or Query). Blocked statements are audited by the caller. */
  judge(sql: string, protocol: 'simple' | 'extended'): Verdict;
  /** Refuses a protocol message the parser cannot see (audited by the caller). */
  refuse(what: string): ErrorFields;
  /** A statement finished (or failed) upstream. */
  finished(exec: Execution): void;
  /** The relay hit something it cannot continue from. */
  fatal(err: Error): void;
}

export interface RelayStats {
  /** Largest client write buffer seen, in bytes (bounded when backpressure works). */
  maxClientBuffered: number;
  upstreamPauses: number;
}

const EMPTY_FORMATS: number[] = [];

export class Relay {
  private readonly fromClient: MessageFramer;
  private readonly fromUpstream: MessageFramer;
  private readonly pending = new PendingQueue();
  private readonly statements = new Map<string, StatementInfo>();
  private readonly portals = new Map<string, PortalInfo>();
  private copyOut = false;
  private lastRowDescription: Buffer | undefined;
  private lastPlan: ResultPlan | undefined;
  private lastFields: FieldDescription[] | undefined;
  private upstreamPaused = false;
  private clientPaused = false;
  txStatus = 'I';
  readonly stats: RelayStats = { maxClientBuffered: 0, upstreamPauses: 0 };

  constructor(
    private readonly client: Duplex,
    private readonly upstream: Duplex,
    private readonly masker: Masker | undefined,
    private readonly hooks: RelayHooks,
    maxMessageBytes: number,
    clientLimits?: MessageLimits,
  ) {
    this.fromClient = new MessageFramer(clientLimits ?? maxMessageBytes);
    this.fromUpstream = new MessageFramer(maxMessageBytes);
  }

  /** Starts relaying; `clientBytes`/`upstreamBytes` were received before the relay took over. */
  start(clientBytes: Buffer, upstreamBytes: Buffer): void {
    // One listener per socket, no closure per chunk (this runs for every round trip).
    const fromClient = (chunk: Buffer): void => {
      try { this.onClientData(chunk); } catch (err) { this.hooks.fatal(err as Error); }
    };
    const fromUpstream = (chunk: Buffer): void => {
      try { this.onUpstreamData(chunk); } catch (err) { this.hooks.fatal(err as Error); }
    };
    this.client.on('data', fromClient);
    this.upstream.on('data', fromUpstream);
    if (upstreamBytes.length > 0) fromUpstream(upstreamBytes);
    if (clientBytes.length > 0) fromClient(clientBytes);
    this.client.resume();
    this.upstream.resume();
  }

  // ---- client → upstream ---------------------------------------------------------------

  private onClientData(chunk: Buffer): void {
    const buf = this.fromClient.push(chunk);
    const out: Buffer[] = [];
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
      switch (type) {
        case 0x51: /* Q */ {
          const v = this.hooks.judge(readCString(body, 0).value, 'simple');
          const exec = this.execution(v.info, 'simple');
          if (v.error !== undefined) {
            exec.blocked = true;
            this.pending.push({ kind: 'query', exec, blocked: errorResponse(v.error) });
            replace = queryMessage(BLOCK_MARKER);
          } else {
            this.pending.push({ kind: 'query', exec });
            if (v.notice !== undefined) this.client.write(noticeResponse(v.notice));
          }
          break;
        }
        case 0x50: /* P */ {
          const parse = decodeParse(body);
          const v = this.hooks.judge(parse.sql, 'extended');
          this.statements.set(parse.name, v.info);
          if (v.error !== undefined) {
            this.pending.push({ kind: 'parse', blocked: errorResponse(v.error) });
            // The unnamed statement, so an existing name cannot produce a different error first.
            replace = parseMessage('', BLOCK_MARKER);
          } else {
            this.pending.push({ kind: 'parse' });
            if (v.notice !== undefined) this.client.write(noticeResponse(v.notice));
          }
          break;
        }
        case 0x42: /* B */ {
          const bind = decodeBind(body);
          this.portals.set(bind.portal, { stmt: this.statements.get(bind.statement), formats: bind.resultFormats, described: false });
          this.pending.push({ kind: 'bind' });
          break;
        }
        case 0x44: /* D */ {
          const t = decodeTarget(body);
          if (t.kind === 'S') this.pending.push({ kind: 'describe', target: 'S', stmt: this.statements.get(t.name), swallow: false });
          else {
            const portal = this.portals.get(t.name);
            if (portal !== undefined) portal.described = true;
            this.pending.push({ kind: 'describe', target: 'P', portal, swallow: false });
          }
          break;
        }
        case 0x45: /* E */ {
          const name = decodeExecute(body).portal;
          const portal = this.portals.get(name) ?? { stmt: undefined, formats: EMPTY_FORMATS, described: false };
          if (this.masker !== undefined && !portal.described && portal.stmt?.desc === undefined) {
            // Rows are coming and nobody asked what they look like: ask, and keep the answer.
            cut(describeMessage('P', name));
            run = off;
            portal.described = true;
            this.pending.push({ kind: 'describe', target: 'P', portal, swallow: true });
          }
          this.pending.push({ kind: 'execute', portal, exec: this.execution(portal.stmt, 'extended') });
          break;
        }
        case 0x43: /* C */ {
          const t = decodeTarget(body);
          if (t.kind === 'S') this.statements.delete(t.name);
          else this.portals.delete(t.name);
          this.pending.push({ kind: 'close' });
          break;
        }
        case 0x53: /* S */
          this.pending.push({ kind: 'sync' });
          break;
        case 0x46: /* F */ {
          // FunctionCall names a function by OID, out of the parser's sight: fail closed.
          const exec = this.execution(undefined, 'simple');
          exec.blocked = true;
          this.pending.push({ kind: 'query', exec, blocked: errorResponse(this.hooks.refuse('FunctionCall message')) });
          replace = queryMessage(BLOCK_MARKER);
          break;
        }
        case 0x48: /* H flush */
        case 0x64: /* d */
        case 0x63: /* c */
        case 0x66: /* f */
        case 0x58: /* X */
          break;
        default:
          throw new ProtocolViolation(`unexpected message type '${String.fromCharCode(type)}' from client`);
      }
      if (replace !== undefined) {
        cut(replace);
        run = end;
      }
      off = end;
    }
    cut();
    this.write(this.upstream, out, 'upstream');
  }

  private execution(info: StatementInfo | undefined, protocol: 'simple' | 'extended'): Execution {
    return { info, protocol, startedAt: performance.now(), rows: 0, masked: {} };
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
      let replace: Buffer | undefined;
      let drop = false;
      const head = this.pending.head;
      switch (type) {
        case 0x44: /* D DataRow */ {
          const plan = head?.kind === 'query' ? head.plan : head?.kind === 'execute' ? this.portalPlan(head.portal) : undefined;
          if (plan !== undefined && this.masker !== undefined) {
            replace = this.masker.maskDataRow(buf, off, end, plan, head?.kind === 'query' || head?.kind === 'execute' ? head.exec.masked : {});
          }
          break;
        }
        case 0x64: /* d CopyData */
          if (this.copyOut && this.masker !== undefined && (head?.kind === 'query' || head?.kind === 'execute')) {
            replace = this.masker.maskCopyData(buf, off, end, head.exec.masked);
          }
          break;
        case 0x31: /* 1 */
        case 0x32: /* 2 */
        case 0x33: /* 3 */
          this.pending.shift();
          break;
        case 0x74: /* t ParameterDescription */
          drop = head?.kind === 'describe' && head.swallow;
          break;
        case 0x54: /* T RowDescription */ {
          const body = buf.subarray(off + 5, end);
          if (head?.kind === 'describe') {
            if (head.target === 'P' && head.portal !== undefined && this.masker !== undefined) {
              // Prepared executions describe the same portal shape every time: reuse the plan.
              head.portal.plan = this.planFor(body);
              head.portal.desc = this.lastFields;
            } else this.described(head, decodeRowDescription(body));
            drop = head.swallow;
            this.pending.shift();
          } else if (head?.kind === 'query' && this.masker !== undefined) {
            head.plan = this.planFor(body);
          }
          break;
        }
        case 0x6e: /* n NoData */
          if (head?.kind === 'describe') {
            this.described(head, null);
            drop = head.swallow;
            this.pending.shift();
          }
          break;
        case 0x43: /* C CommandComplete */
        case 0x49: /* I EmptyQuery */
        case 0x73: /* s PortalSuspended */
          this.copyOut = false;
          if (head?.kind === 'execute') {
            if (type === 0x43) head.exec.rows += rowsFromTag(buf.subarray(off + 5, end));
            this.pending.shift();
            this.hooks.finished(head.exec);
          } else if (head?.kind === 'query') {
            if (type === 0x43) head.exec.rows += rowsFromTag(buf.subarray(off + 5, end));
            head.plan = undefined;
          }
          break;
        case 0x45: /* E ErrorResponse */
          this.copyOut = false;
          replace = this.onError(buf, off, end);
          break;
        case 0x5a: /* Z ReadyForQuery */
          this.txStatus = String.fromCharCode(buf[off + 5]);
          for (let p = this.pending.shift(); p !== undefined; p = this.pending.shift()) {
            if (p.kind === 'query') {
              if (p.exec.blocked !== true) this.hooks.finished(p.exec);
              break;
            }
            if (p.kind === 'sync') break;
          }
          break;
        case 0x48: /* H CopyOutResponse */
          this.copyOut = true;
          if (this.masker !== undefined && decodeCopyResponse(buf.subarray(off + 5, end)).format === 1) {
            // Binary COPY cannot be inspected; guardrails refuse it, so this is a bypass attempt.
            throw new ProtocolViolation('binary COPY output cannot be masked');
          }
          break;
        case 0x57: /* W CopyBothResponse */
          throw new ProtocolViolation('replication (COPY BOTH) is not supported through the gateway');
        default:
          // G CopyInResponse, c CopyDone, N notices, A notifications, S parameter changes, V.
          break;
      }
      if (replace !== undefined || drop) {
        if (off > run) out.push(buf.subarray(run, off));
        if (replace !== undefined) out.push(replace);
        run = end;
      }
      off = end;
    }
    if (buf.length > run) out.push(run === 0 ? buf : buf.subarray(run));
    this.write(this.client, out, 'client');
  }

  /** Simple queries repeat the same RowDescription; reuse the last plan when the bytes match. */
  private planFor(body: Buffer): ResultPlan | undefined {
    if (this.lastRowDescription !== undefined && this.lastRowDescription.equals(body)) return this.lastPlan;
    this.lastRowDescription = Buffer.from(body);
    this.lastFields = decodeRowDescription(body);
    this.lastPlan = this.masker?.plan(this.lastFields);
    return this.lastPlan;
  }

  private described(head: { target: 'S' | 'P'; stmt?: StatementInfo; portal?: PortalInfo }, fields: ReturnType<typeof decodeRowDescription> | null): void {
    if (head.target === 'S') {
      if (head.stmt !== undefined) head.stmt.desc = fields;
    } else if (head.portal !== undefined) {
      head.portal.desc = fields;
      head.portal.plan = undefined;
    }
  }

  private portalPlan(portal: PortalInfo): ResultPlan | undefined {
    if (portal.plan !== undefined || this.masker === undefined) return portal.plan;
    if (portal.desc !== undefined && portal.desc !== null) portal.plan = this.masker.plan(portal.desc);
    else if (portal.stmt?.desc !== undefined && portal.stmt.desc !== null) portal.plan = this.masker.plan(portal.stmt.desc, portal.formats);
    return portal.plan;
  }

  /** Swaps the marker's syntax error for the guardrail's; otherwise notes the error. */
  private onError(buf: Buffer, off: number, end: number): Buffer | undefined {
    const head = this.pending.head;
    const fields = decodeErrorFields(buf.subarray(off + 5, end));
    const isMarker = fields.get('C') === '42601' && (fields.get('M') ?? '').includes(BLOCK_MARKER);
    let replacement: Buffer | undefined;
    if (head !== undefined && (head.kind === 'parse' || head.kind === 'query') && head.blocked !== undefined && isMarker) {
      replacement = head.blocked;
    }
    if (head?.kind === 'query') {
      head.exec.error ??= fields.get('C');
      return replacement;
    }
    if (head?.kind === 'execute') {
      head.exec.error = fields.get('C');
      this.hooks.finished(head.exec);
    }
    if (head !== undefined && head.kind !== 'sync') this.pending.dropUntilSync();
    return replacement;
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
      from.resume();
    });
  }

  /** Writes a gateway-originated message to the client (between whole messages). */
  sendToClient(msg: Buffer): void {
    this.client.write(msg);
  }
}
