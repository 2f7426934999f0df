import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The README and docs/ link nothing outside the repository: every link is a relative path to a
 * file that exists here (or an anchor of a heading in it). Code blocks are not links.
 */
const ROOT = join(import.meta.dirname, '..');
const DOCS = [join(ROOT, 'README.md'), ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => join(ROOT, 'docs', f))];

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
export function slug(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
}

function prose(text: string): string {
  return text.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '').replace(/`[^`\n]*`/g, '');
}

function anchors(file: string): Set<string> {
  const out = new Set<string>();
  for (const m of prose(readFileSync(file, 'utf8')).matchAll(/^#{1,6} +(.+?) *#*$/gm)) out.add(slug(m[1]));
  // Headings keep their inline code in the anchor text (`tightloop up` → tightloop-up).
  for (const m of readFileSync(file, 'utf8').matchAll(/^#{1,6} +(.+?) *#*$/gm)) out.add(slug(m[1]));
  return out;
}

/** Every link target in the prose of `text`: inline, reference definitions, autolinks and bare URLs. */
export function linksIn(text: string): string[] {
  const p = prose(text);
  return [...new Set([
    ...[...p.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]),
    ...[...p.matchAll(/^\s*\[[^\]]+\]:\s*(\S+)/gm)].map((m) => m[1]),
    ...[...p.matchAll(/<((?:https?|ftp|mailto):[^>\s]+)>/g)].map((m) => m[1]),
    ...[...p.matchAll(/(?<![(<])\b(https?:\/\/[^\s)>\]]+)/g)].map((m) => m[1]).filter((u) => !/^https?:\/\/(127\.0\.0\.1|localhost)[:/]/.test(u)),
    // A bracketed path with no target is an unresolved reference link, e.g. [../shared/DESIGN.md].
    ...[...p.matchAll(/(?<!\])\[([^\]\s]+\.md)\](?![(:[])/g)].map((m) => m[1]),
  ])];
}

describe('links in README.md and docs/', () => {
  it('finds links of every form, and none inside code', () => {
    expect(linksIn('see [a](docs/a.md), [b][x], <https://x.example>, https://y.example/z and [../c.md]\n[x]: https://r.example\n```\n[no](http://code.example)\n```\n`[no](x)`'))
      .toEqual(['docs/a.md', 'https://r.example', 'https://x.example', 'https://y.example/z', '../c.md']);
  });

  it('point at files in this repository (and at headings that exist), never outside it', () => {
    const bad: string[] = [];
    for (const file of DOCS) {
      for (const link of linksIn(readFileSync(file, 'utf8'))) {
        const where = `${relative(ROOT, file)}: ${link}`;
        if (/^[a-z][a-z0-9+.-]*:/i.test(link)) { bad.push(`${where} (outside the repository)`); continue; }
        const [path, anchor] = link.split('#');
        const target = path === '' ? file : resolve(dirname(file), decodeURIComponent(path));
        if (relative(ROOT, target).startsWith('..')) { bad.push(`${where} (outside the repository)`); continue; }
        if (!existsSync(target)) { bad.push(`${where} (no such file)`); continue; }
        if (anchor !== undefined && statSync(target).isFile() && target.endsWith('.md') && !anchors(target).has(anchor)) bad.push(`${where} (no such heading)`);
      }
    }
    expect(bad).toEqual([]);
  });
});
