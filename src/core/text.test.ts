import { describe, expect, it } from 'vitest';
import { textOf } from './text.js';

describe('textOf', () => {
  it('scalars as String() reads them, objects as JSON, absent values as the fallback', () => {
    expect(textOf('a b')).toBe('a b');
    expect([textOf(0), textOf(-1.5), textOf(false), textOf(12n)]).toEqual(['0', '-1.5', 'false', '12']);
    expect(textOf({ mode: 'read', n: [1, 2n] })).toBe('{"mode":"read","n":[1,"2"]}');
    expect([textOf(null, 'ran'), textOf(undefined, 'ran'), textOf(undefined)]).toEqual(['ran', 'ran', '']);
    expect(textOf(() => 1, '?')).toBe('?');
  });
});
