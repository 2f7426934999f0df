import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/** The console: Preact (JSX via esbuild, no plugin needed) + uPlot, built to web/dist. */
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  // `npx vite --config web/vite.config.ts`: hot reload, API calls passed to a running tightloop.
  server: { proxy: { '/api': process.env.TIGHTLOOP_URL ?? 'http://127.0.0.1:4318' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // Budget: 300 KB gzipped first load (test/console-budget.test.ts asserts it).
    chunkSizeWarningLimit: 400,
    reportCompressedSize: false,
  },
});
