import type { RuleAction } from './guardrails/index.js';
import { commandVerb, rowsFromTag } from './wire/decode.js';
import { cstr, frame, int16, int32, parseMessage, describeMessage, SYNC, type ErrorFields } from './wire/encode.js';

/**
 * The row ceiling at run time (guardrails/row-ceiling.ts says which statements): the gateway
 * lets a counted write run, but nothing commits it before the gateway has read its command tag.
 *
 * - Extended protocol: the Execute goes upstream followed by a Flush, and every client byte
 *   after it is held (relay.ts forward/held) until the tag is in. An implicit transaction
 *   commits at Sync and an explicit one at COMMIT: both are among the held bytes.
 * - Simple protocol: a Query commits when its string ends, so the gateway sends the statement
 *   as Parse/Bind/Describe/Execute/Flush of the unnamed statement (what a simple Query replaces
 *   anyway) and sends the Sync itself once the count is known.
 * - Over the ceiling, the gateway sends a statement that fails to parse (the guardrail marker)
 *   right behind the write, before any held byte: the error aborts the transaction, implicit or
 *   explicit, so the write can only be rolled back (a client savepoint is older than the write),
 *   and the server skips the client's pipeline to its Sync as it would after a failed Execute.
 *   The client gets the row-ceiling error for its statement instead of the tag.
 * - RETURNING rows are held with the tag (at most `limit` of them are kept; more means over),
 *   so no row of a refused write reaches the client. An Execute with a row limit that suspends
 *   before the tag is refused the same way: its count is unknown.
 * - An error of the write itself (or of anything before it) means nothing ran: the held bytes go.
 */

export interface RowCeiling {
  limit: number;
  /** The `row-ceiling` rule's action for this session: block, approve or warn. */
  action: Exclude<RuleAction, 'allow'>;
  /**
   * The statement is not known (names after SQL redefined some, relay.ts NamesAhead) and the
   * session has parsed a counted write under a name: only write tags count, and more rows than
   * the limit refuse it whatever it is (they were not kept).
   */
  unknown?: boolean;
}

/** Verbs of tags that count changed rows (INSERT counts an upsert's rows). */
const WRITE_VERBS = new Set(['UPDATE', 'DELETE', 'MERGE', 'INSERT']);

/** The named statement the over-ceiling marker is parsed into (a failed Parse makes nothing). */
export const CEILING_STATEMENT = 'tightloop_row_ceiling';

export class CeilingCheck {
  /** RETURNING rows held until the tag is in (copies; at most `limit`). */
  private rows: Buffer[] = [];
  private count = 0;
  private settled = false;
  private resolveGate!: () => void;
  /** Resolves when the client's later bytes may go upstream. */
  readonly gate: Promise<void>;

  constructor(
    readonly ceiling: RowCeiling,
    /** Converted from a simple Query: the gateway sends the Sync. */
    readonly simple: boolean,
  ) {
    this.gate = new Promise<void>((resolve) => {
      this.resolveGate = resolve;
    });
  }

  /** A RETURNING row, already masked: held (dropped once over the limit, which settles it anyway). */
  hold(row: Buffer): void {
    this.count++;
    if (this.count <= this.ceiling.limit) this.rows.push(Buffer.from(row));
    else this.rows = [];
  }

  /** Rows changed according to the tag, and whether that is over the ceiling. */
  judge(tagBody: Buffer): { rows: number; verb: string; over: boolean } {
    const verb = commandVerb(tagBody);
    const rows = rowsFromTag(tagBody);
    const counts = !this.ceiling.unknown || WRITE_VERBS.has(verb);
    return { rows, verb, over: (counts && rows > this.ceiling.limit) || this.count > this.ceiling.limit };
  }

  /** RETURNING rows seen so far. */
  get held(): number {
    return this.count;
  }

  /** The held rows, in order (only while under the limit). */
  heldRows(): Buffer[] {
    return this.rows;
  }

  /** Lets the held client bytes go (once). */
  settle(): void {
    if (this.settled) return;
    this.settled = true;
    this.rows = [];
    this.resolveGate();
  }
}

/** Upstream bytes for a simple Query sent as a counted write: Parse, Bind, Describe, Execute, Flush. */
export function countedQueryMessages(sql: string): Buffer {
  return Buffer.concat([parseMessage('', sql), bindUnnamed(), describeMessage('P', ''), executeMessage(''), FLUSH]);
}

/** Upstream bytes that abort the transaction right behind an over-ceiling write. */
export function ceilingMarker(marker: string, simple: boolean): Buffer {
  return Buffer.concat([parseMessage(CEILING_STATEMENT, marker), simple ? SYNC_AND_DROP_UNNAMED : FLUSH]);
}

export const FLUSH = frame('H');

/**
 * The gateway's Sync for a simple Query it sent as a counted write, then Close of the unnamed
 * statement and portal it made (a simple Query leaves none behind), flushed.
 */
export const SYNC_AND_DROP_UNNAMED = Buffer.concat([SYNC, frame('C', Buffer.from('S'), cstr('')), frame('C', Buffer.from('P'), cstr('')), FLUSH]);

function bindUnnamed(): Buffer {
  // portal '', statement '', no parameter formats, no parameters, no result formats (text).
  return frame('B', cstr(''), cstr(''), int16(0), int16(0), int16(0));
}

function executeMessage(portal: string): Buffer {
  return frame('E', cstr(portal), int32(0));
}

/** The client's error for a write over the ceiling (or one that cannot be counted). */
export function ceilingError(message: string, hint?: string): ErrorFields {
  return hint === undefined ? { severity: 'ERROR', code: '42501', message } : { severity: 'ERROR', code: '42501', message, hint };
}
