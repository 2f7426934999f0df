import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import { ulid } from 'ulid';
import { verifyToken } from '../auth/index.js';
import { toTimestamp, type Database } from '../state/index.js';
import { deriveKeys, hmac, SCRAM_ITERATIONS, ScramServerExchange, sha256, type ServerVerifier } from './scram.js';
import { gatewayDb, type GatewayDb } from './schema.js';

/**
 * Client logins at the gateway: user = tightloop user name, password = one of that user's
 * API tokens, checked by auth's verifyToken on every login (so revocation and expiry apply).
 *
 * SCRAM-SHA-256 never shows the server the password, yet verifyToken needs the token. So the
 * first time a token is used (over TLS, or on loopback) the gateway asks for it in a password
 * message, verifies it, and enrols a SCRAM verifier for it, storing alongside the token sealed
 * with a key derived from the SCRAM ClientKey. Later logins use SCRAM: a correct proof yields
 * the ClientKey, which unseals the token, which verifyToken checks again. The database alone
 * never reveals a token; only a client that knows it can produce the key that unseals it.
 *
 * All of a user's tokens share one salt, because SCRAM announces the salt before the client
 * proves anything; the proof then tells which of the user's verifiers (tokens) matched.
 */

export interface AuthenticatedUser {
  userId: string;
  userName: string;
  role: string;
  tokenId: string;
  method: 'scram-sha-256' | 'password';
}

export type LoginMethod =
  | { kind: 'scram'; exchange: ScramServerExchange; userId: string }
  | { kind: 'password' };

const SEAL_INFO = 'tightloop gateway token seal v1';

function sealKey(clientKey: Buffer, verifierId: string): Buffer {
  return Buffer.from(hkdfSync('sha256', clientKey, verifierId, SEAL_INFO, 32));
}

function seal(token: string, key: Buffer): string {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  const body = Buffer.concat([cipher.update(token, 'utf8'), cipher.final()]);
  return Buffer.concat([nonce, body, cipher.getAuthTag()]).toString('base64');
}

function unseal(sealed: string, key: Buffer): string | undefined {
  try {
    const raw = Buffer.from(sealed, 'base64');
    const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(raw.length - 16));
    return Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]).toString('utf8');
  } catch { // sealed under another key or altered: no stored secret, the login fails
    return undefined;
  }
}

export class ClientAuthenticator {
  private readonly gdb: GatewayDb;
  /** Keys the answers given for names that are no user (stable across restarts: from the data dir). */
  private readonly mockKey: Buffer;

  constructor(private readonly db: Kysely<Database>, secret: Buffer = randomBytes(32)) {
    this.gdb = gatewayDb(db);
    this.mockKey = Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), 'tightloop gateway login mock v1', 32));
  }

  /**
   * Chooses the login method: SCRAM once the user has an enrolled token, else a password message.
   * A name that is no user gets one or the other, fixed per name (as PostgreSQL's mock
   * authentication does): SCRAM with a salt derived from the name, which no proof satisfies, or a
   * password message. So the method says neither whether a user exists nor whether they enrolled.
   */
  async methodFor(userName: string): Promise<LoginMethod> {
    const user = await this.db.selectFrom('users').select(['id']).where('name', '=', userName).executeTakeFirst();
    if (user === undefined) return this.mockMethod(userName);
    const [salt, verifiers] = await Promise.all([
      this.gdb.selectFrom('gateway_scram_salts').selectAll().where('user_id', '=', user.id).executeTakeFirst(),
      this.gdb.selectFrom('gateway_scram_verifiers').select(['id', 'stored_key', 'server_key']).where('user_id', '=', user.id).execute(),
    ]);
    if (salt === undefined || verifiers.length === 0) return { kind: 'password' };
    const list: ServerVerifier[] = verifiers.map((v) => ({
      id: v.id,
      storedKey: Buffer.from(v.stored_key, 'base64'),
      serverKey: Buffer.from(v.server_key, 'base64'),
    }));
    return { kind: 'scram', userId: user.id, exchange: new ScramServerExchange(Buffer.from(salt.salt, 'base64'), Number(salt.iterations), list) };
  }

  private mockMethod(userName: string): LoginMethod {
    const mac = (what: string): Buffer => createHmac('sha256', this.mockKey).update(`${what}\0${userName}`, 'utf8').digest();
    if ((mac('method')[0] & 1) === 0) return { kind: 'password' };
    // One verifier no client can match (its StoredKey has no known ClientKey): the same work as a real user's.
    const verifier: ServerVerifier = { id: '', storedKey: mac('stored'), serverKey: hmac(mac('server'), 'Server Key') };
    return { kind: 'scram', userId: '', exchange: new ScramServerExchange(mac('salt').subarray(0, 16), SCRAM_ITERATIONS, [verifier]) };
  }

  /** After a valid SCRAM proof: unseal that verifier's token and check it with auth. */
  async completeScram(userName: string, verifierId: string, clientKey: Buffer): Promise<AuthenticatedUser | null> {
    const row = await this.gdb.selectFrom('gateway_scram_verifiers').selectAll().where('id', '=', verifierId).executeTakeFirst();
    if (row === undefined) return null;
    const token = unseal(row.sealed_token, sealKey(clientKey, row.id));
    if (token === undefined) return null;
    const verified = await verifyToken(this.db, token);
    if (verified === null || verified.userName !== userName) {
      // The token was revoked or expired (or the user renamed): forget its verifier.
      await this.gdb.deleteFrom('gateway_scram_verifiers').where('id', '=', row.id).execute();
      return null;
    }
    return { userId: verified.userId, userName, role: verified.role, tokenId: verified.tokenId, method: 'scram-sha-256' };
  }

  /** Password login: the token must verify and belong to the named user; then it is enrolled. */
  async verifyPassword(userName: string, token: string): Promise<AuthenticatedUser | null> {
    const verified = await verifyToken(this.db, token);
    if (verified === null || verified.userName !== userName) return null;
    await this.enroll(verified.userId, token);
    return { userId: verified.userId, userName, role: verified.role, tokenId: verified.tokenId, method: 'password' };
  }

  /** Stores a SCRAM verifier for a token (idempotent). The caller has verified the token. */
  async enroll(userId: string, token: string): Promise<void> {
    const tokenHash = sha256(Buffer.from(token, 'utf8')).toString('hex');
    const known = await this.gdb.selectFrom('gateway_scram_verifiers').select('id').where('token_hash', '=', tokenHash).executeTakeFirst();
    if (known !== undefined) return;
    await this.gdb
      .insertInto('gateway_scram_salts')
      .values({ user_id: userId, salt: randomBytes(16).toString('base64'), iterations: SCRAM_ITERATIONS })
      .onConflict((oc) => oc.column('user_id').doNothing())
      .execute();
    const salt = await this.gdb.selectFrom('gateway_scram_salts').selectAll().where('user_id', '=', userId).executeTakeFirstOrThrow();
    const keys = deriveKeys(token, Buffer.from(salt.salt, 'base64'), Number(salt.iterations));
    const id = ulid();
    await this.gdb
      .insertInto('gateway_scram_verifiers')
      .values({
        id,
        user_id: userId,
        token_hash: tokenHash,
        stored_key: keys.storedKey.toString('base64'),
        server_key: keys.serverKey.toString('base64'),
        sealed_token: seal(token, sealKey(keys.clientKey, id)),
        created_at: toTimestamp(Date.now()),
      })
      .onConflict((oc) => oc.column('token_hash').doNothing())
      .execute();
  }
}
