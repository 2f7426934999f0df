import { describe, expect, it } from 'vitest';
import { storyWithoutDetail, withoutDetail } from './redact.js';

describe('viewer redaction', () => {
  it('withholds reasons, notes, SQL and output, and says so; leaves the rest', () => {
    expect(withoutDetail({ id: 'r1', reason: 'customer X', note: null, sql: 'select 1', status: 'pending' }))
      .toEqual({ id: 'r1', reason: null, note: null, sql: null, status: 'pending', redacted: ['reason', 'sql'] });
    const plain = { id: 'r2', status: 'ok' };
    expect(withoutDetail(plain)).toBe(plain);
  });

  it('an incident timeline keeps who and what, not statement text, reasons or run output', () => {
    const story = { incident: { id: 'i' }, timeline: [
      { kind: 'statement', title: "allow: select * from users where email = 'jane@example.com'", data: { decision: 'allow', sql: "select * from users where email = 'jane@example.com'" } },
      { kind: 'access.requested', title: 'mia requested read access on crm', data: { reason: 'ticket 1: Jane', mode: 'read' } },
      { kind: 'action', title: 'action dump: succeeded', data: { output: 'password=hunter2', status: 'succeeded' } },
      { kind: 'alert.fired', title: 'errors', data: { value: 0.3 } },
    ] };
    const out = storyWithoutDetail(story);
    expect(JSON.stringify(out)).not.toMatch(/jane|Jane|hunter2/);
    expect(out.timeline.map((e) => e.title)).toEqual(['allow: statement text withheld', 'mia requested read access on crm', 'action dump: succeeded', 'errors']);
    expect(out.timeline[1].data).toEqual({ reason: null, mode: 'read', redacted: ['reason'] });
    expect(out.timeline[3]).toBe(story.timeline[3]);
  });
});
