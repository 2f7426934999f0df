#!/usr/bin/env node
// `npm run bench -- <name> [args]`: runs dist/bench/<name>.js (compiled from bench/<name>.ts).
import { existsSync, readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const [name, ...args] = process.argv.slice(2);
const dir = fileURLToPath(new URL('../dist/bench/', import.meta.url));
const available = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.js') && !f.startsWith('_')).map((f) => f.slice(0, -3)) : [];
if (!name || !available.includes(name)) {
  process.stderr.write(`usage: npm run bench -- <name> [args]; benchmarks: ${available.join(', ') || '(none built: run npm run build)'}\n`);
  process.exit(2);
}
const r = spawnSync(process.execPath, ['--expose-gc', dir + name + '.js', ...args], { stdio: 'inherit' });
process.exit(r.status ?? 1);
