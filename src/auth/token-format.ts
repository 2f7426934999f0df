import { createHash, randomBytes } from 'node:crypto';

/**
 * API token format: `tl_` + 32 random bytes in base62 (43 characters, fixed width).
 * The prefix makes a leaked token recognisable to secret scanners and to people; base62 keeps
 * it copy-paste and URL safe without padding.
 */
export const TOKEN_PREFIX = 'tl_';
const RANDOM_BYTES = 32;
const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
/** ceil(256 / log2(62)): enough base62 digits for any 32-byte value. */
const BODY_LENGTH = 43;
const TOKEN_PATTERN = new RegExp(`^${TOKEN_PREFIX}[0-9A-Za-z]{${BODY_LENGTH}}$`);
/** Characters of the body shown in listings: enough to tell tokens apart, far too few to guess. */
const DISPLAY_BODY_CHARS = 6;

function toBase62(bytes: Buffer): string {
  let n = BigInt(`0x${bytes.toString('hex')}`);
  const base = BigInt(ALPHABET.length);
  const digits: string[] = [];
  for (let i = 0; i < BODY_LENGTH; i++) {
    digits.push(ALPHABET[Number(n % base)]);
    n /= base;
  }
  return digits.reverse().join('');
}

export function generateToken(): string {
  return TOKEN_PREFIX + toBase62(randomBytes(RANDOM_BYTES));
}

/** Cheap syntax check, so garbage never reaches the database or the cache. */
export function isWellFormedToken(candidate: string): boolean {
  return TOKEN_PATTERN.test(candidate);
}

/**
 * SHA-256, hex. A fast unsalted hash is the right tool here, unlike for passwords: the input
 * has 256 bits of entropy, so brute force is hopeless no matter how fast the hash is, and a
 * deterministic hash lets us find the token by an indexed lookup instead of scanning rows
 * through a slow KDF on every request.
 */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export function displayPrefix(token: string): string {
  return token.slice(0, TOKEN_PREFIX.length + DISPLAY_BODY_CHARS);
}
