import { Agent, request } from 'node:http';

/**
 * The demo's steady traffic: `rps` requests per second, evenly spaced, to the shop's proxy —
 * three checkouts for every product listing, over a fixed set of customers and products. At
 * most `maxInFlight` requests wait at once (a slow version must not pile up sockets). Counts
 * answers per shop version (the `x-shop-version` header) and status class.
 */

export interface LoadOptions {
  url: string;
  rps: number;
  customers: number;
  products: number;
  maxInFlight?: number;
}

export interface VersionCounts {
  requests: number;
  errors: number;
}

export class LoadGenerator {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private inFlight = 0;
  private n = 0;
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 64 });
  private readonly target: URL;
  readonly byVersion = new Map<string, VersionCounts>();
  sent = 0;
  failed = 0;
  dropped = 0;

  constructor(private readonly o: LoadOptions) {
    this.target = new URL(o.url);
  }

  start(): void {
    if (this.timer !== undefined || this.stopped) return;
    this.timer = setInterval(() => this.fire(), Math.max(1, Math.round(1000 / this.o.rps)));
  }

  setRps(rps: number): void {
    this.o.rps = rps;
    if (this.timer !== undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
      this.start();
    }
  }

  private fire(): void {
    if (this.inFlight >= (this.o.maxInFlight ?? 64)) {
      this.dropped++;
      return;
    }
    const i = this.n++;
    // A simple deterministic mix: customers and products cycle with coprime strides.
    const checkout = i % 4 !== 3;
    const path = checkout
      ? `/checkout?customer=${1 + ((i * 7) % this.o.customers)}&product=${1 + ((i * 3) % this.o.products)}&qty=${1 + (i % 3)}`
      : '/products';
    this.inFlight++;
    this.sent++;
    let settled = false;
    const settle = (): void => {
      if (!settled) {
        settled = true;
        this.inFlight--;
      }
    };
    const req = request({
      host: this.target.hostname, port: this.target.port, path, method: checkout ? 'POST' : 'GET', agent: this.agent, timeout: 10_000,
    }, (res) => {
      const version = String(res.headers['x-shop-version'] ?? 'unknown');
      const c = this.byVersion.get(version) ?? { requests: 0, errors: 0 };
      c.requests++;
      if ((res.statusCode ?? 500) >= 500) c.errors++;
      this.byVersion.set(version, c);
      res.resume();
      res.once('end', settle);
      res.once('error', settle);
    });
    req.once('timeout', () => req.destroy(new Error('timeout')));
    req.once('error', () => {
      if (!settled) this.failed++;
      settle();
    });
    req.end();
  }

  /** Counts since the last call (for "v1: 120 req, 0 errors" lines). */
  takeCounts(): Map<string, VersionCounts> {
    const out = new Map(this.byVersion);
    this.byVersion.clear();
    return out;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.agent.destroy();
  }
}
