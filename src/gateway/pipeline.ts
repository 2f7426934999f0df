import type { Decision, StatementFacts } from './guardrails/index.js';
import type { MaskCounts, ResultPlan } from './masking/index.js';
import type { CeilingCheck, RowCeiling } from './row-ceiling.js';
import type { BoundParameters } from './wire/decode.js';

/**
 * Book-keeping for the protocol state the server keeps. The server answers requests strictly in
 * order, so the relay keeps a FIFO of what it forwarded that will produce an answer; the head of
 * that queue says what an incoming server message belongs to. What the server knows (prepared
 * statements, portals) is mirrored only when the server confirms it (ParseComplete,
 * BindComplete, CloseComplete), in server order, never when the client asks: a request the
 * server skipped (after an error, until Sync) changes nothing.
 */

/** A statement as the gateway judged it (at Parse, or per simple Query string). */
export interface StatementInfo {
  sql: string;
  facts: StatementFacts;
  decision: Decision;
  /** Runs on an approval that is for one execution (approvals.ts): one Bind of it, then no more. */
  approvedOnce?: boolean;
  /** A counted write this session must hold under the row ceiling (row-ceiling.ts). */
  rowCeiling?: RowCeiling;
}

/** One execution: a simple Query string or an Execute of a portal. Audited when it ends. */
export interface Execution {
  info: StatementInfo | undefined;
  protocol: 'simple' | 'extended';
  startedAt: number;
  rows: number;
  /** DataRows forwarded to the client so far (recorded when the statement fails or the session ends first). */
  sent: number;
  masked: MaskCounts;
  /** SQLSTATE of the error that ended it, if any. */
  error?: string;
  /** The gateway blocked it (already audited when blocked). */
  blocked?: boolean;
  /** Values bound to the portal it ran (extended protocol; audit-text.ts bounds). */
  params?: BoundParameters;
  /** SQL EXECUTE: the text that PREPAREd each name it ran (prepared-names.ts), for the audit. */
  prepared?: Record<string, string>;
}

export interface DescribeItem {
  kind: 'describe';
  target: 'S' | 'P';
  name: string;
  /** Injected by the gateway: its answer is not forwarded. */
  swallow: boolean;
  /** Stands for a simple Query's own description: NoData is not forwarded (row-ceiling.ts). */
  dropNoData?: boolean;
  /** From the answer: a plan for RowDescription, null for NoData, undefined before it came. */
  plan?: ResultPlan | null;
}

export interface ExecuteItem {
  kind: 'execute';
  portal: string;
  exec: Execution;
  /** The Describe of this portal that the server answers right before it (when masking). */
  describe: DescribeItem | undefined;
  copyOut?: boolean;
  /** Under the row ceiling: rows and tag held, later client bytes held (row-ceiling.ts). */
  ceiling?: CeilingCheck;
}

export interface QueryItem {
  kind: 'query';
  exec: Execution;
  /** Plan of the current result of the query string (from its last RowDescription). */
  plan?: ResultPlan;
  /** Statements of the string the server has completed so far (the next result is the next one's). */
  completed?: number;
  blocked?: Buffer;
  copyOut?: boolean;
}

export type Pending =
  | { kind: 'parse'; name: string; info: StatementInfo; blocked?: Buffer; swallow?: boolean }
  | { kind: 'bind'; portal: string; statement: string; blocked?: Buffer; swallow?: boolean }
  | { kind: 'close'; target: 'S' | 'P'; name: string; swallow?: boolean }
  | DescribeItem
  | ExecuteItem
  | QueryItem
  | { kind: 'sync' }
  /** The client's CopyDone/CopyFail: no answer of its own; ends a COPY FROM STDIN window. */
  | { kind: 'copyend' };

/** A FIFO with O(1) shift; the relay touches its head once per server message. */
export class PendingQueue {
  private items: Pending[] = [];
  private start = 0;
  /**
   * The server is discarding messages until the client's next Sync (an extended-protocol error
   * came before any queued Sync): requests queued now get no answer, whatever their kind.
   */
  private skipping = false;

  /** Queues a request in wire order; false when the server will discard it (skip to Sync). */
  push(p: Pending): boolean {
    if (this.skipping) {
      if (p.kind !== 'sync') return false;
      this.skipping = false;
    }
    this.items.push(p);
    return true;
  }

  /** The server is discarding requests until the client's next Sync. */
  get discarding(): boolean {
    return this.skipping;
  }

  /** Every request still waiting for its answer, in order. */
  all(): readonly Pending[] {
    return this.items.slice(this.start);
  }

  get head(): Pending | undefined {
    return this.items[this.start];
  }

  get length(): number {
    return this.items.length - this.start;
  }

  /** Removes the head; markers that expect no answer (copyend) go with it. */
  shift(): Pending | undefined {
    if (this.start >= this.items.length) return undefined;
    const p = this.items[this.start++];
    while (this.start < this.items.length && this.items[this.start].kind === 'copyend') this.start++;
    if (this.start === this.items.length) {
      this.items = [];
      this.start = 0;
    } else if (this.start > 1024 && this.start * 2 > this.items.length) {
      this.items = this.items.slice(this.start);
      this.start = 0;
    }
    return p;
  }

  /** Puts a request the gateway injected at the head (it is answered next). */
  unshift(p: Pending): void {
    if (this.start > 0) this.items[--this.start] = p;
    else this.items.unshift(p);
  }

  /** After an error in the extended protocol the server skips to Sync: so do we. Returns what it dropped. */
  dropUntilSync(): Pending[] {
    const dropped: Pending[] = [];
    for (let p = this.head; p !== undefined && p.kind !== 'sync'; p = this.head) {
      dropped.push(p);
      this.shift();
    }
    if (this.head === undefined) this.skipping = true;
    return dropped;
  }

  /**
   * The server entered COPY FROM STDIN for the head: it consumes (and ignores Sync and Flush in)
   * everything the client sent after it up to CopyDone/CopyFail. Removes those syncs; returns
   * 'ended' when the client's CopyDone is already queued, 'open' when it is still to come, and
   * 'invalid' when the client queued another request inside the COPY window.
   */
  enterCopyIn(): 'ended' | 'open' | 'invalid' {
    const keep: Pending[] = [];
    let i = this.start + 1;
    let result: 'ended' | 'open' | 'invalid' = 'open';
    for (; i < this.items.length; i++) {
      const p = this.items[i];
      if (p.kind === 'sync') continue;
      if (p.kind === 'copyend') {
        result = 'ended';
        i++;
        break;
      }
      result = 'invalid';
      break;
    }
    if (result === 'invalid') return result;
    keep.push(...this.items.slice(i));
    this.items = [this.items[this.start], ...keep];
    this.start = 0;
    return result;
  }
}
