import { describe, expect, it } from 'vitest';
import { at } from './indexed.js';

describe('at', () => {
  it('returns the element, or throws a RangeError naming the index it missed', () => {
    expect(at([5, 0, 7], 1)).toBe(0);
    expect(at(Float64Array.of(1.5), 0)).toBe(1.5);
    expect(() => at([5], 1)).toThrow(new RangeError('index 1 is outside 0..0'));
    expect(() => at([], -1)).toThrow(RangeError);
  });
});
