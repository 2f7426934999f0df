import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { Resource } from './resources.js';
import { SCRAM_MECHANISM, ScramClientExchange } from './scram.js';
import { readCString, decodeErrorFields } from './wire/decode.js';
import {
  AUTH_CLEARTEXT, AUTH_MD5, AUTH_OK, AUTH_SASL, AUTH_SASL_CONTINUE, AUTH_SASL_FINAL,
  cancelRequest, passwordMessage, saslInitialResponse, saslResponse, sslRequest, startupMessage,
} from './wire/encode.js';
import { GatewayError } from './wire/errors.js';
import { SocketReader } from './wire/socket-reader.js';

/**
 * The gateway as a client of the real server: TCP (optionally TLS per the resource), startup,
 * and login with the held credentials by whatever method the server asks for — SCRAM-SHA-256,
 * md5 or cleartext password. Returns once the server is ReadyForQuery, with the parameters and
 * cancel key it announced, for the session to relay.
 */

export interface UpstreamConnection {
  socket: Socket | TLSSocket;
  parameters: Map<string, string>;
  key: { pid: number; secret: number } | undefined;
  /** Bytes received after ReadyForQuery (normally none). */
  leftover: Buffer;
  /** Notices sent during startup, as raw messages to relay. */
  notices: Buffer[];
}

export interface UpstreamTarget {
  host: string;
  port: number;
  tls: Resource['tls'];
  /** The password may go out in cleartext or MD5 on a connection without TLS. */
  allowInsecurePassword?: boolean;
}

function failure(message: string, cause?: unknown): GatewayError {
  // 08001: the client cannot reach the database it asked for; not its own login failing.
  return new GatewayError('upstream_unavailable', message, { fatal: true, cause });
}

