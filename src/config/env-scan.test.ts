import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLIENT_SETTINGS, SETTINGS } from './settings.js';

/**
 * Settings are read in config/ only. This scan fails when code elsewhere in src/ reads the
 * environment, unless the file is listed here with the reason it is not a setting.
 */
const NOT_SETTINGS: Record<string, string> = {
  'src/gateway/resources.ts': "a resource's `env:NAME` credential reference, read when it connects (a named secret, not a setting)",
  'src/deploys/actions/runners.ts': 'the environment an action passes to its child (INHERITED_ENV and `env:` values of the action file)',
  'src/deploys/rollout/local-actuator.ts': 'the environment of the service versions it starts',
  'src/demo/gateway-tour.ts': "the environment of the demo's psql child",
  'src/demo/cli.ts': "the environment of the demo's tightloop CLI children",
  'src/demo/shop/app.ts': 'the demo shop is a program of its own (OTEL_SERVICE_NAME)',
  'src/demo/shop/telemetry.ts': 'the demo shop is a program of its own (SENTRY_*)',
  'src/demo/shop/main.ts': 'the demo shop is a program of its own (PORT, DATABASE_URL, VERSION)',
  'src/cli/deploys.ts': "CI's own variables (GITHUB_SHA, CI_COMMIT_SHA, …) describe the deploy being recorded",
  'src/cli/actions.ts': "CI's own variables describe the deploy being started",
  'src/gateway/harness.conformance.ts': 'test harness: the upstream test passwords a test resource names',
  'src/state/dialects.conformance.ts': 'test harness: TIGHTLOOP_TEST_PG / TIGHTLOOP_TEST_STATE pick the state dialects of a test run',
  'src/state/pg-cluster.conformance.ts': 'test harness: the shared PostgreSQL of a test run',
};

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [p] : [];
  });
}

const root = join(import.meta.dirname, '..', '..');
const ENV_READ = /process\.env\b|\bprocess\s*\[\s*['"]env['"]\s*\]|\{\s*env\s*\}\s*=\s*process\b/;

describe('settings are read from the environment in config/ only', () => {
  const files = sources(join(root, 'src')).map((f) => relative(root, f));

  it('no file outside config/ reads process.env, except the listed ones that read no setting', () => {
    const offenders = files.filter((f) => !f.startsWith('src/config/') && !(f in NOT_SETTINGS))
      .filter((f) => ENV_READ.test(readFileSync(join(root, f), 'utf8')));
    expect(offenders).toEqual([]);
  });

  it('the listed files read no TIGHTLOOP_ setting either', () => {
    const settingVars = new Set<string>([...SETTINGS.map((s) => s.env), ...CLIENT_SETTINGS.map((s) => s.env)]);
    const hits: string[] = [];
    for (const f of Object.keys(NOT_SETTINGS)) {
      const text = readFileSync(join(root, f), 'utf8');
      for (const m of text.matchAll(/process\.env(?:\.([A-Z0-9_]+)|\[\s*['"]([A-Z0-9_]+)['"]\s*\])/g)) {
        const name = m[1] ?? m[2] ?? '';
        if (settingVars.has(name)) hits.push(`${f}: ${name}`);
      }
    }
    expect(hits).toEqual([]);
    // A stale entry would let a file back in unseen.
    expect(Object.keys(NOT_SETTINGS).filter((f) => !files.includes(f))).toEqual([]);
  });

  it('the scan sees the forms a read takes', () => {
    for (const s of ['const p = process.env.TIGHTLOOP_PORT;', "process['env']", 'const { env } = process;']) expect(ENV_READ.test(s)).toBe(true);
  });

  it('docs/configuration.md lists every setting with its variable', () => {
    const doc = readFileSync(join(root, 'docs', 'configuration.md'), 'utf8');
    const missing = [...SETTINGS, ...CLIENT_SETTINGS].filter((s) => !doc.includes(`\`${s.name}\``) || !doc.includes(`\`${s.env}\``)).map((s) => s.name);
    expect(missing).toEqual([]);
  });
});
