import { expect } from 'vitest';

/**
 * vitest's asymmetric matchers (`expect.stringContaining`, `expect.any`, …) are typed `any`,
 * which the no-unsafe-* lint rules refuse inside the objects a test compares. These are the same
 * matchers typed `unknown`, which every expectation accepts.
 */

/** A string that contains `text`. */
export const containing = (text: string): unknown => expect.stringContaining(text);

/** A string that matches `pattern`. */
export const matching = (pattern: string | RegExp): unknown => expect.stringMatching(pattern);

/** Any value made by `type` (`String`, `Number`, a class). */
export const anyOf = (type: unknown): unknown => expect.any(type);

/** Any value but null and undefined. */
export const anything = (): unknown => expect.anything();

/** The error `fn` throws; fails the test when it throws none. */
export function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to throw');
}