function rawConnect(host: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(failure(`upstream ${host}:${port} did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.setNoDelay(true);
      // From here on errors surface as 'close' to whoever owns the socket; an unhandled 'error'
      // event would take the whole process down.
      socket.on('error', () => undefined);
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(failure(`cannot reach upstream ${host}:${port}: ${err.message}`, err));
    });
  });
}

/** SSLRequest, then a TLS handshake over the same socket if the server agrees. */
async function negotiateTls(socket: Socket, t: UpstreamTarget): Promise<Socket | TLSSocket> {
  socket.write(sslRequest());
  const answer = await new Promise<Buffer>((resolve, reject) => {
    const onClose = (): void => reject(failure('upstream closed the connection during TLS negotiation'));
    socket.once('close', onClose);
    socket.once('data', (chunk: Buffer) => {
      socket.off('close', onClose);
      socket.pause();
      resolve(chunk);
    });
  });
  // Anything after the one-byte answer was not protected by TLS; refuse it (CVE-2021-23222).
  if (answer.length !== 1) throw failure('upstream sent unexpected data after its SSL answer');
  if (answer[0] === 0x4e /* N */) {
    if (t.tls.mode === 'prefer') return socket;
    throw failure('upstream refused TLS but the resource requires it');
  }
  if (answer[0] !== 0x53 /* S */) throw failure('upstream gave an invalid answer to SSLRequest');
  const verify = t.tls.mode === 'verify-ca' || t.tls.mode === 'verify-full';
  const ca = t.tls.caFile === undefined ? undefined : readFileSync(t.tls.caFile);
  return await new Promise<TLSSocket>((resolve, reject) => {
    const secure = tlsConnect({
      socket,
      servername: t.tls.serverName ?? (/^[\d.:]+$/.test(t.host) ? undefined : t.host),
      ca,
      rejectUnauthorized: verify,
      // verify-ca checks the chain only, as libpq does; verify-full also checks the name (the
      // default check, which must not be overridden even with undefined).
      ...(t.tls.mode === 'verify-full' ? {} : { checkServerIdentity: () => undefined }),
    });
    secure.once('secureConnect', () => {
      secure.on('error', () => undefined); // as for the raw socket: the owner watches 'close'
      resolve(secure);
    });
    secure.once('error', (err: Error) => reject(failure(`TLS to upstream failed: ${err.message}`, err)));
  });
}

function md5hex(s: string | Buffer): string {
  return createHash('md5').update(s).digest('hex');
}

export async function connectUpstream(
  t: UpstreamTarget,
  user: string,
  password: string,
  params: Record<string, string>,
  timeoutMs = 10_000,
): Promise<UpstreamConnection> {
  const raw = await rawConnect(t.host, t.port, timeoutMs);
  let socket: Socket | TLSSocket = raw;
  try {
    if (t.tls.mode !== 'disable') socket = await negotiateTls(raw, t);
    const encrypted = socket !== raw;
    socket.write(startupMessage({ user, ...params }));
    const reader = new SocketReader(socket, 1024 * 1024);
    // negotiateTls paused the plain socket to read its one-byte answer; under `prefer` against a
    // server without SSL that same socket carries on, and a paused socket never delivers the
    // server's answer to the reader's 'data' listener (every login timed out).
    socket.resume();
    const parameters = new Map<string, string>();
    const notices: Buffer[] = [];
    let key: UpstreamConnection['key'];
    let scram: ScramClientExchange | undefined;
    for (;;) {
      const msg = await reader.next(false, timeoutMs);
      switch (msg.type) {
        case 'R': {
          const code = msg.body.readInt32BE(0);
          const data = msg.body.subarray(4);
          if (code === AUTH_OK) break;
          if ((code === AUTH_CLEARTEXT || code === AUTH_MD5) && !encrypted && t.allowInsecurePassword !== true) {
            // Anyone on the path (or an upstream posing as the database) would get the password.
            throw failure(`upstream asks for the password ${code === AUTH_MD5 ? 'as MD5' : 'in cleartext'} on a connection without TLS: refused (use TLS, SCRAM, or set allowInsecurePassword on the resource)`);
          }
          if (code === AUTH_CLEARTEXT) socket.write(passwordMessage(password));
          else if (code === AUTH_MD5) {
            socket.write(passwordMessage('md5' + md5hex(Buffer.concat([Buffer.from(md5hex(password + user)), data.subarray(0, 4)]))));
          } else if (code === AUTH_SASL) {
            const mechanisms: string[] = [];
            for (let off = 0; off < data.length && data[off] !== 0;) {
              const m = readCString(data, off);
              mechanisms.push(m.value);
              off = m.next;
            }
            if (!mechanisms.includes(SCRAM_MECHANISM)) throw failure(`upstream offers no supported SASL mechanism (${mechanisms.join(', ')})`);
            scram = new ScramClientExchange(password);
            socket.write(saslInitialResponse(SCRAM_MECHANISM, Buffer.from(scram.first(), 'utf8')));
          } else if (code === AUTH_SASL_CONTINUE && scram !== undefined) {
            socket.write(saslResponse(Buffer.from(scram.final(data.toString('utf8')), 'utf8')));
          } else if (code === AUTH_SASL_FINAL && scram !== undefined) {
            scram.verifyServerFinal(data.toString('utf8'));
          } else {
            throw failure(`upstream asks for an unsupported authentication method (${code})`);
          }
          break;
        }
        case 'S': {
          const name = readCString(msg.body, 0);
          parameters.set(name.value, readCString(msg.body, name.next).value);
          break;
        }
        case 'K':
          key = { pid: msg.body.readInt32BE(0), secret: msg.body.readInt32BE(4) };
          break;
        case 'N':
          notices.push(Buffer.concat([Buffer.from('N'), lengthOf(msg.body), msg.body]));
          break;
        case 'v':
          break; // NegotiateProtocolVersion: we asked for plain 3.0, nothing to adapt
        case 'E': {
          const f = decodeErrorFields(msg.body);
          throw failure(`upstream refused the connection: ${f.get('M') ?? 'unknown error'} (${f.get('C') ?? '?'})`);
        }
        case 'Z':
          return { socket, parameters, key, leftover: reader.detach(), notices };
        default:
          throw failure(`unexpected message '${msg.type}' from upstream during startup`);
      }
    }
  } catch (err) {
    socket.destroy();
    throw err instanceof GatewayError ? err : failure(`upstream login failed: ${(err as Error).message}`, err);
  }
}

function lengthOf(body: Buffer): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeInt32BE(body.length + 4, 0);
  return b;
}

/** Sends a CancelRequest for an upstream backend on a fresh connection (as libpq does). */
export async function cancelUpstream(t: UpstreamTarget, key: { pid: number; secret: number }): Promise<void> {
  const socket = await rawConnect(t.host, t.port, 5_000);
  await new Promise<void>((resolve) => {
    socket.on('error', () => resolve());
    socket.on('close', () => resolve());
    socket.end(cancelRequest(key.pid, key.secret));
  });
}
