/**
 * What viewers do not read. They see the metadata of access requests, action runs and incident
 * timelines (who, what, when, status), not their free text and payloads: the reason and decision
 * note of an access request (they name customers, tickets, incidents), a statement review's SQL
 * and the statements in a timeline (literal values may be personal data), an action run's output
 * and its approver's note (a runbook may print secrets or data). Members and admins act on these
 * and see them whole. Each answer says what was withheld in `redacted`.
 */
import type { FastifyRequest } from 'fastify';
import { textOf } from '../core/text.js';
import { roleAtLeast } from './roles.js';

/** May this caller read reasons, notes, SQL and output? (member and admin) */
export function seesDetail(req: FastifyRequest): boolean {
  return roleAtLeast(req.principal?.role ?? req.gatewayPrincipal?.role ?? '', 'member');
}

const DETAIL_KEYS = ['reason', 'note', 'sql', 'output'] as const;

/** The object with its detail fields (those present) set to null and listed in `redacted`. */
export function withoutDetail<T extends object>(o: T): T & { redacted?: string[] } {
  const hidden = DETAIL_KEYS.filter((k) => k in o && (o as Record<string, unknown>)[k] !== null);
  if (hidden.length === 0) return o;
  const out = { ...o } as Record<string, unknown>;
  for (const k of hidden) out[k] = null;
  out.redacted = hidden;
  return out as T & { redacted?: string[] };
}

interface Entry { kind: string; title: string; data: Record<string, unknown> }

/** An incident story's timeline without reasons, notes, statement text or run output. */
export function storyWithoutDetail<S extends { timeline: Entry[] }>(story: S): S {
  const timeline = story.timeline.map((e) => {
    const data = withoutDetail(e.data);
    if (data === e.data) return e;
    if (e.kind !== 'statement') {
      // A title that quotes a withheld field (a resolution or a person's note) loses the quote too.
      let title = e.title;
      for (const k of data.redacted ?? []) {
        const v = e.data[k];
        if (typeof v === 'string' && v !== '' && title.includes(v)) title = title.split(v).join(`${k} withheld`);
      }
      return { ...e, title, data };
    }
    // The title quotes the statement: keep only its decision.
    return { ...e, title: `${textOf(e.data.decision, 'ran')}: statement text withheld`, data };
  });
  return { ...story, timeline };
}
