import { ProtocolViolation } from './errors.js';

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
export class MessageFramer {
  private pending: Buffer[] = [];
  private pendingLen = 0;
  /** Bytes the first pending message needs in total, once its header is known. */
  private needed = 0;

  constructor(
    private readonly maxMessageBytes: number,
    public untyped = false,
  ) {}

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
      if (len < 4 || len > this.maxMessageBytes) {
        throw new ProtocolViolation(`invalid message length ${len}`);
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
