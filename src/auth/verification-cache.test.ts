import { describe, expect, it } from 'vitest';
import { VerificationCache } from './verification-cache.js';
import type { VerifiedToken } from './verification-cache.js';

const who: VerifiedToken = { userId: 'u', userName: 'n', role: 'member', tokenId: 't', scopes: ['*'] };

describe('VerificationCache', () => {
  it('expires entries at their deadline', () => {
    const cache = new VerificationCache();
    cache.set('h', who, 1_000, cache.generation);
    expect(cache.get('h', 999)).toBe(who);
    expect(cache.get('h', 1_000)).toBeUndefined();
  });

  it('refuses a result read before an invalidation (revocation race)', () => {
    const cache = new VerificationCache();
    const readAt = cache.generation; // a verification starts reading the row…
    cache.delete('h'); // …a revocation commits and invalidates…
    cache.set('h', who, 10_000, readAt); // …the stale success must not be cached.
    expect(cache.get('h', 0)).toBeUndefined();
  });

  it('clear drops everything', () => {
    const cache = new VerificationCache();
    cache.set('a', who, 10_000, cache.generation);
    cache.set('b', who, 10_000, cache.generation);
    cache.clear();
    expect(cache.get('a', 0)).toBeUndefined();
    expect(cache.get('b', 0)).toBeUndefined();
  });
});
