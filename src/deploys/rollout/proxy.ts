/**
 * WeightedProxy: the local actuator's HTTP reverse proxy. Each request goes to one backend
 * (a version's process) chosen by smooth weighted round-robin (nginx's algorithm: an exact
 * split over every `sum(weights)` requests, interleaved rather than in bursts). Weights are
 * replaced in one assignment, so a switch back is instant for the next request; requests in
 * flight finish where they started.
 *
 * Bodies stream both ways; backends are reached through keep-alive agents; X-Forwarded-For,
 * -Host and -Proto are set. A backend that is down is skipped; with none left the proxy
 * answers 503, and a backend failing mid-request gets 502 — never an exception.
 */
import { Agent, createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

interface Backend {
  key: string;
  port: number;
  weight: number;
  current: number;
  up: boolean;
  agent: Agent;
  requests: number;
}

/** Hop-by-hop headers (RFC 9110 §7.6.1) are not forwarded. */
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

function forwardHeaders(h: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const listed = typeof h.connection === 'string' ? h.connection.toLowerCase().split(',').map((s) => s.trim()) : [];
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined || HOP.has(k) || listed.includes(k)) continue;
    out[k] = v;
  }
  return out;
}

export class WeightedProxy {
  private readonly backends = new Map<string, Backend>();
  private order: Backend[] = [];
  private server: Server | undefined;
  private readonly sockets = new Set<import('node:net').Socket>();

  constructor(private readonly name: string, private readonly targetHost = '127.0.0.1') {}

  async listen(port: number, host = '127.0.0.1'): Promise<number> {
    const server = createServer((req, res) => this.handle(req, res));
    server.keepAliveTimeout = 5_000;
    server.on('connection', (s) => {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', () => undefined);
    this.server = server;
    return (server.address() as AddressInfo).port;
  }

  get port(): number | undefined {
    const a = this.server?.address();
    return typeof a === 'object' && a !== null ? a.port : undefined;
  }

  /** Adds or re-points a backend (weight 0 until setWeights gives it some). */
  addBackend(key: string, port: number): void {
    const old = this.backends.get(key);
    if (old !== undefined && old.port === port) return;
    old?.agent.destroy();
    this.backends.set(key, { key, port, weight: old?.weight ?? 0, current: 0, up: true, agent: new Agent({ keepAlive: true, maxSockets: 256 }), requests: 0 });
    this.reorder();
  }

  removeBackend(key: string): void {
    const b = this.backends.get(key);
    if (b === undefined) return;
    this.backends.delete(key);
    this.reorder();
    // Let requests in flight finish on their sockets; idle ones close now.
    setTimeout(() => b.agent.destroy(), 10_000).unref();
  }

  setUp(key: string, up: boolean): void {
    const b = this.backends.get(key);
    if (b !== undefined) b.up = up;
  }

  /** Replaces all weights at once (missing keys get 0). */
  setWeights(weights: Record<string, number>): void {
    for (const b of this.backends.values()) {
      b.weight = Math.max(0, weights[b.key] ?? 0);
      b.current = 0;
    }
    this.reorder();
  }

  weights(): Record<string, number> {
    return Object.fromEntries([...this.backends.values()].map((b) => [b.key, b.weight]));
  }

  stats(): { key: string; port: number; weight: number; up: boolean; requests: number }[] {
    return [...this.backends.values()].map((b) => ({ key: b.key, port: b.port, weight: b.weight, up: b.up, requests: b.requests }));
  }

  private reorder(): void {
    this.order = [...this.backends.values()];
  }

  /** Smooth weighted round-robin over the backends that are up and weighted. */
  pick(): Backend | undefined {
    let total = 0;
    let best: Backend | undefined;
    for (const b of this.order) {
      if (!b.up || b.weight <= 0) continue;
      b.current += b.weight;
      total += b.weight;
      if (best === undefined || b.current > best.current) best = b;
    }
    if (best !== undefined) best.current -= total;
    return best;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const b = this.pick();
    if (b === undefined) {
      req.resume();
      res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' });
      res.end(JSON.stringify({ error: { code: 'no_backend', message: `no running version of ${this.name} takes traffic` } }));
      return;
    }
    b.requests++;
    const headers = forwardHeaders(req.headers);
    const remote = req.socket.remoteAddress ?? '';
    const prior = req.headers['x-forwarded-for'];
    headers['x-forwarded-for'] = prior === undefined ? remote : `${Array.isArray(prior) ? prior.join(', ') : prior}, ${remote}`;
    headers['x-forwarded-host'] = req.headers['x-forwarded-host'] ?? req.headers.host ?? '';
    headers['x-forwarded-proto'] = req.headers['x-forwarded-proto'] ?? 'http';
    const up = httpRequest({ host: this.targetHost, port: b.port, method: req.method, path: req.url, headers, agent: b.agent }, (ures) => {
      const out: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(ures.headers)) if (v !== undefined && !HOP.has(k)) out[k] = v;
      res.writeHead(ures.statusCode ?? 502, ures.statusMessage, out);
      ures.pipe(res);
      ures.on('error', () => res.destroy());
    });
    up.on('error', (err) => {
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { code: 'bad_gateway', message: `${this.name} ${b.key}: ${err.message}` } }));
      } else res.destroy();
    });
    res.on('close', () => {
      if (!res.writableFinished) up.destroy();
    });
    // A client that goes away mid-request must not become an unhandled 'error' event.
    req.on('error', () => up.destroy());
    res.on('error', () => up.destroy());
    req.pipe(up);
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (s !== undefined) {
      const closed = new Promise<void>((r) => s.close(() => r()));
      s.closeIdleConnections();
      setTimeout(() => {
        for (const sock of this.sockets) sock.destroy();
      }, 2_000).unref();
      await closed;
    }
    for (const b of this.backends.values()) b.agent.destroy();
  }
}
