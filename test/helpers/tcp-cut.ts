import { createServer, connect, type Server, type Socket } from 'node:net';

/**
 * A TCP forwarder in front of a real server (here PostgreSQL) that a test can cut and restore:
 * `cut()` resets every open connection and refuses new ones (as a stopped or unreachable
 * server does), `restore()` listens again on the same port. The server behind it keeps running.
 */
export interface TcpCut {
  readonly port: number;
  cut(): Promise<void>;
  restore(): Promise<void>;
  close(): Promise<void>;
}

export async function tcpCut(targetHost: string, targetPort: number): Promise<TcpCut> {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let port = 0;
  const listen = (): Promise<void> => new Promise((resolve, reject) => {
    const srv = createServer((client) => {
      const upstream = connect(targetPort, targetHost);
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
        s.on('error', () => { client.destroy(); upstream.destroy(); });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
    srv.once('error', reject);
    srv.listen(port, '127.0.0.1', () => {
      const a = srv.address();
      port = typeof a === 'object' && a !== null ? a.port : port;
      server = srv;
      resolve();
    });
  });
  const stop = async (): Promise<void> => {
    const srv = server;
    server = undefined;
    for (const s of sockets) s.resetAndDestroy();
    sockets.clear();
    if (srv !== undefined) await new Promise<void>((r) => srv.close(() => r()));
  };
  await listen();
  return { get port() { return port; }, cut: stop, restore: listen, close: stop };
}
