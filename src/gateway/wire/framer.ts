import { GatewayError, ProtocolViolation } from './errors.js';

/**
 * Splits a PostgreSQL v3 byte stream into whole messages.
 *
 * `push` returns one buffer holding every message completed by the chunk, so the relay can walk
 * it with offsets and forward unchanged runs as slices of the original chunk (no per-message
 * copy on the hot path). A partial message is kept until it completes; a message spread over
 * many chunks is joined once, when its last byte arrives, not on every chunk.
 *
 * Typed messages are `type:u8 len:i32 body` (len counts itself, not the type byte). The startup
 * phase uses untyped packets `len:i32 body`; `untyped` switches the framer between the two.
 */
/** Per-message-type length limits; `max` for every type not listed. */
export interface MessageLimits {
  max: number;
  /** Message type character (e.g. 'Q') → largest length accepted. */
  byType?: Record<string, number>;
  /**
   * Server messages: over a by-type limit is 54000 with this text (`%max` replaced by the limit),
   * never with the message's length, which is data (see below).
   */
  tooLarge?: Record<string, string>;
  /**
   * Server ErrorResponse/NoticeResponse types whose messages are held only up to this many bytes
   * (type byte and length included): the field cut there is replaced whole by {@link CUT_FIELD},
   * the fields after it are dropped, the rest of the message is skipped as it arrives. A
   * 60 MB error (`select repeat('x', 60000000)::int`) is never held (attack round 8 G4).
   */
  clip?: { types: string; bytes: number };
}

/** What stands for an error or notice field cut by {@link MessageLimits.clip}: nothing of it is kept. */
export const CUT_FIELD = "[cut by tightloop: the server's message was over the gateway's limit]";

/** Defaults of {@link clientMessageLimits}: statements 1 MiB, Bind and CopyData 16 / 4 MiB, the rest 64 KiB. */
export const CLIENT_LIMITS = { statement: 1024 * 1024, bind: 16 * 1024 * 1024, copyData: 4 * 1024 * 1024, other: 64 * 1024 } as const;

/**
 * Limits for what a logged-in client sends, by message type: without them one 200 MiB Query is
 * buffered whole before anything looks at it. Query and Parse carry SQL text; Bind carries
 * parameter values; CopyData carries COPY FROM STDIN rows (clients send them in small chunks);
 * everything else (Describe, Execute, Sync, Close, Flush, Terminate, password messages,
 * FunctionCall, CopyDone/CopyFail) is small.
 */
export function clientMessageLimits(opts: { statement?: number; bind?: number; copyData?: number; other?: number } = {}): MessageLimits {
  const statement = opts.statement ?? CLIENT_LIMITS.statement;
  return {
    max: opts.other ?? CLIENT_LIMITS.other,
    byType: { Q: statement, P: statement, B: opts.bind ?? CLIENT_LIMITS.bind, d: opts.copyData ?? CLIENT_LIMITS.copyData, f: statement },
  };
}

const TYPE_NAMES: Record<string, string> = { Q: 'Query', P: 'Parse', B: 'Bind', d: 'CopyData', f: 'CopyFail' };

export class MessageFramer {
  private pending: Buffer[] = [];
  private pendingLen = 0;
  /** Bytes the first pending message needs in total, once its header is known. */
  private needed = 0;
  private readonly maxMessageBytes: number;
  /** Limit by type byte (typed messages); 0 = maxMessageBytes. */
  private readonly byType = new Int32Array(256);
  /** Limits were given by type: over one is 54000 naming the message, not a bare 08P01. */
  private readonly perType: boolean;
  private readonly tooLarge: Record<string, string> | undefined;
  /** Clip length by type byte (0 = not clipped). */
  private readonly clipAt = new Int32Array(256);
  /** Bytes of a clipped message still to skip as they arrive. */
  private skip = 0;
  /** The clipped message to emit once its skipped bytes have passed. */
  private clipped: Buffer | undefined;

  constructor(
    limits: number | MessageLimits,
    public untyped = false,
  ) {
    const l = typeof limits === 'number' ? { max: limits } : limits;
    this.maxMessageBytes = l.max;
    this.perType = typeof limits !== 'number' && l.tooLarge === undefined;
    this.tooLarge = l.tooLarge;
    for (const [t, n] of Object.entries(l.byType ?? {})) this.byType[t.charCodeAt(0)] = n;
    for (const t of l.clip?.types ?? '') this.clipAt[t.charCodeAt(0)] = l.clip?.bytes ?? 0;
  }

  /** Bytes held back waiting for the rest of a message. */
  get bufferedBytes(): number {
    return this.pendingLen;
  }

