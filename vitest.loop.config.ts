import { defineConfig, type TestProjectInlineConfiguration } from 'vitest/config';

/** End-to-end loop tests: run after the main suite, one file at a time (see vitest.config.ts). */
export const LOOP_TESTS = [
  'test/demo-e2e.test.ts',
  'test/demo-stop.test.ts',
  'test/demo-ctrl-c.test.ts',
  'test/rollout-e2e.test.ts',
  'test/console-views.test.ts',
  'test/console-story.test.ts',
  'test/browser-ingest.test.ts',
  'test/deploys-verify.test.ts',
  'test/deploys-metric-checks.test.ts',
  'test/incidents-flow.test.ts',
  'test/durability-sync.test.ts',
  'test/cluster-failover.test.ts',
  'test/cluster-loop.test.ts',
  'test/cluster-clickhouse-loop.test.ts',
];

/**
 * Suites that keep state: each runs in two vitest projects, `sqlite` and `postgres` (the latter
 * sets TIGHTLOOP_TEST_STATE=postgres; the suites' helpers open their state there: a database on
 * the run's one shared test PostgreSQL, see src/state/pg-cluster.conformance.ts). Suites that
 * loop over both dialects inside (stateTestDialects) are not listed: they run once.
 * TIGHTLOOP_TEST_PG=0 drops the postgres project.
 */
export const STATE_SUITES = [
  'test/state-dialect-project.test.ts', // the harness itself
  // auth
  'test/users-tokens.test.ts', 'test/roles-walk.test.ts', 'test/roles-writes.test.ts',
  // gateway grants, approvals
  'src/gateway/access.test.ts', 'test/access-grant-bounds.test.ts', 'src/gateway/session-watch.test.ts',
  'src/gateway/approval-once.test.ts',
  // gateway audit
  'src/gateway/audit-durable.test.ts',
  // detect: rules, alerts, silences
  'test/detect.test.ts', 'test/detect-cli.test.ts', 'test/detect-signals.test.ts', 'src/detect/engine.test.ts', 'src/detect/feeds.test.ts',
  // deploys, verification, rollouts, actions
  'test/deploys-authz.test.ts', 'test/actions-api.test.ts', 'test/actions-service.test.ts', 'test/rollout-policy.test.ts',
  'src/deploys/rollback-target.test.ts', 'src/deploys/service-warm.test.ts',
  // (deploys-metric-checks is not: its subject is metric telemetry; its state path is deploys-verify's)
  'test/deploys-verify.test.ts', 'test/rollout-e2e.test.ts',
  // incidents
  'test/incidents-cli.test.ts', 'test/incidents-flow.test.ts',
  // errors and their events
  'test/ingest-errors.test.ts', 'test/errors-ingest.test.ts', 'test/errors-sentry.test.ts', 'test/sentry-spans.test.ts', 'test/errors-services.test.ts',
];

/** The `sqlite` project (every file of `include`) and the `postgres` one (`stateFiles`). */
export function stateDialectProjects(include: readonly string[], stateFiles: readonly string[]): TestProjectInlineConfiguration[] {
  const sqlite: TestProjectInlineConfiguration = { extends: true, test: { name: 'sqlite', include: [...include] } };
  if (process.env.TIGHTLOOP_TEST_PG === '0' || stateFiles.length === 0) return [sqlite];
  return [sqlite, { extends: true, test: { name: 'postgres', include: [...stateFiles], env: { TIGHTLOOP_TEST_STATE: 'postgres' } } }];
}

export default defineConfig({
  test: {
    projects: stateDialectProjects(LOOP_TESTS, STATE_SUITES.filter((f) => LOOP_TESTS.includes(f))),
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    globalSetup: ['test/helpers/pg-global-setup.ts'],
  },
});
