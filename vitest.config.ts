import { defineConfig } from 'vitest/config';
import { LOOP_TESTS, STATE_SUITES, stateDialectProjects } from './vitest.loop.config.js';

/**
 * The unit and integration suite, files in parallel. The end-to-end loop tests (real child
 * processes, live statistics on real latencies, a real browser) run afterwards, one file at a time,
 * from vitest.loop.config.ts: on a 2-core machine, running them beside 60 other files starves
 * the processes they time.
 */
export default defineConfig({
  test: {
    projects: stateDialectProjects(['src/**/*.test.ts', 'test/**/*.test.ts'], STATE_SUITES),
    exclude: ['**/node_modules/**', ...LOOP_TESTS],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    globalSetup: ['test/helpers/pg-global-setup.ts'],
  },
});
