import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The tightloop checkout this code runs from (works from src/ under vitest and from dist/). */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'tightloop') return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the tightloop package root');
    dir = up;
  }
}

/** The compiled shop entry point the local actuator starts (built by `npm install` / `npm run build`). */
export function shopEntry(): string {
  return join(repoRoot(), 'dist', 'src', 'demo', 'shop', 'main.js');
}

export function cliEntry(): string {
  return join(repoRoot(), 'bin', 'tightloop');
}
