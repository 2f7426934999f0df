import { choices, type Leaf } from '../guardrails/lineage-mixing.js';

/**
 * One row path per table (attack round 9): which rows a statement returns may follow tests of
 * masked values — one bit per row of the table for each FROM item that reads it. So `SELECT
 * min(a0.id), min(a1.id), … FROM customers a0, customers a1, … WHERE (a0.id = 2 OR a0.id = 1 AND
 * <bit 0 of a0.email>) AND (a1.id = 2 OR a1.id = 1 AND <bit 1 of a1.email>) …` spells k bits of
 * one e-mail through k items, and so do k references of one CTE, k derived tables, k branches of
 * a UNION ALL counted by weight, or k EXISTS. Masking therefore lets a statement's row-choosing
 * tests (lineage-quantities.ts `tested`) read a table's masked values through one row path only.
 *
 * A leaf's row path is the set of row sources it is read through: the FROM item that reads the
 * table and every derived table, CTE reference or join alias it passes through on its way out.
 * Two paths read the same row when one contains the other (a test inside a derived table, and a
 * test of the derived table's column outside it); paths that do not contain each other (two FROM
 * items, two references of a CTE) read the row twice.
 */

/** Upper bound on the distinct paths of one table judged pair by pair; above it, refuse. */
export const MAX_TEST_PATHS = 256;

/** Upper bound on the pairs of paths compared per statement (over every reading of unqualified names). */
export const MAX_PAIR_WORK = 200_000;

export type PathVerdict =
  | { kind: 'two'; table: string; a: Leaf; b: Leaf }
  | { kind: 'unjudged'; leaf: Leaf };

/**
 * Two masked leaves of row-choosing tests that read one table through different row paths, or
 * a masked leaf the rule cannot judge (too many readings of unqualified names, too many paths,
 * or more leaves than were kept); undefined when every table is tested through one path.
 * `tables`: the stored tables a leaf reads (views resolved), `*` when unknown (it counts for
 * every table).
 */
export function testPathVerdict(
  leaves: readonly Leaf[],
  overflow: boolean,
  masked: (l: Leaf) => boolean,
  tables: (l: Leaf) => readonly string[],
): PathVerdict | undefined {
  const m = leaves.filter(masked);
  if (m.length === 0) return undefined;
  if (overflow) return { kind: 'unjudged', leaf: m[0] };
  // Unqualified names: each way they may resolve is judged on its own (lineage-mixing.ts).
  const sets = choices(m);
  if (sets === undefined) return { kind: 'unjudged', leaf: m[0] };
  let work = 0;
  for (const set of sets) {
    const byTable = new Map<string, Map<string, Leaf>>();
    const anyTable = new Map<string, Leaf>();
    for (const l of set) {
      const key = l.srcs.join(',');
      for (const t of tables(l)) {
        const into = t === '*' ? anyTable : byTable.get(t) ?? new Map<string, Leaf>();
        if (!into.has(key)) into.set(key, l);
        if (t !== '*') byTable.set(t, into);
      }
    }
    const groups = byTable.size === 0 ? [['*', anyTable] as const] : [...byTable].map(([t, ls]) => [t, new Map([...ls, ...anyTable])] as const);
    for (const [table, paths] of groups) {
      if (paths.size < 2) continue;
      if (paths.size > MAX_TEST_PATHS) return { kind: 'unjudged', leaf: [...paths.values()][0] };
      const ls = [...paths.values()];
      work += ls.length * ls.length;
      if (work > MAX_PAIR_WORK) return { kind: 'unjudged', leaf: ls[0] };
      for (let i = 0; i < ls.length; i++) {
        for (let j = i + 1; j < ls.length; j++) {
          if (!contains(ls[i].srcs, ls[j].srcs) && !contains(ls[j].srcs, ls[i].srcs)) return { kind: 'two', table, a: ls[i], b: ls[j] };
        }
      }
    }
  }
  return undefined;
}

/** Every source of `inner` is one of `outer`'s. */
function contains(outer: readonly string[], inner: readonly string[]): boolean {
  const s = new Set(outer);
  return inner.every((x) => s.has(x));
}
