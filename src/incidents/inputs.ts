/**
 * What people send the incidents API, as zod schemas: the routes parse request bodies and query
 * strings with them before the service is called (a precise 400 at the edge). The service
 * checks the same schemas again on its own entry points, since code calls it too (the CLI's
 * tests, the demo); a typed caller never meets the second check.
 */
import { z } from 'zod';
import { badRequest } from '../core/app-error.js';
import { INCIDENT_STATUSES } from './model.js';

const MESSAGES = {
  assignee: `'assignee': a user name (1-200 characters)`,
  resolveNote: `'note': text up to 2000 characters`,
  note: `'note': text of 1-2000 characters`,
  status: `parameter 'status': open, acknowledged, resolved or all`,
} as const;

export const assigneeSchema = z.string().max(200).refine((s) => s.trim() !== '').transform((s) => s.trim());
export const resolveNoteSchema = z.string().max(2000).optional();
export const noteSchema = z.string().max(2000).refine((s) => s.trim() !== '').transform((s) => s.trim());
export const statusFilterSchema = z.enum([...INCIDENT_STATUSES, 'all']).optional();

function check<T>(schema: z.ZodType<T>, value: unknown, message: string): T {
  const r = schema.safeParse(value);
  if (!r.success) throw badRequest(message);
  return r.data;
}

/** A body's field (a body that is not an object has none). */
const field = (body: unknown, name: string): unknown =>
  typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[name] : undefined;

export const parseAssignee = (value: unknown): string => check(assigneeSchema, value, MESSAGES.assignee);
export const parseResolveNote = (value: unknown): string | undefined => check(resolveNoteSchema, value, MESSAGES.resolveNote);
export const parseNote = (value: unknown): string => check(noteSchema, value, MESSAGES.note);
export const parseStatusFilter = (value: unknown): (typeof INCIDENT_STATUSES)[number] | 'all' | undefined =>
  check(statusFilterSchema, value, MESSAGES.status);

/** Request bodies of `POST /api/incidents/:id/{assign,resolve,notes}`. */
export const assignBody = (body: unknown): string => parseAssignee(field(body, 'assignee'));
export const resolveBody = (body: unknown): string | undefined => parseResolveNote(field(body, 'note'));
export const noteBody = (body: unknown): string => parseNote(field(body, 'note'));
