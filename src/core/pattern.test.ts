import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compilePattern, CompiledPattern, MAX_POSITIONS, PatternError, patternProblem } from './pattern.js';

/** Random patterns of the supported subset over a small alphabet, so that matches are common. */
const patternArb: fc.Arbitrary<string> = fc.letrec<{ re: string; atom: string; seq: string }>((tie) => ({
  atom: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom('a', 'b', 'c', '.', '[ab]', '[^a]', '\\d', '\\w', '\\W', '1', ' ', '[a-c1]', '\\.'),
    tie('re').map((r) => `(${r})`),
    tie('re').map((r) => `(?:${r})`),
  ),
  seq: fc.array(fc.tuple(tie('atom'), fc.constantFrom('', '', '*', '+', '?', '{2}', '{0,2}', '{1,}', '*?', '+?')), { minLength: 0, maxLength: 4 })
    .map((xs) => xs.map(([a, q]) => a + q).join('')),
  re: fc.array(tie('seq'), { minLength: 1, maxLength: 3 }).map((xs) => xs.join('|')),
})).re;

/** Top-level assertions are allowed at the ends of top-level alternatives. */
const anchoredArb = fc.tuple(fc.constantFrom('', '^', '\\b', '\\B'), patternArb, fc.constantFrom('', '$', '\\b', '\\B'))
  .map(([s, p, e]) => `${s}(?:${p})${e}`);

/**
 * Nesting depth of quantifiers (star height, counting every quantifier): the JavaScript RegExp
 * this test compares with backtracks for seconds on 8-character texts once quantified groups
 * nest three deep (e.g. `(?:([^a]{0,2}(x*|)+)*? ?)+`), which timed the test out in CI.
 */
function quantifierDepth(p: string): number {
  const stack: number[] = [0];
  let last = 0;
  let max = 0;
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c === '\\') { i++; last = 0; continue; }
    if (c === '[') {
      i++;
      if (p[i] === '^') i++;
      if (p[i] === ']') i++;
      while (i < p.length && p[i] !== ']') { if (p[i] === '\\') i++; i++; }
      last = 0;
      continue;
    }
    if (c === '(') { stack.push(0); continue; }
    if (c === ')') {
      last = stack.pop() ?? 0;
      const top = stack.length - 1;
      stack[top] = Math.max(stack[top] ?? 0, last);
      continue;
    }
    if (c === '*' || c === '+' || c === '?' || c === '{') {
      if (c === '{') while (i < p.length && p[i] !== '}') i++;
      if (p[i + 1] === '?') i++;
      last += 1;
      const top = stack.length - 1;
      stack[top] = Math.max(stack[top] ?? 0, last);
      max = Math.max(max, last);
      last = 0;
      continue;
    }
    last = 0;
  }
  return max;
}

const textArb = fc.stringMatching(/^[abc1 .]{0,8}$/);

