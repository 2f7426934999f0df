import { isLoopback } from './net-util.js';
import type { AuthenticatedUser } from './client-auth.js';
import type { GatewayContext } from './context.js';
import { SCRAM_MECHANISM, ScramError } from './scram.js';
import type { StartupResult } from './startup.js';
import { decodeSaslInitial, readCString } from './wire/decode.js';
import { AUTH_CLEARTEXT, AUTH_SASL_CONTINUE, AUTH_SASL_FINAL, authRequest, authSasl } from './wire/encode.js';
import { GatewayError, ProtocolViolation } from './wire/errors.js';

/**
 * The login conversation with a client (see client-auth.ts for why a token's first login is a
 * password message and later ones are SCRAM-SHA-256). Failures are deliberately uniform —
 * unknown user, wrong token and someone else's token all read "password authentication failed".
 */
export async function authenticate(
  startup: StartupResult,
  user: string,
  ctx: GatewayContext,
  remoteAddress: string,
  onFailure: (detail: Record<string, unknown>) => void,
): Promise<AuthenticatedUser> {
  const denied = (why: string, method: string): GatewayError => {
    onFailure({ method, why });
    return new GatewayError('auth_failed', `password authentication failed for user "${user}"`, { fatal: true });
  };
  const reply = async (): Promise<Buffer> => {
    const msg = await startup.reader.next(false, 60_000);
    if (msg.type !== 'p') throw new ProtocolViolation(`expected an authentication response, got '${msg.type}'`);
    return msg.body;
  };
  const method = await ctx.auth.methodFor(user);

  if (method.kind === 'scram') {
    startup.socket.write(authSasl([SCRAM_MECHANISM]));
    try {
      const initial = decodeSaslInitial(await reply());
      if (initial.mechanism !== SCRAM_MECHANISM) throw new ScramError(`unsupported SASL mechanism ${initial.mechanism}`);
      startup.socket.write(authRequest(AUTH_SASL_CONTINUE, Buffer.from(method.exchange.first(initial.data.toString('utf8')), 'utf8')));
      const result = method.exchange.final((await reply()).toString('utf8'));
      if (result === null) throw denied('wrong or unenrolled token', 'scram-sha-256');
      const who = await ctx.auth.completeScram(user, result.verifier.id, result.clientKey);
      if (who === null) throw denied('token revoked, expired or not this user\'s', 'scram-sha-256');
      startup.socket.write(authRequest(AUTH_SASL_FINAL, Buffer.from(result.serverFinal, 'utf8')));
      return who;
    } catch (err) {
      if (err instanceof ScramError) throw new ProtocolViolation(err.message);
      throw err;
    }
  }

  // A token in a password message must not cross a network in the clear.
  if (!startup.tls && !isLoopback(remoteAddress)) {
    onFailure({ method: 'password', why: 'password login without TLS from a remote address' });
    throw new GatewayError('tls_required', 'the first login with a token needs TLS (sslmode=require)', { fatal: true });
  }
  startup.socket.write(authRequest(AUTH_CLEARTEXT));
  const password = readCString(await reply(), 0).value;
  const who = await ctx.auth.verifyPassword(user, password);
  if (who === null) throw denied('invalid token, or not this user\'s', 'password');
  return who;
}
