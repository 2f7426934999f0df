import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { HEADER_BYTES, IngestLog } from './ingest-log.js';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'tightloop-ingest-log-'));
  dirs.push(d);
  return join(d, 'log');
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const rec = (text: string, kind = 1) => ({ kind, format: 0, payload: Buffer.from(text) });
const texts = (rs: { payload: Uint8Array }[]) => rs.map((r) => Buffer.from(r.payload).toString());
const segments = (dir: string) => readdirSync(dir).filter((f) => f.endsWith('.log')).sort();

describe('IngestLog', () => {
  it('returns what was appended after a reopen, in order, with kinds, ingest times and positions', async () => {
    const dir = tempDir();
    const log = new IngestLog(dir);
    expect(log.open(0)).toEqual([]);
    const a = await log.append([rec('one'), rec('two', 3)], 1001);
    const b = await log.append([rec('three')], 1002.5);
    expect(a).toBe(2 * HEADER_BYTES + 6);
    expect(b).toBe(a + HEADER_BYTES + 5);
    log.close();

    const again = new IngestLog(dir);
    const all = again.open(0);
    expect(texts(all)).toEqual(['one', 'two', 'three']);
    expect(all.map((r) => [r.kind, r.seq])).toEqual([[1, 1001], [3, 1001], [1, 1002.5]]);
    expect(all[2].start).toBe(a);
    expect(all[2].end).toBe(b);
    // From a position on: only the records at or after it.
    again.close();
    expect(texts(new IngestLog(dir).open(a))).toEqual(['three']);
  });

  it('cuts off a torn tail (a write that never finished) and appends after the intact records', async () => {
    const dir = tempDir();
    const log = new IngestLog(dir);
    log.open(0);
    const end = await log.append([rec('kept')], 1);
    log.close();
    const file = join(dir, segments(dir)[0]);
    appendFileSync(file, Buffer.from([40, 0, 0, 0, 1, 2, 3])); // half a header
    const again = new IngestLog(dir);
    expect(texts(again.open(0))).toEqual(['kept']);
    expect(statSync(file).size).toBe(end);
    await again.append([rec('next')], 2);
    again.close();
    expect(texts(new IngestLog(dir).open(0))).toEqual(['kept', 'next']);
  });

  it('treats a record that fails its checksum as the start of the torn tail', async () => {
    const dir = tempDir();
    const log = new IngestLog(dir);
    log.open(0);
    await log.append([rec('first')], 1);
    await log.append([rec('second')], 2);
    log.close();
    const file = join(dir, segments(dir)[0]);
    const bytes = readFileSync(file);
    bytes[bytes.length - 1] ^= 0xff; // last payload byte of "second"
    writeFileSync(file, bytes);
    expect(texts(new IngestLog(dir).open(0))).toEqual(['first']);
  });

  it('rolls segments, deletes those wholly loaded, and refuses a damaged segment that has successors', async () => {
    const dir = tempDir();
    const log = new IngestLog(dir, 64);
    log.open(0);
    const ends: number[] = [];
    for (let i = 0; i < 6; i++) ends.push(await log.append([rec(`record-${i}-${'x'.repeat(40)}`)], i));
    expect(segments(dir).length).toBeGreaterThan(2);
    log.release(ends[3]);
    const left = segments(dir);
    expect(parseInt(left[0], 16)).toBeLessThanOrEqual(ends[3]);
    log.close();
    expect(texts(new IngestLog(dir, 64).open(ends[3])).map((t) => t.slice(0, 8))).toEqual(['record-4', 'record-5']);

    // Damage in a segment that is not the last one cannot be a torn write: say so, lose nothing.
    const first = join(dir, left[0]);
    const bytes = readFileSync(first);
    bytes[HEADER_BYTES] ^= 0xff;
    writeFileSync(first, bytes);
    expect(() => new IngestLog(dir, 64).open(0)).toThrow(/damaged at byte 0 .*later segments exist/);
  });

  it('starts after the loaded position when the log directory is gone', async () => {
    const dir = tempDir();
    const log = new IngestLog(dir);
    expect(log.open(5000)).toEqual([]);
    expect(await log.append([rec('a')], 1)).toBe(5000 + HEADER_BYTES + 1);
    log.close();
    expect(segments(dir)).toEqual([`${(5000).toString(16).padStart(16, '0')}.log`]);
  });
});
