import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * What the README says about `npm install`'s output stays true: every dependency with an install
 * script is decided in `allowScripts` (allowed or denied, so npm has nothing left to warn about),
 * and `cookie@2` — which declares Node >= 22 — works on this Node for the one use its dependent
 * (`light-my-request`, fastify's inject helper) makes of it.
 */
const ROOT = join(import.meta.dirname, '..');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { allowScripts: Record<string, boolean> };
const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { hasInstallScript?: boolean; optional?: boolean; os?: string[]; cpu?: string[] }> };

describe('npm install on this machine', () => {
  it('decides every install script in allowScripts (nothing unreviewed to warn about)', () => {
    const req = createRequire(join(ROOT, 'package.json'));
    const undecided: string[] = [];
    for (const [path, p] of Object.entries(lock.packages)) {
      if (p.hasInstallScript !== true || path === '') continue;
      const name = path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length);
      // Platform packages not installed here (other OS/CPU) run nothing on this machine.
      if ((p.os !== undefined && !p.os.includes(process.platform)) || (p.cpu !== undefined && !p.cpu.includes(process.arch))) continue;
      if (!(name in pkg.allowScripts)) undecided.push(name);
    }
    expect(undecided).toEqual([]);
    expect(pkg.allowScripts).toMatchObject({ 'better-sqlite3': true, esbuild: false, protobufjs: false });
    // Denied esbuild still works: its JS API runs the platform binary npm installed.
    const esbuild = req('esbuild') as { transformSync(code: string, o: { loader: string }): { code: string } };
    expect(esbuild.transformSync('let a: number = 1', { loader: 'ts' }).code).toBe('let a = 1;\n');
  });

  it('cookie@2 (engines: node >= 22) serves light-my-request on this Node', async () => {
    const req = createRequire(join(ROOT, 'node_modules', 'fastify', 'package.json'));
    const inject = req('light-my-request') as (fn: (q: unknown, s: { setHeader(k: string, v: string): void; end(b: string): void }) => void,
      o: { url: string; cookies: Record<string, string> }) => Promise<{ cookies: Array<{ name: string; value: string }>; payload: string }>;
    const res = await inject((_q, s) => { s.setHeader('set-cookie', 'x=1; Path=/'); s.end('ok'); }, { url: '/', cookies: { a: 'b' } });
    expect([res.payload, res.cookies.map((c) => `${c.name}=${c.value}`)]).toEqual(['ok', ['x=1']]);
  });
});
