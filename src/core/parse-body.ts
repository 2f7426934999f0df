import type { z } from 'zod';
import { badRequest } from './app-error.js';

/** Validates a request body (missing = `{}`) against `schema`; 400 naming each bad field. */
export function parseBody<T>(schema: z.ZodType<T>, body: unknown, what: string): T {
  const r = schema.safeParse(body ?? {});
  if (!r.success) throw badRequest(`invalid ${what}: ${r.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`);
  return r.data;
}
