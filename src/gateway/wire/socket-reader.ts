import type { Duplex } from 'node:stream';
import { GatewayError, ProtocolViolation } from './errors.js';

/**
 * Pull-style message reading for the short conversational phases (startup, authentication),
 * where code reads as "send this, await that". The streaming relay takes over afterwards via
 * `detach`, which returns any bytes already received but not yet consumed.
 */
export interface WireMessage {
  /** Type byte as a character; '' for untyped startup packets. */
  type: string;
  body: Buffer;
}

export class SocketReader {
  private buf: Buffer = Buffer.alloc(0);
  private waiter: { resolve: () => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;
  private readonly onData = (chunk: Buffer): void => {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    if (this.buf.length > this.maxBytes + 5) this.fail(new ProtocolViolation('message too large during startup'));
    this.wake();
  };
  private readonly onEnd = (): void => this.fail(new GatewayError('connection_closed', 'connection closed by peer', { fatal: true }));
  private readonly onError = (err: Error): void => this.fail(err);

  constructor(
    private readonly socket: Duplex,
    private readonly maxBytes = 64 * 1024,
  ) {
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
    socket.on('error', this.onError);
  }

  private fail(err: Error): void {
    this.failure ??= err;
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.resolve();
  }

  /** Bytes received and not consumed yet. */
  get buffered(): number {
    return this.buf.length;
  }

  /** Next message; `untyped` for startup-phase packets (no type byte). */
  async next(untyped = false, timeoutMs = 30_000): Promise<WireMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const header = untyped ? 4 : 5;
      if (this.buf.length >= header) {
        const len = this.buf.readInt32BE(untyped ? 0 : 1);
        if (len < 4 || len > this.maxBytes) throw new ProtocolViolation(`invalid message length ${len}`);
        const total = (untyped ? 0 : 1) + len;
        if (this.buf.length >= total) {
          const msg: WireMessage = {
            type: untyped ? '' : String.fromCharCode(this.buf.readUInt8(0)),
            body: this.buf.subarray(header, total),
          };
          this.buf = this.buf.subarray(total);
          return msg;
        }
      }
      if (this.failure !== undefined) throw this.failure;
      const left = deadline - Date.now();
      if (left <= 0) throw new GatewayError('timeout', 'timed out waiting for the peer', { fatal: true });
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(resolve, left);
        this.waiter = {
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
          reject,
        };
      });
    }
  }

  /** Stops reading (the socket is paused) and returns unconsumed bytes. */
  detach(): Buffer {
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onEnd);
    this.socket.off('error', this.onError);
    this.socket.pause();
    const rest = this.buf;
    this.buf = Buffer.alloc(0);
    return rest;
  }
}
