/**
 * Service configs for progressive deploys: which actions deploy and roll a service back, the
 * canary steps, and — for the built-in `local` actuator — how to run each version. Read from
 * `<data-dir>/services.yaml` (`services: [...]`) and `<data-dir>/services/*.yaml` (one service
 * per file, name defaulting to the file name), or from the path given in the server config.
 * Read again at every rollout start, so edits need no restart (proxies start at boot).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { z } from 'zod';
import { apiError, AppError, notFound } from '../../core/app-error.js';
import { parseYamlFile } from '../../core/yaml-file.js';
import { metricChecksSchema } from '../metric-checks.js';

const runSpec = {
  /** argv; `${PORT}`, `${VERSION}`, `${SERVICE}` are replaced (each element stays one argument). */
  command: z.array(z.string().min(1)).min(1).optional(),
  env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string()).optional(),
  cwd: z.string().optional(),
};

const stepsSchema = z.array(z.number().int().min(1).max(100)).min(1).max(20).refine(
  (s) => s.every((w, i) => i === 0 || w > s[i - 1]) && s[s.length - 1] === 100,
  'steps must rise and end at 100 (e.g. [10, 50, 100])',
);

export const serviceConfigSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/).optional(),
  environment: z.string().min(1).default('production'),
  /** Local actuator: the proxy's listen port (clients talk to this one); 0 picks a free port. */
  port: z.number().int().min(0).max(65535).optional(),
  host: z.string().default('127.0.0.1'),
  /** Local actuator: a version is ready when GET <health> answers 2xx. */
  health: z.string().startsWith('/').default('/'),
  ...runSpec,
  /** Local actuator: per-version overrides of command / env / cwd. When given, only these versions can be deployed. */
  versions: z.record(z.string().min(1), z.strictObject(runSpec)).default({}),
  /** Local actuator: the version started at boot, taking all traffic. */
  current: z.string().min(1).optional(),
  steps: stepsSchema.default([10, 50, 100]),
  /** Default for local services: the built-in local-deploy / local-rollback actions. */
  deployAction: z.string().min(1).optional(),
  rollbackAction: z.string().min(1).optional(),
  /** For deploys made elsewhere that fail verification: roll back at once, or after an admin approves the rollback run. */
  rollback: z.enum(['auto', 'confirm']).default('auto'),
  /** At a step whose verification is inconclusive: hold (verify again, up to maxHolds, then stop there, held, and notify), promote (recorded as without evidence), or rollback. */
  onInconclusive: z.enum(['hold', 'promote', 'rollback']).default('hold'),
  maxHolds: z.number().int().min(0).max(20).default(2),
  /** Seconds a step's traffic runs before its verification starts (a new process is cold: JIT, caches, pools). */
  warmupS: z.number().min(0).max(3600).default(0),
  /** Longest verification per step (passed to DeployApi.verify). */
  verifyMaxDurationS: z.number().positive().max(24 * 3600).default(300),
  startTimeoutS: z.number().positive().max(600).default(30),
  stopGraceS: z.number().positive().max(120).default(5),
  /** Metric checks every verification of this service runs (deploys/metric-checks.ts; also for deploys made elsewhere). */
  metricChecks: metricChecksSchema,
});

export type ServiceConfig = Omit<z.infer<typeof serviceConfigSchema>, 'name' | 'deployAction' | 'rollbackAction'> & { name: string; deployAction: string | null; rollbackAction: string | null };

/** A service the local actuator runs: it has a proxy port and a way to start versions. */
export function isLocal(s: ServiceConfig): boolean {
  return s.port !== undefined && (s.command !== undefined || Object.keys(s.versions).length > 0);
}

export class ServiceConfigError extends AppError {
  constructor(message: string, file: string) {
    super('service_config_invalid', 400, message, { context: { file } });
  }
}

function parseFile(text: string, file: string, single: boolean): ServiceConfig[] {
  const schema = single ? serviceConfigSchema : z.strictObject({ services: z.array(serviceConfigSchema).default([]) });
  const data = parseYamlFile(text, file, () => schema, (message) => new ServiceConfigError(message, file));
  const list = single ? [data as z.infer<typeof serviceConfigSchema>] : (data as { services: z.infer<typeof serviceConfigSchema>[] }).services;
  return list.map((s, i) => {
    const name = s.name ?? (single ? basename(file, extname(file)) : undefined);
    if (name === undefined) throw new ServiceConfigError(`${file}: services.${i}: name is required`, file);
    const local = s.port !== undefined && (s.command !== undefined || Object.keys(s.versions).length > 0);
    return { ...s, name, deployAction: s.deployAction ?? (local ? 'local-deploy' : null), rollbackAction: s.rollbackAction ?? (local ? 'local-rollback' : null) };
  });
}

/** Parses a services.yaml text (`services: [...]`). */
export function parseServicesYaml(text: string, file = 'services.yaml'): ServiceConfig[] {
  return parseFile(text, file, false);
}

/**
 * Loads services from `path`: a file (`services: [...]`) or a folder of one-service files. With
 * no path: `<dataDir>/services.yaml` and `<dataDir>/services/`. Errors name file and line.
 */
export function loadServices(dataDir: string, path?: string): ServiceConfig[] {
  const out: ServiceConfig[] = [];
  const readDir = (dir: string): void => {
    for (const f of readdirSync(dir).filter((x) => /\.ya?ml$/.test(x)).sort()) {
      const file = join(dir, f);
      out.push(...parseFile(readFileSync(file, 'utf8'), file, true));
    }
  };
  const read = (p: string): void => {
    if (!existsSync(p)) return;
    if (statSync(p).isDirectory()) readDir(p);
    else out.push(...parseFile(readFileSync(p, 'utf8'), p, false));
  };
  if (path !== undefined) read(path);
  else {
    read(join(dataDir, 'services.yaml'));
    read(join(dataDir, 'services'));
  }
  const seen = new Set<string>();
  for (const s of out) {
    if (seen.has(s.name)) throw new ServiceConfigError(`service ${s.name} is configured twice`, path ?? dataDir);
    seen.add(s.name);
  }
  return out;
}

export function findService(services: readonly ServiceConfig[], name: string): ServiceConfig {
  const s = services.find((x) => x.name === name);
  if (s === undefined) throw notFound(`service ${name} has no deploy configuration (services.yaml)`);
  return s;
}

/** How to run one version: per-version overrides on top of the service's defaults. */
export function runSpecFor(s: ServiceConfig, version: string): { command: string[]; env: Record<string, string>; cwd: string | undefined } {
  const v = s.versions[version];
  const known = Object.keys(s.versions);
  // With a `versions` list, only listed versions run; without one, the command is a template for any.
  const command = known.length > 0 && v === undefined ? undefined : v?.command ?? s.command;
  if (command === undefined) {
    throw apiError('unknown_version', `service ${s.name} has no command for version ${version}${known.length > 0 ? ` (configured: ${known.join(', ')})` : ''}`);
  }
  return { command, env: { ...(s.env ?? {}), ...(v?.env ?? {}) }, cwd: v?.cwd ?? s.cwd };
}
