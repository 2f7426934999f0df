import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * SCRAM-SHA-256 (RFC 5802 / RFC 7677) as PostgreSQL uses it: the user name inside the SCRAM
 * messages is ignored (the startup packet's user counts) and channel binding is not offered,
 * so clients send the `n,,` or `y,,` GS2 header. Both roles live here: the server side for
 * client logins at the gateway, the client side for upstream logins.
 */

export const SCRAM_MECHANISM = 'SCRAM-SHA-256';
export const SCRAM_ITERATIONS = 4096;

export function sha256(data: Buffer): Buffer {
  return createHash('sha256').update(data).digest();
}

export function hmac(key: Buffer, data: string | Buffer): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] ^ b[i];
  return out;
}

/**
 * A close approximation of SASLprep for passwords: NFKC. Tokens are ASCII, where SASLprep is the
 * identity; PostgreSQL itself falls back to the raw bytes when a password is not valid input.
 */
function prepPassword(password: string): string {
  return /^[\x20-\x7e]*$/.test(password) ? password : password.normalize('NFKC');
}

export interface ScramKeys {
  storedKey: Buffer;
  serverKey: Buffer;
  /** Only known when derived from the password (enrolment, client side). */
  clientKey: Buffer;
}

export function deriveKeys(password: string, salt: Buffer, iterations: number): ScramKeys {
  const salted = pbkdf2Sync(prepPassword(password), salt, iterations, 32, 'sha256');
  const clientKey = hmac(salted, 'Client Key');
  return { clientKey, storedKey: sha256(clientKey), serverKey: hmac(salted, 'Server Key') };
}

function attributes(message: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of message.split(',')) {
    const eq = part.indexOf('=');
    if (eq === 1) out.set(part[0], part.slice(2));
  }
  return out;
}

function nonce(): string {
  return randomBytes(18).toString('base64');
}

export class ScramError extends Error {}

export interface ServerVerifier {
  id: string;
  storedKey: Buffer;
  serverKey: Buffer;
}

/**
 * The server half of one exchange. Several verifiers may share a user's salt (one per enrolled
 * token); the proof tells which one the client holds, and yields that token's ClientKey.
 */
export class ScramServerExchange {
  private clientFirstBare = '';
  private serverFirst = '';
  private combinedNonce = '';

  constructor(
    private readonly salt: Buffer,
    private readonly iterations: number,
    private readonly verifiers: readonly ServerVerifier[],
  ) {}

  /** client-first-message → server-first-message. */
  first(clientFirst: string): string {
    const m = /^([ny]),(a=[^,]*)?,(.*)$/.exec(clientFirst);
    if (m === null) throw new ScramError('malformed SCRAM client-first-message (channel binding is not supported)');
    this.clientFirstBare = m[3];
    const clientNonce = attributes(this.clientFirstBare).get('r');
    if (clientNonce === undefined || clientNonce.length === 0 || clientNonce.includes(',')) {
      throw new ScramError('SCRAM client nonce missing');
    }
    this.combinedNonce = clientNonce + nonce();
    this.serverFirst = `r=${this.combinedNonce},s=${this.salt.toString('base64')},i=${this.iterations}`;
    return this.serverFirst;
  }

  /** client-final-message → the matching verifier and ClientKey, or null on a bad proof. */
  final(clientFinal: string): { verifier: ServerVerifier; clientKey: Buffer; serverFinal: string } | null {
    const pAt = clientFinal.lastIndexOf(',p=');
    if (pAt === -1) throw new ScramError('SCRAM proof missing');
    const withoutProof = clientFinal.slice(0, pAt);
    const attrs = attributes(withoutProof);
    if (attrs.get('r') !== this.combinedNonce) throw new ScramError('SCRAM nonce mismatch');
    const binding = attrs.get('c');
    if (binding !== 'biws' && binding !== 'eSws') throw new ScramError('unexpected SCRAM channel binding');
    const proof = Buffer.from(clientFinal.slice(pAt + 3), 'base64');
    if (proof.length !== 32) return null;
    const authMessage = `${this.clientFirstBare},${this.serverFirst},${withoutProof}`;
    for (const verifier of this.verifiers) {
      const clientKey = xor(proof, hmac(verifier.storedKey, authMessage));
      if (timingSafeEqual(sha256(clientKey), verifier.storedKey)) {
        const signature = hmac(verifier.serverKey, authMessage).toString('base64');
        return { verifier, clientKey, serverFinal: `v=${signature}` };
      }
    }
    return null;
  }
}

/** The client half, for logging in upstream. */
export class ScramClientExchange {
  private readonly clientNonce = nonce();
  private clientFirstBare = '';
  private expectedServerSignature: Buffer | undefined;

  constructor(private readonly password: string) {}

  first(): string {
    this.clientFirstBare = `n=,r=${this.clientNonce}`;
    return `n,,${this.clientFirstBare}`;
  }

  /** server-first-message → client-final-message. */
  final(serverFirst: string): string {
    const attrs = attributes(serverFirst);
    const serverNonce = attrs.get('r');
    const salt = attrs.get('s');
    const iterations = Number(attrs.get('i'));
    if (serverNonce === undefined || !serverNonce.startsWith(this.clientNonce) || salt === undefined) {
      throw new ScramError('invalid SCRAM server-first-message');
    }
    if (!Number.isInteger(iterations) || iterations < 1 || iterations > 10_000_000) {
      throw new ScramError('invalid SCRAM iteration count');
    }
    const keys = deriveKeys(this.password, Buffer.from(salt, 'base64'), iterations);
    const withoutProof = `c=biws,r=${serverNonce}`;
    const authMessage = `${this.clientFirstBare},${serverFirst},${withoutProof}`;
    const proof = xor(keys.clientKey, hmac(keys.storedKey, authMessage));
    this.expectedServerSignature = hmac(keys.serverKey, authMessage);
    return `${withoutProof},p=${proof.toString('base64')}`;
  }

  /** Proves the server knew our verifier too (mutual authentication). */
  verifyServerFinal(serverFinal: string): void {
    const v = attributes(serverFinal).get('v');
    const got = v === undefined ? Buffer.alloc(0) : Buffer.from(v, 'base64');
    const want = this.expectedServerSignature;
    if (want === undefined || got.length !== want.length || !timingSafeEqual(got, want)) {
      throw new ScramError('upstream server signature does not match');
    }
  }
}
