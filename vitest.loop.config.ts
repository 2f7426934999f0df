import { defineConfig } from 'vitest/config';

/** End-to-end loop tests: run after the main suite, one file at a time (see vitest.config.ts). */
export const LOOP_TESTS = [
  'test/demo-e2e.test.ts',
  'test/demo-stop.test.ts',
  'test/demo-ctrl-c.test.ts',
  'test/rollout-e2e.test.ts',
  'test/console-views.test.ts',
  'test/browser-ingest.test.ts',
  'test/deploys-verify.test.ts',
  'test/deploys-metric-checks.test.ts',
  'test/incidents-flow.test.ts',
];

export default defineConfig({
  test: {
    include: LOOP_TESTS,
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
