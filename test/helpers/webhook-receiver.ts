import { createServer, type Server } from 'node:http';

export interface ReceivedHook {
  at: number;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: Record<string, unknown>;
}

export interface WebhookReceiver {
  url: string;
  hooks: ReceivedHook[];
  /** Resolves with the next hook received (or one already there past `after`). */
  next(after: number, timeoutMs?: number): Promise<ReceivedHook>;
  close(): Promise<void>;
}

/** A real HTTP receiver on loopback that records every POSTed JSON body. */
export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const hooks: ReceivedHook[] = [];
  const waiters: Array<() => void> = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      hooks.push({ at: performance.now(), path: req.url ?? '', headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown> });
      res.writeHead(200).end('ok');
      for (const w of waiters.splice(0)) w();
    });
  });
  server.keepAliveTimeout = 1;
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const addr = server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    hooks,
    next(after, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = (): boolean => {
          if (hooks.length > after) { resolve(hooks[after]); return true; }
          return false;
        };
        if (check()) return;
        const timer = setTimeout(() => reject(new Error(`no webhook #${after + 1} within ${timeoutMs} ms`)), timeoutMs);
        const wait = (): void => { if (check()) clearTimeout(timer); else waiters.push(wait); };
        waiters.push(wait);
      });
    },
    close: () => new Promise<void>((done) => { server.closeAllConnections(); server.close(() => done()); }),
  };
}
