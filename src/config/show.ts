import type { LoadedConfig, SettingSource } from './load.js';
import { SETTINGS, type SecretKind } from './settings.js';

/** What `tightloop config show` prints: each setting's effective value and its source, secrets hidden. */

export interface ShownSetting {
  name: string;
  value: unknown;
  source: SettingSource;
  flag?: string;
  env: string;
}

export const REDACTED = '***';

/** A secret as `config show` prints it; text that is not a URL is hidden whole. */
export function redact(value: string, kind: SecretKind): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch { // not a URL: nothing in it can be shown safely, so all of it is hidden
    return REDACTED;
  }
  if (kind === 'url') return `${u.protocol}//${u.host}/${REDACTED}`;
  if (u.password !== '') u.password = REDACTED;
  // Query parameters may carry a password too (ClickHouse and PostgreSQL drivers accept them).
  for (const k of [...u.searchParams.keys()]) if (/pass|secret|token|key/i.test(k)) u.searchParams.set(k, REDACTED);
  return u.toString();
}

function valueAt(config: unknown, name: string): unknown {
  let o: unknown = config;
  for (const p of name.split('.')) o = o === undefined || o === null ? undefined : (o as Record<string, unknown>)[p];
  return o;
}

export function shownSettings(loaded: LoadedConfig): ShownSetting[] {
  return SETTINGS.map((s) => {
    let value = valueAt(loaded.config, s.name);
    if (s.secret !== undefined && typeof value === 'string') value = redact(value, s.secret);
    return { name: s.name, value: value ?? null, source: loaded.sources[s.name] ?? { kind: 'default', where: 'default' }, ...(s.flag === undefined ? {} : { flag: s.flag }), env: s.env };
  });
}

export function formatShown(loaded: LoadedConfig): string {
  const rows = shownSettings(loaded).map((s) => [s.name, s.value === null ? '(unset)' : Array.isArray(s.value) ? s.value.join(',') : String(s.value as string | number),
    s.source.kind === 'default' ? 'default' : `${s.source.kind} ${s.source.where}`]);
  const head = ['SETTING', 'VALUE', 'SOURCE'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i] ?? 0))).join('  ');
  const out = [line(head), ...rows.map(line)];
  out.push('', loaded.file === undefined ? 'configuration file: none' : `configuration file: ${loaded.file}`);
  return out.join('\n') + '\n';
}
