import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openApiDocument } from '../http/openapi.js';
import { API_ERRORS, apiError, AppError, clientError, type ApiErrorCode } from './app-error.js';

/** One error registry (issue 21.1): each code declared once, with its status, and listed by the OpenAPI document. */

const root = join(import.meta.dirname, '..');
function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') && !e.name.includes('.conformance.') ? [p] : [];
  });
}
const rel = (p: string): string => p.slice(root.length + 1);

describe('API error registry', () => {
  it('apiError takes the status from the registry', () => {
    for (const [code, spec] of Object.entries(API_ERRORS)) {
      const e = apiError(code as ApiErrorCode, 'm');
      expect(e).toBeInstanceOf(AppError);
      expect([e.code, e.status, e.message]).toEqual([code, spec.status, 'm']);
      expect(spec.status >= 400 && spec.status < 600, code).toBe(true);
    }
  });

  it('every code raised anywhere (gateway included) is registered, with the status it is raised with', () => {
    const wrong: string[] = [];
    for (const file of sources(root)) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/new AppError\(\s*'(\w+)',\s*(\d+)/g)) {
        const spec = (API_ERRORS as Record<string, { status: number }>)[m[1]];
        if (spec?.status !== Number(m[2])) wrong.push(`${rel(file)}: '${m[1]}', ${m[2]}`);
      }
      for (const m of text.matchAll(/apiError\(\s*'(\w+)'/g)) if (!(m[1] in API_ERRORS)) wrong.push(`${rel(file)}: '${m[1]}'`);
    }
    expect(wrong).toEqual([]);
  });

  it('no module constructs AppError by hand: codes and statuses come from the registry', () => {
    // apiError(code, message) is the one way to raise an API error; only this module's own file
    // calls the constructor. Tests count too, so a test cannot fake an unregistered error.
    const all = (dir: string): string[] => readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
      const p = join(dir, e.name);
      return e.isDirectory() ? all(p) : e.name.endsWith('.ts') ? [p] : [];
    });
    const repo = join(root, '..');
    const byHand = [...all(root), ...all(join(repo, 'test'))]
      .filter((f) => f !== join(root, 'core', 'app-error.ts'))
      .flatMap((f) => [...readFileSync(f, 'utf8').matchAll(/new\s+AppError\s*\(/g)].map(() => f.slice(repo.length + 1)));
    expect(byHand).toEqual([]);
  });

  it('a framework\'s client error answers with the registered code of its status, never its own', () => {
    const of = (status: number): [string, number] => { const e = clientError(status, 'm'); return [e.code, e.status]; };
    expect([400, 404, 413, 415, 418].map(of)).toEqual([['bad_request', 400], ['not_found', 404], ['payload_too_large', 413], ['unsupported_media_type', 415], ['bad_request', 400]]);
  });

  it('the OpenAPI document lists every code with its status and meaning', () => {
    const schema = openApiDocument.components.schemas.Error;
    expect(schema.properties.error.properties.code.enum).toEqual(Object.keys(API_ERRORS));
    expect(schema['x-error-codes']).toEqual(API_ERRORS);
    // Error responses point at the one schema.
    const text = JSON.stringify(openApiDocument.paths);
    expect(text).toContain('"$ref":"#/components/schemas/Error"');
  });
});
