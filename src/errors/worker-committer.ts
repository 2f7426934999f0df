/**
 * WorkerCommitter: runs group commits in commit-worker.ts (its own SQLite connection), so the
 * inserts, upserts and the commit's fsync never block the event loop. A commit's promise
 * resolves only after the worker's transaction returned — durable, as in-thread.
 *
 * The worker needs compiled JavaScript; when the server runs from TypeScript sources (vitest),
 * `workerScript()` finds none and the errors module commits in-thread instead (same rows, same
 * transaction, see commit.ts).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { AppError } from '../core/app-error.js';
import type { BatchCommitter, CommitOutcome, EventToCommit } from './commit.js';
import type { CommitRequest } from './commit-worker.js';
import { isRawSentryEvent } from './model.js';

/** The compiled worker next to this module, or undefined when running from sources. */
export function workerScript(): URL | undefined {
  const url = new URL('./commit-worker.js', import.meta.url);
  return import.meta.url.endsWith('.js') && existsSync(fileURLToPath(url)) ? url : undefined;
}

interface Waiting { resolve: (o: CommitOutcome) => void; reject: (e: unknown) => void }

export class WorkerCommitter implements BatchCommitter {
  private worker: Worker | undefined;
  private readonly waiting = new Map<number, Waiting>();
  private nextId = 1;

  constructor(private readonly script: URL, private readonly statePath: string) {}

  private start(): Worker {
    const w = new Worker(this.script, { workerData: { path: this.statePath } });
    w.on('message', (m: { id: number; outcome?: CommitOutcome; error?: string }) => {
      const p = this.waiting.get(m.id);
      if (p === undefined) return;
      this.waiting.delete(m.id);
      if (m.outcome !== undefined) p.resolve(m.outcome);
      else p.reject(new AppError('unavailable', 503, `error events not stored: ${m.error ?? 'unknown'}`, { retryAfterS: 1 }));
    });
    // A crashed worker fails what it held (not acknowledged, so senders retry); the next commit starts a new one.
    const fail = (why: string): void => {
      if (this.worker === w) this.worker = undefined;
      for (const p of this.waiting.values()) p.reject(new AppError('unavailable', 503, `error commit worker ${why}`, { retryAfterS: 1 }));
      this.waiting.clear();
    };
    w.on('error', (err) => fail(`failed: ${err.message}`));
    w.on('exit', (code) => fail(`exited with code ${code}`));
    this.worker = w;
    return w;
  }

  commit(items: EventToCommit[], receivedUs: number, otelSpanSeq?: number): Promise<CommitOutcome> {
    const w = this.worker ?? this.start();
    const id = this.nextId++;
    const transfer: ArrayBuffer[] = [];
    const slim = items.map((it): EventToCommit => {
      const e = it.event;
      if (isRawSentryEvent(e)) {
        // A copy the size of the item, moved (not cloned) to the worker: a view into a larger
        // buffer (the whole body, a pool slab) would otherwise be cloned whole.
        const raw = new Uint8Array(e.raw);
        transfer.push(raw.buffer);
        const c = e.compressed;
        if (c === undefined) return { ...it, event: { ...e, raw } };
        const bytes = new Uint8Array(c.bytes);
        transfer.push(bytes.buffer);
        return { ...it, event: { ...e, raw, compressed: { encoding: c.encoding, bytes: bytes as Buffer } } };
      }
      // The 50 KB payload text is not needed where a compressed copy travels with the event.
      return e.compressed === undefined ? it : { ...it, event: { ...e, payload: '' } };
    });
    const req: CommitRequest = { id, items: slim, receivedUs, otelSpanSeq };
    return new Promise<CommitOutcome>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      w.postMessage(req, transfer);
    });
  }

  async close(): Promise<void> {
    const w = this.worker;
    if (w === undefined) return;
    this.worker = undefined;
    const exited = new Promise((r) => w.once('exit', r));
    w.postMessage({ close: true });
    await exited;
  }
}