describe('user patterns (linear-time matcher)', () => {
  it('agree with JavaScript RegExp on the supported subset', () => {
    fc.assert(fc.property(fc.oneof(patternArb, anchoredArb), fc.array(textArb, { minLength: 1, maxLength: 8 }), (p, texts) => {
      fc.pre(p.length <= 60 && quantifierDepth(p) <= 2);
      const mine = new CompiledPattern(p);
      const js = new RegExp(p);
      for (const t of texts) expect({ p, t, m: mine.test(t) }).toEqual({ p, t, m: js.test(t) });
      const whole = new CompiledPattern(p, { whole: true });
      const jsWhole = new RegExp(`^(?:${p})$`);
      for (const t of texts) expect({ p, t, whole: whole.test(t) }).toEqual({ p, t, whole: jsWhole.test(t) });
    }), { numRuns: 1000 });
  });

  it('are case-insensitive with a leading (?i)', () => {
    const p = compilePattern('(?i)timeout|deadline [a-c]+');
    expect(p.test('Request TIMEOUT after 3s')).toBe(true);
    expect(p.test('DEADLINE ABC')).toBe(true);
    expect(p.test('deadline xyz')).toBe(false);
  });

  it('handle characters beyond ASCII', () => {
    expect(compilePattern('ü+ber').test('Üüüber')).toBe(true);
    expect(compilePattern('(?i)ü+ber').test('ÜBER')).toBe(true);
    expect(compilePattern('^.{3}$').test('日本語')).toBe(true);
    expect(compilePattern('[^x]\\u00e9').test('aé')).toBe(true);
  });

  // Patterns that make a backtracking engine run for seconds to years on these inputs. The
  // assertion is on results and on work: every input character costs at most one table
  // lookup per four states, whatever the pattern (timing is in bench/patterns.ts).
  const evil: Array<[string, string, boolean]> = [
    ['^(a|aa)+$', `${'a'.repeat(50_000)}!`, false],
    ['(a+)+$', `${'a'.repeat(50_000)}!`, false],
    ['(a+)+!$', `${'a'.repeat(50_000)}!`, true],
    ['^(a+)+$', `${'a'.repeat(50_000)}!`, false],
    ['(.*a){20}', 'a'.repeat(50_000), true],
    ['(.*a){20}b', 'a'.repeat(50_000), false],
    ['^(\\w+\\s?)*$', `${'word '.repeat(10_000)}!`, false],
    ['(x+x+)+y', 'x'.repeat(50_000), false],
    ['^(a|a?)+$', `${'a'.repeat(50_000)}b`, false],
    ['(?:.*a.{28}){4}$', `${'ab'.repeat(25_000)}bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb`, false],
    ['[ab]*a[ab]{120}$', 'ab'.repeat(25_000), false],
  ];
  for (const [p, text, expected] of evil) {
    it(`run ${p} over ${text.length} characters in linear work`, () => {
      const c = new CompiledPattern(p);
      expect(c.test(text)).toBe(expected);
      expect(c.steps).toBeLessThanOrEqual(text.length * (Math.ceil(c.positions / 4) + 1) + 1);
    });
  }

  it('refuse what needs backtracking or is too large, with a precise reason', () => {
    const cases: Array<[string, RegExp]> = [
      ['(a)\\1', /backreferences/],
      ['(?<x>a)\\k<x>', /backreferences/],
      ['(?=a)b', /lookaround/],
      ['(?!a)b', /lookaround/],
      ['(?<=a)b', /lookaround/],
      ['(?<!a)b', /lookaround/],
      ['a++', /nested quantifier/],
      ['*a', /nothing to repeat/],
      ['(a', /missing '\)'/],
      ['a)', /unmatched/],
      ['[a', /missing '\]'/],
      ['\\p{L}', /property/],
      ['a{1001}', /repeat count/],
      ['(?:a{100}){100}', /too large/],
      ['((((a{0,100}){0,100}){0,100}){0,100})', /too large|too complex/],
      ['((((){1000}){1000}){1000}){1000}', /too complex/],
      ['a(^b)', /only supported at the start or end/],
      ['a\\bb', /only supported at the start or end/],
      ['x'.repeat(1001), /longer than/],
      ['[z-a]', /out of order/],
      ['\\q', /unsupported escape/],
    ];
    for (const [p, why] of cases) {
      expect(() => new CompiledPattern(p), p).toThrow(PatternError);
      expect(patternProblem(p), p).toMatch(why);
    }
    expect(patternProblem('^(?:5\\d\\d|429)$')).toBeUndefined();
    expect(new CompiledPattern(`[A-Za-z0-9][A-Za-z0-9._-]{0,${MAX_POSITIONS - 2}}`).positions).toBe(MAX_POSITIONS - 1);
  });

  it('cache compiled patterns', () => {
    expect(compilePattern('checkout-.*')).toBe(compilePattern('checkout-.*'));
    expect(compilePattern('checkout-.*', { whole: true })).not.toBe(compilePattern('checkout-.*'));
  });
});
