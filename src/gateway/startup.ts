import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import { decodeStartup } from './wire/decode.js';
import { CANCEL_REQUEST_CODE, GSSENC_REQUEST_CODE, negotiateProtocolVersion, SSL_REQUEST_CODE } from './wire/encode.js';
import { GatewayError, ProtocolViolation } from './wire/errors.js';
import { SocketReader } from './wire/socket-reader.js';

/**
 * The startup phase of a client connection: SSLRequest (→ TLS when a certificate is
 * configured), GSSENCRequest (→ 'N', we have no Kerberos), CancelRequest (handed to the cancel
 * registry, then the connection closes) and finally the StartupMessage.
 */

export interface StartupResult {
  socket: Socket | TLSSocket;
  reader: SocketReader;
  params: Map<string, string>;
  tls: boolean;
}

export interface StartupOptions {
  secureContext: SecureContext | undefined;
  onCancel(key: { pid: number; secret: number }): void;
}

function upgrade(raw: Socket, ctx: SecureContext): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const secure = new TLSSocket(raw, { isServer: true, secureContext: ctx });
    secure.on('error', () => undefined); // handshake failures surface as 'close' to the reader
    secure.once('secure', () => resolve(secure));
    secure.once('close', () => reject(new GatewayError('tls_failed', 'TLS handshake failed', { fatal: true })));
  });
}

/** Returns null when the connection was a cancel request (and is done). */
export async function negotiateStartup(raw: Socket, opts: StartupOptions): Promise<StartupResult | null> {
  let socket: Socket | TLSSocket = raw;
  let reader = new SocketReader(raw);
  let tls = false;
  for (let round = 0; round < 4; round++) {
    const packet = decodeStartup((await reader.next(true, 15_000)).body);
    if (packet.code === SSL_REQUEST_CODE || packet.code === GSSENC_REQUEST_CODE) {
      // Bytes sent after the request but before our answer would bypass encryption (CVE-2021-23214).
      if (reader.buffered > 0) throw new ProtocolViolation('unencrypted data after SSL/GSS encryption request');
      if (packet.code === SSL_REQUEST_CODE && !tls && opts.secureContext !== undefined) {
        reader.detach();
        socket.write('S');
        socket = await upgrade(raw, opts.secureContext);
        reader = new SocketReader(socket);
        tls = true;
      } else {
        socket.write('N');
      }
      continue;
    }
    if (packet.code === CANCEL_REQUEST_CODE && packet.cancelKey !== undefined) {
      opts.onCancel(packet.cancelKey);
      reader.detach();
      socket.destroy();
      return null;
    }
    if (packet.code >> 16 !== 3) {
      throw new GatewayError('unsupported_protocol', `unsupported frontend protocol ${packet.code >> 16}.${packet.code & 0xffff}`, { fatal: true });
    }
    const unsupported = [...packet.params.keys()].filter((k) => k.startsWith('_pq_.'));
    for (const k of unsupported) packet.params.delete(k);
    if ((packet.code & 0xffff) > 0 || unsupported.length > 0) socket.write(negotiateProtocolVersion(0, unsupported));
    return { socket, reader, params: packet.params, tls };
  }
  throw new ProtocolViolation('too many encryption requests');
}