  /** Returns the complete messages now available (possibly empty), in wire order. */
  push(chunk: Buffer): Buffer {
    let head: Buffer | undefined;
    if (this.skip > 0) {
      const n = Math.min(this.skip, chunk.length);
      this.skip -= n;
      if (this.skip > 0) return EMPTY;
      head = this.clipped;
      this.clipped = undefined;
      chunk = chunk.subarray(n);
      if (chunk.length === 0) return head ?? EMPTY;
    }
    const rest = this.frame(chunk);
    if (head === undefined) return rest;
    return rest.length === 0 ? head : Buffer.concat([head, rest]);
  }

  private frame(chunk: Buffer): Buffer {
    if (this.pendingLen > 0) {
      if (this.needed > 0 && this.pendingLen + chunk.length < this.needed) {
        this.pending.push(chunk);
        this.pendingLen += chunk.length;
        return EMPTY;
      }
      this.pending.push(chunk);
      chunk = Buffer.concat(this.pending, this.pendingLen + chunk.length);
      this.pending = [];
      this.pendingLen = 0;
    }
    this.needed = 0;
    const header = this.untyped ? 4 : 5;
    const lenAt = this.untyped ? 0 : 1;
    const extra = this.untyped ? 0 : 1;
    let off = 0;
    while (chunk.length - off >= header) {
      const len = chunk.readInt32BE(off + lenAt);
      const max = this.untyped ? this.maxMessageBytes : this.byType[chunk.readUInt8(off)] || this.maxMessageBytes;
      if (len < 4 || len > max) {
        const said = len >= 4 && !this.untyped ? this.tooLarge?.[String.fromCharCode(chunk.readUInt8(off))] : undefined;
        if (said !== undefined) throw new GatewayError('message_too_large', said.replace('%max', String(max)), { fatal: true });
        if (len >= 4 && !this.untyped && this.perType) {
          const t = String.fromCharCode(chunk.readUInt8(off));
          throw new GatewayError('message_too_large', `${TYPE_NAMES[t] ?? `'${t}'`} message of ${len} bytes is over the gateway's limit of ${max} bytes`, { fatal: true });
        }
        // The length of a server message over the limit is data (`repeat('x', 2^28 + ascii(name))`
        // would spell a masked value one probe at a time): it is never printed.
        throw new ProtocolViolation(len < 4 ? `invalid message length ${len}` : `message over the gateway's limit of ${max} bytes`);
      }
      const clip = this.untyped ? 0 : (this.clipAt[chunk.readUInt8(off)] ?? 0);
      if (clip > 0 && extra + len > clip) {
        // Held only up to `clip` bytes: wait for those, then skip the rest as it arrives.
        if (off + clip > chunk.length) {
          this.needed = clip;
          break;
        }
        const msg = clipFields(chunk.subarray(off, off + clip));
        const have = chunk.length - off;
        const out = off === 0 ? [msg] : [chunk.subarray(0, off), msg];
        if (have >= extra + len) {
          // The whole message is here: go on after it.
          const after = this.frame(chunk.subarray(off + extra + len));
          if (after.length > 0) out.push(after);
          return Buffer.concat(out);
        }
        // The output so far goes now; the clipped message once the rest of it has passed.
        this.skip = extra + len - have;
        this.clipped = msg;
        return off === 0 ? EMPTY : chunk.subarray(0, off);
      }
      if (off + extra + len > chunk.length) {
        this.needed = extra + len;
        break;
      }
      off += extra + len;
    }
    if (off < chunk.length) {
      this.pending.push(chunk.subarray(off));
      this.pendingLen = chunk.length - off;
    }
    return off === chunk.length ? chunk : chunk.subarray(0, off);
  }

  /** Hands back (and forgets) bytes not yet framed, e.g. when a socket changes hands. */
  drain(): Buffer {
    const rest = Buffer.concat(this.pending, this.pendingLen);
    this.pending = [];
    this.pendingLen = 0;
    this.needed = 0;
    return rest;
  }
}

const EMPTY = Buffer.alloc(0);

/**
 * An ErrorResponse or NoticeResponse from its first bytes: the fields complete in them, then the
 * field cut there as {@link CUT_FIELD} (none of its text), then the terminator.
 */
function clipFields(prefix: Buffer): Buffer {
  let off = 5;
  let code = 0;
  while (off < prefix.length && prefix[off] !== 0) {
    const stop = prefix.indexOf(0, off + 1);
    if (stop === -1) {
      code = prefix[off] ?? 0;
      break;
    }
    off = stop + 1;
  }
  const cut = code === 0 ? EMPTY : Buffer.from(`${String.fromCharCode(code)}${CUT_FIELD}\0`, 'latin1');
  const out = Buffer.allocUnsafe(off + cut.length + 1);
  prefix.copy(out, 0, 0, off);
  cut.copy(out, off);
  out[out.length - 1] = 0;
  out.writeInt32BE(out.length - 1, 1);
  return out;
}

/** Offset just past the typed message starting at `off` in a buffer from {@link MessageFramer}. */
export function messageEnd(buf: Buffer, off: number): number {
  return off + 1 + buf.readInt32BE(off + 1);
}
