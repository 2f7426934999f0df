import { execFile } from 'node:child_process';
import { chmodSync, existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';
import { promisify } from 'node:util';

/**
 * The listener's TLS certificate: the configured one, else a self-signed one generated once
 * into the data directory (with the `openssl` command; Node has no certificate builder). A
 * self-signed certificate encrypts but does not authenticate the gateway, so clients that want
 * sslmode=verify-full should be given a real certificate via configuration.
 */

const run = promisify(execFile);

export interface TlsFiles {
  certFile: string;
  keyFile: string;
}

export async function ensureSelfSigned(dataDir: string): Promise<TlsFiles> {
  const certFile = join(dataDir, 'gateway-cert.pem');
  const keyFile = join(dataDir, 'gateway-key.pem');
  if (existsSync(certFile) && existsSync(keyFile)) return { certFile, keyFile };
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  // The key must never be readable by others, even briefly (umask is unavailable in workers).
  let previous: number | undefined;
  try {
    previous = process.umask(0o077);
  } catch { // process.umask() throws in worker threads; chmod 0600 below still applies
    previous = undefined;
  }
  try {
    await run('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', keyFile, '-out', certFile, '-days', '3650', '-subj', '/CN=tightloop-gateway',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1',
    ], { timeout: 30_000 });
  } finally {
    if (previous !== undefined) process.umask(previous);
  }
  chmodSync(keyFile, 0o600);
  return { certFile, keyFile };
}

/** Loads the configured certificate, or the generated one; undefined when neither is possible. */
export async function loadSecureContext(
  dataDir: string,
  configured: Partial<TlsFiles>,
  onWarning: (msg: string) => void,
): Promise<SecureContext | undefined> {
  let files: TlsFiles;
  if (configured.certFile !== undefined && configured.keyFile !== undefined) {
    files = { certFile: configured.certFile, keyFile: configured.keyFile };
  } else {
    try {
      files = await ensureSelfSigned(dataDir);
    } catch (err) {
      onWarning(`gateway TLS disabled: cannot generate a self-signed certificate (${(err as Error).message})`);
      return undefined;
    }
  }
  return createSecureContext({ cert: readFileSync(files.certFile), key: readFileSync(files.keyFile), minVersion: 'TLSv1.2' });
}
