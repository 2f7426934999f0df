import { open, realpath } from 'node:fs/promises';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { ulid } from 'ulid';
import { z } from 'zod';
import { apiError, AppError, badRequest, notFound } from '../core/app-error.js';
import { toTimestamp } from '../state/index.js';
import { parsePolicy, resourcePolicySchema, type ResourcePolicy } from './policy.js';
import type { GatewayDb, ResourcesTable } from './schema.js';

/**
 * Resources: the PostgreSQL targets the gateway fronts. The upstream password is never stored
 * or returned: a resource names where to read it (`env:NAME` or `file:/path`), and it is read
 * at connect time, so rotating it needs no change here.
 *
 * Where it may be read from is restricted (CredentialSources), or an API admin could make the
 * gateway read any file or environment variable of the server and send it to an upstream of
 * their choosing that asks for a cleartext password: files only inside the credential
 * directory (symbolic links resolved), environment variables only named `TIGHTLOOP_CRED_*` or
 * listed. And the password itself goes out in cleartext or MD5 only over TLS, unless the
 * resource opts in with `allowInsecurePassword`.
 */

export interface CredentialSources {
  /** Absolute directory `file:` credentials must be inside. */
  dir: string;
  /** Environment variables allowed besides the `TIGHTLOOP_CRED_` prefix. */
  envNames: readonly string[];
}

export const CREDENTIAL_ENV_PREFIX = 'TIGHTLOOP_CRED_';
/** A password file is small; a larger one is a mistake (or /dev/zero). */
const MAX_CREDENTIAL_BYTES = 64 * 1024;

function refused(message: string): AppError {
  return apiError('credential_source_refused', message);
}

/** Checks a reference against the allowed sources (by name and path, before anything is read). */
export function checkCredentialRef(ref: string, sources: CredentialSources): void {
  if (ref.startsWith('env:')) {
    const name = ref.slice(4);
    if (!name.startsWith(CREDENTIAL_ENV_PREFIX) && !sources.envNames.includes(name)) {
      throw refused(`credential env:${name} is not allowed: use a variable named ${CREDENTIAL_ENV_PREFIX}* (or list it in TIGHTLOOP_GATEWAY_CREDENTIAL_ENV)`);
    }
    return;
  }
  const file = ref.slice(5);
  if (!isAbsolute(file) || !inside(resolve(file), resolve(sources.dir))) {
    throw refused(`credential file must be inside the credential directory ${sources.dir} (TIGHTLOOP_GATEWAY_CREDENTIAL_DIR)`);
  }
}

function inside(path: string, dir: string): boolean {
  const rel = relative(dir, path);
  return rel !== '' && !rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel);
}

