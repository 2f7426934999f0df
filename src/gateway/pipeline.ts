import type { Decision, StatementFacts } from './guardrails/index.js';
import type { MaskCounts, ResultPlan } from './masking/index.js';
import type { FieldDescription } from './wire/decode.js';

/**
 * Book-keeping for the extended query protocol. The server answers requests strictly in order,
 * so the relay keeps a FIFO of what it forwarded that will produce an answer; the head of that
 * queue says what an incoming server message belongs to (which portal a DataRow comes from,
 * which statement a RowDescription describes, whether an error ends a blocked statement).
 */

/** A statement as the gateway judged it (at Parse, or per simple Query string). */
export interface StatementInfo {
  sql: string;
  facts: StatementFacts;
  decision: Decision;
  /** RowDescription from a Describe of the statement; null = returns no rows. */
  desc?: FieldDescription[] | null;
}

export interface PortalInfo {
  stmt: StatementInfo | undefined;
  /** Result format codes from Bind. */
  formats: number[];
  /** From a Describe of this portal (by the client, or injected by the gateway). */
  desc?: FieldDescription[] | null;
  /** A Describe of this portal is on its way, so its answer precedes any Execute rows. */
  described: boolean;
  plan?: ResultPlan;
}

/** One execution: a simple Query string or an Execute of a portal. Audited when it ends. */
export interface Execution {
  info: StatementInfo | undefined;
  protocol: 'simple' | 'extended';
  startedAt: number;
  rows: number;
  masked: MaskCounts;
  /** SQLSTATE of the error that ended it, if any. */
  error?: string;
  /** The gateway blocked it (already audited when blocked). */
  blocked?: boolean;
}

export type Pending =
  | { kind: 'parse'; blocked?: Buffer; exec?: Execution }
  | { kind: 'bind' }
  | { kind: 'close' }
  | { kind: 'describe'; target: 'S' | 'P'; stmt?: StatementInfo; portal?: PortalInfo; swallow: boolean }
  | { kind: 'execute'; portal: PortalInfo; exec: Execution }
  | { kind: 'sync' }
  | { kind: 'query'; exec: Execution; plan?: ResultPlan; blocked?: Buffer }
  | { kind: 'function' };

/** A FIFO with O(1) shift; the relay touches its head once per server message. */
export class PendingQueue {
  private items: (Pending | undefined)[] = [];
  private start = 0;

  push(p: Pending): void {
    this.items.push(p);
  }

  get head(): Pending | undefined {
    return this.items[this.start];
  }

  get length(): number {
    return this.items.length - this.start;
  }

  shift(): Pending | undefined {
    const p = this.items[this.start];
    if (p === undefined) return undefined;
    this.items[this.start++] = undefined;
    if (this.start > 1024 && this.start * 2 > this.items.length) {
      this.items = this.items.slice(this.start);
      this.start = 0;
    }
    return p;
  }

  /** After an error in the extended protocol the server skips to Sync: so do we. */
  dropUntilSync(): Pending[] {
    const dropped: Pending[] = [];
    for (let p = this.head; p !== undefined && p.kind !== 'sync'; p = this.head) dropped.push(this.shift() as Pending);
    return dropped;
  }
}
