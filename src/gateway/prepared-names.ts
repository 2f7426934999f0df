import { boundedText } from './audit-text.js';
import type { PreparedNames } from './guardrails/prepared.js';
import type { StatementInfo } from './pipeline.js';

/**
 * The session's prepared-statement names, for SQL `EXECUTE` (attack round 5 #2, #3). A driver's
 * protocol Parse and SQL `PREPARE` define names in one namespace, and SQL `EXECUTE name` runs
 * either. A protocol statement is judged at its Parse but counted (row ceiling) and spent (one-run
 * approvals) at its Bind and Execute, so SQL `EXECUTE` of one would skip both; and an `EXECUTE`
 * names a statement the gateway might not know at all (a function can PREPARE through SPI). A
 * SQL `PREPARE` is judged with its statement (a counted write or one needing approval cannot be
 * PREPAREd, session.ts), so running it again is running a judged statement again.
 *
 * So SQL `EXECUTE` runs only names this session defined with SQL `PREPARE`, seen by the gateway,
 * and never one a protocol Parse may have defined; in a simple Query only (a prepared `EXECUTE`
 * would resolve its name at some later Bind, after the name may have changed), and not under
 * `CREATE TABLE AS` (what an approver approves there is a name).
 *
 * Two views, as for the relay's other names: `ahead` in the client's order — what each name may
 * mean once every message sent so far has run (a superset: a Parse or PREPARE that may fail adds
 * a meaning, a Close or DEALLOCATE that may be skipped removes none) — and `confirmed` in the
 * server's order, from its answers. When every request has been answered, `ahead` becomes
 * `confirmed`.
 */

const PROTOCOL = 1;
const SQL = 2;

interface Confirmed {
  origin: typeof PROTOCOL | typeof SQL;
  /** The text that defined it (a Query string with its PREPARE), for the audit. */
  text: string;
}

export class PreparedNamespace {
  private readonly ahead = new Map<string, number>();
  private readonly confirmed = new Map<string, Confirmed>();

  /** The client sent a protocol Parse of a named statement (not refused). */
  parsed(name: string): void {
    if (name !== '') this.ahead.set(name, (this.ahead.get(name) ?? 0) | PROTOCOL);
  }

  /** The client sent a statement that was not refused: its PREPAREs may define names. */
  judged(info: StatementInfo | undefined): void {
    for (const p of info?.facts.prepared ?? []) {
      if (p?.prepares !== undefined) this.ahead.set(p.prepares, (this.ahead.get(p.prepares) ?? 0) | SQL);
    }
  }

  /** Why a statement with SQL EXECUTE must not run (undefined: it may). */
  refusal(info: StatementInfo | undefined, protocol: 'simple' | 'extended'): string | undefined {
    const prepared = info?.facts.prepared;
    if (prepared === undefined) return undefined;
    const own = new Set<string>();
    for (const p of prepared) if (p?.prepares !== undefined) own.add(p.prepares);
    for (const p of prepared) {
      for (const e of p?.executes ?? []) {
        if (protocol === 'extended') return `${EXECUTE} in the extended protocol (send it as a simple Query)`;
        if (e.where === 'ctas') return `CREATE TABLE ... AS ${EXECUTE} (write the query itself)`;
        if (e.where === 'other') return `${EXECUTE} nested in another statement`;
        const flags = (this.ahead.get(e.name) ?? 0) | (own.has(e.name) ? SQL : 0);
        if ((flags & PROTOCOL) !== 0) return `${EXECUTE} of "${e.name}", a statement prepared with the protocol (Bind and Execute it, or send the statement itself)`;
        if (flags === 0) return `${EXECUTE} of "${e.name}", which this session has not PREPAREd through the gateway`;
      }
    }
    return undefined;
  }

  // ---- server order ----

  parseComplete(name: string, sql: string): void {
    if (name !== '') this.confirmed.set(name, { origin: PROTOCOL, text: sql });
  }

  closeComplete(name: string): void {
    this.confirmed.delete(name);
  }

  /**
   * A statement completed with `tag`: `p` is what the gateway knows of it (undefined when it
   * cannot tell which statement it was, e.g. a portal SQL redefined), `sql` the text it came in.
   */
  completed(tag: string, p: PreparedNames | undefined, sql: string): void {
    if (tag === 'PREPARE') {
      if (p?.prepares !== undefined) this.confirmed.set(p.prepares, { origin: SQL, text: sql });
      // An unknown PREPARE defined a name that stays unknown: EXECUTE refuses it.
    } else if (tag === 'DEALLOCATE ALL' || tag === 'DISCARD ALL' || (tag === 'DEALLOCATE' && p?.drops === '*')) {
      this.confirmed.clear();
    } else if (tag === 'DEALLOCATE') {
      if (p?.drops !== undefined) this.confirmed.delete(p.drops);
      // Not knowing which: forget every SQL name (protocol ones stay, which only refuses more).
      else for (const [n, c] of this.confirmed) if (c.origin === SQL) this.confirmed.delete(n);
    }
  }

  /** Every request sent so far has been answered: the client's view is the server's. */
  settled(): void {
    this.ahead.clear();
    for (const [n, c] of this.confirmed) this.ahead.set(n, c.origin);
  }

  /** The text that defined each of `names` as the server has them now (for the audit). */
  texts(p: PreparedNames | undefined): Record<string, string> | undefined {
    if (p?.executes === undefined) return undefined;
    const out: Record<string, string> = {};
    for (const e of p.executes) {
      const c = this.confirmed.get(e.name);
      const text = c === undefined ? '' : c.text;
      out[e.name] = boundedText(text).text;
    }
    return out;
  }
}

const EXECUTE = 'SQL EXECUTE';
