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
}

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

  constructor(
    limits: number | MessageLimits,
    public untyped = false,
  ) {
    const l = typeof limits === 'number' ? { max: limits } : limits;
    this.maxMessageBytes = l.max;
    this.perType = typeof limits !== 'number' && l.tooLarge === undefined;
    this.tooLarge = l.tooLarge;
    for (const [t, n] of Object.entries(l.byType ?? {})) this.byType[t.charCodeAt(0)] = n;
  }

  /** Bytes held back waiting for the rest of a message. */
  get bufferedBytes(): number {
    return this.pendingLen;
  }

  /** Returns the complete messages now available (possibly empty), in wire order. */
  push(chunk: Buffer): Buffer {
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

/** Offset just past the typed message starting at `off` in a buffer from {@link MessageFramer}. */
export function messageEnd(buf: Buffer, off: number): number {
  return off + 1 + buf.readInt32BE(off + 1);
}
