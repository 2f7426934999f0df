import { resolve } from 'node:path';
import { DEFAULT_DEMO_DIR, freshDemoDir } from './index.js';
import { freePort } from './ports.js';

/**
 * What `--demo` changes in `tightloop up` when the user did not say otherwise: its own fresh
 * data directory (`./.tightloop-demo`, so `npm start` twice works and a real `.tightloop` is
 * never touched), free ports when the defaults are taken, and quieter server logs so the
 * story stays readable.
 */
export interface UpOptionsForDemo {
  dataDir: string;
  port: number;
  gatewayPort?: number;
  logLevel: string;
}

/** A port the demo moved because the default was busy: say so, the README names the defaults. */
export interface MovedPort { what: string; wanted: number; got: number }

/** `port 4318 (HTTP: API, OTLP, console) is in use; the demo took 45499 instead`. */
export function movedText(m: MovedPort): string {
  return `port ${m.wanted} (${m.what}) is in use; the demo took ${m.got} instead`;
}

export async function demoUpDefaults(o: UpOptionsForDemo, isDefault: (option: keyof UpOptionsForDemo) => boolean, moved?: (m: MovedPort) => void): Promise<UpOptionsForDemo> {
  const out = { ...o };
  if (isDefault('dataDir')) out.dataDir = DEFAULT_DEMO_DIR;
  freshDemoDir(resolve(out.dataDir));
  if (isDefault('port')) out.port = await freePort(o.port);
  if (o.gatewayPort === undefined) out.gatewayPort = await freePort(15432);
  if (isDefault('logLevel')) out.logLevel = 'warn';
  if (o.port !== 0 && out.port !== o.port) moved?.({ what: 'HTTP: API, OTLP, console', wanted: o.port, got: out.port });
  if (o.gatewayPort === undefined && out.gatewayPort !== 15432) moved?.({ what: 'PostgreSQL gateway', wanted: 15432, got: out.gatewayPort ?? 0 });
  return out;
}
