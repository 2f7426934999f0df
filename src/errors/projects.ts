/**
 * Projects and their Sentry keys. A DSN is `http://<public_key>@<host>/<project id>`; Sentry
 * SDKs require a numeric project id, so ids are small integers. Keys are looked up on every
 * ingest request, hence the in-memory map (all writes go through this class).
 */
import { randomBytes } from 'node:crypto';
import { apiError } from '../core/app-error.js';
import { toTimestamp } from '../state/index.js';
import { LATEST_GROUPING_VERSION } from './grouping.js';
import type { ErrorsDb } from './tables.js';

export interface Project {
  id: number;
  name: string;
  publicKey: string;
  groupingVersion: number;
  createdAt: string;
}

export const DEFAULT_PROJECT_NAME = 'default';
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export function dsnFor(baseUrl: string, p: Project): string {
  const u = new URL(baseUrl);
  return `${u.protocol}//${p.publicKey}@${u.host}/${p.id}`;
}

export class ProjectRegistry {
  private readonly byKey = new Map<string, Project>();
  private readonly byId = new Map<number, Project>();

  constructor(private readonly db: ErrorsDb) {}

  async load(): Promise<void> {
    const rows = await this.db.selectFrom('errors_projects').selectAll().execute();
    for (const r of rows) this.remember({ id: Number(r.id), name: r.name, publicKey: r.public_key, groupingVersion: Number(r.grouping_version), createdAt: r.created_at });
  }

  private remember(p: Project): void {
    this.byKey.set(p.publicKey, p);
    this.byId.set(p.id, p);
  }

  list(): Project[] {
    return [...this.byId.values()].sort((a, b) => a.id - b.id);
  }

  get(id: number): Project | undefined {
    return this.byId.get(id);
  }

  forKey(key: string): Project | undefined {
    return this.byKey.get(key);
  }

  async create(name: string): Promise<Project> {
    if (!NAME_RE.test(name)) throw apiError('bad_request', 'project name: 1-64 letters, digits, _ . - (starting with a letter or digit)');
    if ([...this.byId.values()].some((p) => p.name === name)) throw apiError('conflict', `project '${name}' exists`);
    const p = await this.db.transaction().execute(async (tx) => {
      const max = await tx.selectFrom('errors_projects').select((eb) => eb.fn.max('id').as('m')).executeTakeFirst();
      const proj: Project = {
        id: Number(max?.m ?? 0) + 1, name, publicKey: randomBytes(16).toString('hex'),
        groupingVersion: LATEST_GROUPING_VERSION, createdAt: toTimestamp(Date.now()),
      };
      await tx.insertInto('errors_projects').values({
        id: proj.id, name, public_key: proj.publicKey, grouping_version: proj.groupingVersion, created_at: proj.createdAt,
      }).execute();
      return proj;
    });
    this.remember(p);
    return p;
  }

  /** The project OTel-only errors land in, created on first start. */
  async ensureDefault(): Promise<Project> {
    const existing = [...this.byId.values()].find((p) => p.name === DEFAULT_PROJECT_NAME);
    return existing ?? await this.create(DEFAULT_PROJECT_NAME);
  }
}
