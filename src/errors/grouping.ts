/**
 * Grouping: which events are "the same error".
 *
 * Order (first that applies): the SDK's explicit fingerprint (`{{ default }}` expands to the
 * default components); the in-app frames of the top exception (module, or normalised filename,
 * plus function — no line numbers, so an unrelated edit above the throw does not split a group);
 * the exception type plus its normalised message; the normalised log message.
 *
 * The algorithm is versioned: a project records the version it was created with and keeps it,
 * so a later change to these rules applies to new projects and never splits existing groups.
 */
import { createHash } from 'node:crypto';
import type { ErrorEvent, ExceptionInfo, GroupingResult, StackFrame } from './model.js';

export const GROUPING_VERSION = 1;
export const LATEST_GROUPING_VERSION = GROUPING_VERSION;

// Order matters: specific shapes before the generic number rule eats their digits.
const MESSAGE_RULES: readonly [RegExp, string][] = [
  [/\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b/g, '<email>'],
  [/\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi, '<uuid>'],
  [/\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?/g, '<timestamp>'],
  [/\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b/g, '<ip>'],
  [/\b(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{1,4}\b/gi, '<ip>'], // IPv6, `::` included
  [/\b0x[0-9a-f]+\b/gi, '<hex>'],
  [/\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b/gi, '<hex>'],
  [/-?\b\d+(?:\.\d+)?\b/g, '<num>'],
];

/** Replaces the variable parts of a message so `user 42 not found` and `user 7 not found` match. */
export function normalizeMessage(message: string): string {
  let m = message.length > 1024 ? message.slice(0, 1024) : message;
  for (const [re, token] of MESSAGE_RULES) m = m.replace(re, token);
  return m.trim();
}

/**
 * A filename without what changes between builds and hosts: query strings, the absolute prefix
 * up to the app root (or node_modules), content hashes in bundle names.
 */
export function normalizeFilename(filename: string): string {
  // The same few files throw over and over: a small memo saves three regexes per in-app frame.
  let n = filenames.get(filename);
  if (n === undefined) {
    if (filenames.size >= 4096) filenames.clear();
    filenames.set(filename, n = normalizeFilenameUncached(filename));
  }
  return n;
}

const filenames = new Map<string, string>();

function normalizeFilenameUncached(filename: string): string {
  let f = filename.replace(/[?#].*$/, '').replace(/^file:\/\//, '').replace(/\\/g, '/');
  const nm = f.lastIndexOf('/node_modules/');
  if (nm !== -1) f = f.slice(nm + 1);
  else {
    // Keep the path from the innermost conventional source root (the same on every host and
    // checkout directory), else the last two segments.
    const roots = [...f.matchAll(/\/(?:src|lib|app|dist|build)(?=\/)/g)];
    if (roots.length > 0) f = f.slice(roots[roots.length - 1].index + 1);
    else f = f.split('/').slice(-2).join('/');
  }
  return f.replace(/[.-][0-9a-f]{8,}(?=\.\w+$)/i, '');
}

function frameKey(fr: StackFrame): string {
  const where = fr.module !== undefined && fr.module !== '' ? fr.module : normalizeFilename(fr.filename ?? '?');
  return `${where}:${fr.function ?? '?'}`;
}

function topException(event: ErrorEvent): ExceptionInfo | undefined {
  return event.exceptions.length === 0 ? undefined : event.exceptions[event.exceptions.length - 1];
}

/** The default components for an event (what `{{ default }}` stands for). */
export function defaultComponents(event: ErrorEvent): string[] {
  const top = topException(event);
  if (top !== undefined) {
    const inApp = top.frames.filter((f) => f.inApp === true);
    if (inApp.length > 0) return ['frames', top.type, ...inApp.map(frameKey)];
    return ['exception', top.type, normalizeMessage(top.value)];
  }
  return ['message', normalizeMessage(event.message)];
}

function components(event: ErrorEvent): string[] {
  const fp = event.fingerprint;
  if (fp === undefined || fp.length === 0) return defaultComponents(event);
  const out: string[] = ['fingerprint'];
  for (const part of fp) {
    if (/^\{\{\s*default\s*\}\}$/.test(part)) out.push(...defaultComponents(event));
    else out.push(String(part));
  }
  return out;
}

function culpritOf(event: ErrorEvent): string {
  const top = topException(event);
  if (top === undefined) return event.transaction;
  const frames = top.frames.filter((f) => f.inApp === true);
  const last = (frames.length > 0 ? frames : top.frames).at(-1);
  return last === undefined ? event.transaction : `${last.function ?? '?'} (${last.module ?? normalizeFilename(last.filename ?? '?')})`;
}

export function titleOf(event: ErrorEvent): string {
  const top = topException(event);
  const t = top === undefined ? event.message : top.value === '' ? top.type : `${top.type}: ${top.value}`;
  return (t === '' ? '<no message>' : t).slice(0, 200);
}

/** Groups one event of `projectId` under grouping version `version`. */
export function groupEvent(event: ErrorEvent, version: number = GROUPING_VERSION): GroupingResult {
  if (version !== GROUPING_VERSION) throw new Error(`unknown grouping version ${version}`);
  const comps = components(event);
  const h = createHash('sha256').update(`${event.projectId}\n${version}\n${comps.join('\n')}`).digest('hex');
  return { groupId: h.slice(0, 32), version, components: comps, title: titleOf(event), culprit: culpritOf(event) };
}
