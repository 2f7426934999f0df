import { describe, expect, it } from 'vitest';
import { makeLeaf, type Leaf } from '../guardrails/lineage-mixing.js';
import { testPathVerdict } from './test-paths.js';

/** The judgement of masking/test-paths.ts on leaves built by hand: which row paths read one table. */

const leaf = (col: string, rel: string, srcs: string[], alt?: [number, number]): Leaf => makeLeaf({ cols: [col], wholeRow: false, opaque: false, direct: true, rels: [rel] }, srcs, alt);
const masked = (l: Leaf): boolean => l.lin.cols.includes('email') || l.lin.cols.includes('card');
const tables = (l: Leaf): string[] => (l.lin.rels ?? []).length === 0 ? ['*'] : (l.lin.rels ?? []);
const judge = (leaves: Leaf[], overflow = false): string | undefined => {
  const v = testPathVerdict(leaves, overflow, masked, tables);
  return v === undefined ? undefined : v.kind === 'two' ? `two:${v.table}` : 'unjudged';
};

describe('one row path per table (masking/test-paths.ts)', () => {
  it('one item, and derived tables over it, are one path; two items of one table are two', () => {
    // A test inside a derived table d over item c, and a test of d's column outside it.
    expect(judge([leaf('email', 'customers', ['c']), leaf('card', 'customers', ['c', 'd'])])).toBeUndefined();
    // A self join, and two references m0, m1 of one CTE over c.
    expect(judge([leaf('email', 'customers', ['a']), leaf('email', 'customers', ['b'])])).toBe('two:customers');
    expect(judge([leaf('email', 'customers', ['c', 'm0']), leaf('email', 'customers', ['c', 'm1'])])).toBe('two:customers');
    // Two tables, one item each; unmasked tests through other items do not count.
    expect(judge([leaf('email', 'customers', ['c']), leaf('card', 'accounts', ['a']), leaf('id', 'customers', ['c2'])])).toBeUndefined();
  });

  it('fails closed: a value of no known table counts for every table, and too much to judge refuses', () => {
    const opaque = makeLeaf({ cols: ['email'], wholeRow: false, opaque: false, direct: false }, ['f']);
    expect(judge([leaf('email', 'customers', ['c']), opaque])).toBe('two:customers');
    expect(judge([leaf('email', 'customers', ['c'])], true)).toBe('unjudged');
    expect(judge([leaf('id', 'customers', ['c'])], true)).toBeUndefined();
    // An unqualified name: each reading on its own (either item alone is one path).
    expect(judge([leaf('email', 'customers', ['c'], [1, 0]), leaf('email', 'customers', ['c2'], [1, 1])])).toBeUndefined();
    expect(judge([leaf('email', 'customers', ['c'], [1, 0]), leaf('email', 'customers', ['c2'], [1, 1]), leaf('card', 'customers', ['c'])])).toBe('two:customers');
  });
});