export const TLS_MODES = ['disable', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
export type TlsMode = (typeof TLS_MODES)[number];

export const RESOURCE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const CREDENTIAL_REF = /^(env:[A-Za-z_][A-Za-z0-9_]{0,127}|file:\/.{1,4095})$/;

export const resourceInputSchema = z.object({
  name: z.string().regex(RESOURCE_NAME, 'letters, digits, _ . - (max 63), starting with a letter or digit'),
  host: z.string().min(1).max(255),
  port: z.number().int().min(1).max(65535).default(5432),
  database: z.string().min(1).max(63),
  user: z.string().min(1).max(63),
  credential: z.string().regex(CREDENTIAL_REF, 'env:NAME or file:/absolute/path'),
  tls: z
    .object({
      mode: z.enum(TLS_MODES).default('prefer'),
      caFile: z.string().min(1).optional(),
      serverName: z.string().min(1).optional(),
    })
    .default({ mode: 'prefer' }),
  /** Send the password in cleartext or MD5 when the upstream asks for it without TLS. */
  allowInsecurePassword: z.boolean().default(false),
  policy: resourcePolicySchema.default(resourcePolicySchema.parse({})),
});
export type ResourceInput = z.input<typeof resourceInputSchema>;

export interface Resource {
  id: string;
  name: string;
  host: string;
  port: number;
  database: string;
  user: string;
  credentialRef: string;
  tls: { mode: TlsMode; caFile?: string; serverName?: string };
  allowInsecurePassword: boolean;
  policy: ResourcePolicy;
  createdAt: string;
  updatedAt: string;
}

function fromRow(r: ResourcesTable): Resource {
  return {
    id: r.id,
    name: r.name,
    host: r.host,
    port: Number(r.port),
    database: r.database,
    user: r.upstream_user,
    credentialRef: r.credential_ref,
    tls: {
      mode: r.tls_mode as TlsMode,
      ...(r.tls_ca_file === null ? {} : { caFile: r.tls_ca_file }),
      ...(r.tls_server_name === null ? {} : { serverName: r.tls_server_name }),
    },
    allowInsecurePassword: Number(r.allow_insecure_password ?? 0) === 1,
    policy: parsePolicy(r.policy),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export function parseResourceInput(body: unknown): z.infer<typeof resourceInputSchema> {
  const parsed = resourceInputSchema.safeParse(body);
  if (!parsed.success) {
    throw badRequest(`invalid resource: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`);
  }
  return parsed.data;
}

export class ResourceStore {
  constructor(
    private readonly db: GatewayDb,
    readonly credentialSources: CredentialSources,
  ) {}

  async create(body: unknown): Promise<Resource> {
    const input = parseResourceInput(body);
    checkCredentialRef(input.credential, this.credentialSources);
    const existing = await this.db.selectFrom('gateway_resources').select('id').where('name', '=', input.name).executeTakeFirst();
    if (existing !== undefined) throw apiError('conflict', `resource ${input.name} already exists`);
    const now = toTimestamp(Date.now());
    const row: ResourcesTable = {
      id: ulid(),
      name: input.name,
      host: input.host,
      port: input.port,
      database: input.database,
      upstream_user: input.user,
      credential_ref: input.credential,
      tls_mode: input.tls.mode,
      tls_ca_file: input.tls.caFile ?? null,
      tls_server_name: input.tls.serverName ?? null,
      allow_insecure_password: input.allowInsecurePassword ? 1 : 0,
      policy: JSON.stringify(input.policy),
      created_at: now,
      updated_at: now,
    };
    await this.db.insertInto('gateway_resources').values(row).execute();
    return fromRow(row);
  }

  async list(): Promise<Resource[]> {
    const rows = await this.db.selectFrom('gateway_resources').selectAll().orderBy('name').execute();
    return rows.map(fromRow);
  }

  async get(name: string): Promise<Resource | undefined> {
    const row = await this.db.selectFrom('gateway_resources').selectAll().where('name', '=', name).executeTakeFirst();
    return row === undefined ? undefined : fromRow(row);
  }

  async getById(id: string): Promise<Resource | undefined> {
    const row = await this.db.selectFrom('gateway_resources').selectAll().where('id', '=', id).executeTakeFirst();
    return row === undefined ? undefined : fromRow(row);
  }

  async require(name: string): Promise<Resource> {
    const r = await this.get(name);
    if (r === undefined) throw notFound(`resource ${name} not found`);
    return r;
  }

  /** Replaces the policy (the one part of a resource that changes often). */
  async setPolicy(name: string, policy: unknown): Promise<Resource> {
    const parsed = resourcePolicySchema.safeParse(policy);
    if (!parsed.success) throw badRequest(`invalid policy: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    const r = await this.require(name);
    await this.db
      .updateTable('gateway_resources')
      .set({ policy: JSON.stringify(parsed.data), updated_at: toTimestamp(Date.now()) })
      .where('id', '=', r.id)
      .execute();
    return { ...r, policy: parsed.data };
  }

  async remove(name: string): Promise<Resource> {
    const r = await this.require(name);
    await this.db.deleteFrom('gateway_resources').where('id', '=', r.id).execute();
    return r;
  }
}

/** What the API shows: everything but secrets (the reference to the secret is not one). */
export function publicResource(r: Resource): Record<string, unknown> {
  return {
    id: r.id,
    name: r.name,
    host: r.host,
    port: r.port,
    database: r.database,
    user: r.user,
    credential: r.credentialRef.startsWith('env:') ? r.credentialRef : 'file:…',
    tls: r.tls,
    allowInsecurePassword: r.allowInsecurePassword,
    policy: r.policy,
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
  };
}

/**
 * Reads the upstream password a resource refers to, from an allowed source only (checked again
 * here: a row may predate the rules, and a file's real path may leave the directory by a link).
 */
export async function resolveCredential(ref: string, sources: CredentialSources): Promise<string> {
  checkCredentialRef(ref, sources);
  if (ref.startsWith('env:')) {
    const v = process.env[ref.slice(4)];
    if (v === undefined) throw apiError('credential_unavailable', `environment variable ${ref.slice(4)} is not set`);
    return v;
  }
  let real: string;
  let dir: string;
  try {
    [real, dir] = await Promise.all([realpath(ref.slice(5)), realpath(sources.dir)]);
  } catch (cause) {
    throw apiError('credential_unavailable', 'credential file is not readable', { cause });
  }
  if (!inside(real, dir)) throw refused(`credential file leads outside the credential directory ${sources.dir}`);
  try {
    const fh = await open(real, 'r');
    try {
      const st = await fh.stat();
      if (!st.isFile() || st.size > MAX_CREDENTIAL_BYTES) throw refused('credential file is not a regular file of at most 64 KiB');
      return (await fh.readFile('utf8')).replace(/\r?\n$/, '');
    } finally {
      await fh.close();
    }
  } catch (cause) {
    if (cause instanceof AppError) throw cause;
    throw apiError('credential_unavailable', 'credential file is not readable', { cause });
  }
}
