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

export async function demoUpDefaults(o: UpOptionsForDemo, isDefault: (option: keyof UpOptionsForDemo) => boolean): Promise<UpOptionsForDemo> {
  const out = { ...o };
  if (isDefault('dataDir')) out.dataDir = DEFAULT_DEMO_DIR;
  freshDemoDir(resolve(out.dataDir));
  if (isDefault('port')) out.port = await freePort(o.port);
  if (o.gatewayPort === undefined) out.gatewayPort = await freePort(15432);
  if (isDefault('logLevel')) out.logLevel = 'warn';
  return out;
}
