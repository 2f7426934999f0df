import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from '../src/cli/main.js';

/**
 * Docs stay true: every `tightloop <command> [<subcommand>]` written in the README or in docs/
 * must be a real command of the CLI, and must be run somewhere — by a test (an argv array like
 * `['deploy', 'record', ...]` in a test file) or by the demo (src/demo, which the end-to-end test
 * runs and whose command log it checks).
 */

const ROOT = join(import.meta.dirname, '..');

/** Commands written in the docs but not run anywhere yet; the test fails once one gets covered, so this list only shrinks. */
const NOT_YET_RUN = new Set<string>([]);

async function helpOf(args: string[]): Promise<string> {
  let out = '';
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((s: string) => ((out += s), true));
  try {
    await run(['node', 'tightloop', ...args, '--help']);
  } finally {
    process.stdout.write = write;
  }
  return out;
}

function commandsIn(help: string): string[] {
  const section = help.split(/^Commands:$/m)[1] ?? '';
  return [...section.matchAll(/^ {2}([a-z][a-z-]*)/gm)].map((m) => m[1]).filter((c) => c !== 'help');
}

function files(dir: string, pred: (f: string) => boolean): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...files(p, pred));
    else if (pred(p)) out.push(p);
  }
  return out;
}

describe('commands in the docs', () => {
  it('are real CLI commands, each run by a test or by the demo', async () => {
    const top = commandsIn(await helpOf([]));
    expect(top).toEqual(expect.arrayContaining(['up', 'deploy', 'resource', 'access', 'audit']));
    const subs = new Map<string, string[]>();
    for (const c of top) subs.set(c, commandsIn(await helpOf([c])));

    const docs = [join(ROOT, 'README.md'), ...files(join(ROOT, 'docs'), (f) => f.endsWith('.md'))];
    const written = new Map<string, string>(); // "group verb" → first doc naming it
    for (const file of docs) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/\btightloop ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?/g)) {
        const [, group, verb] = m;
        if (!subs.has(group)) continue; // prose ("tightloop is ...")
        const sub = subs.get(group) ?? [];
        const key = verb !== undefined && sub.includes(verb) ? `${group} ${verb}` : group;
        if (sub.length > 0 && key === group) continue; // a group named in prose, e.g. "tightloop deploy"
        if (!written.has(key)) written.set(key, file.slice(ROOT.length + 1));
      }
    }
    expect(written.size).toBeGreaterThan(15);

    const runners = [...files(join(ROOT, 'test'), (f) => f.endsWith('.ts')), ...files(join(ROOT, 'src'), (f) => /\.(test|conformance)\.ts$/.test(f) || f.includes(join('src', 'demo')))]
      .map((f) => readFileSync(f, 'utf8'));
    const uncovered: string[] = [];
    for (const [key, doc] of written) {
      // An argv in code: ['deploy', 'record', ...] or cli('report', ...).
      const argv = new RegExp(`[[(,]\\s*${key.split(' ').map((w) => `'${w}'`).join(',\\s*')}\\s*[,)\\]]`);
      const ran = runners.some((src) => argv.test(src));
      if (!ran && !NOT_YET_RUN.has(key)) uncovered.push(`${key} (${doc})`);
      if (ran && NOT_YET_RUN.has(key)) uncovered.push(`${key} is run now: remove it from NOT_YET_RUN`);
    }
    expect(uncovered).toEqual([]);
  });

  it('npm start is the demo, as the README says', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    // Through the bin's shebang, so it gets the bin's Node flags.
    expect(pkg.scripts.start).toBe('bin/tightloop up --demo');
    expect(readFileSync(join(ROOT, 'README.md'), 'utf8')).toMatch(/npm start +# runs `tightloop up --demo`/);
  });
});
