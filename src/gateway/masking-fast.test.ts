import { describe, expect, it } from 'vitest';
import { lookAlikes, piiSamples, PII_TYPES, rng } from '../../bench/_pii-corpus.js';
import { DEFAULT_MASKING, Masker, Renderer, type MaskCounts } from './masking/index.js';

/**
 * The masker's fast path for ASCII text values (masker.ts maskAscii, render.ts
 * matchAsciiInPlace) must mask exactly what the string path masks: same bytes out, same counts.
 * The reference here is the string path itself (maskText on the decoded value).
 */

function dataRow(values: readonly string[]): Buffer {
  const parts = values.map((v) => Buffer.from(v, 'utf8'));
  const len = 6 + parts.reduce((n, p) => n + 4 + p.length, 0);
  const out = Buffer.alloc(3 + 1 + len); // three bytes before the message: offsets must be honoured
  out[3] = 0x44;
  out.writeInt32BE(len, 4);
  out.writeInt16BE(values.length, 8);
  let off = 10;
  for (const p of parts) {
    out.writeInt32BE(p.length, off);
    p.copy(out, off + 4);
    off += 4 + p.length;
  }
  return out;
}

const r = rng(4242);
const pool = [...PII_TYPES.flatMap((t) => piiSamples(t, 300, 11).map((s) => s.text)), ...lookAlikes(600), '0123456789', '4111111111111111', '12', 'x'];
const pick = (): string => pool[Math.floor(r() * pool.length)];

describe('masking fast path (ASCII text values)', () => {
  for (const mode of ['full', 'partial'] as const) {
    it(`masks ${mode} exactly as the string path does`, () => {
      const masker = new Masker({ ...DEFAULT_MASKING, mode }, Buffer.alloc(32, 3));
      const fields = [25, 1043, 23, 114].map((typeOid, i) => ({ name: `c${i}`, tableOid: 0, column: 0, typeOid, format: 0 }));
      const plan = masker.plan(fields);
      const classes = ['text', 'text', 'numeric', 'json'] as const;
      let masked = 0;
      for (let k = 0; k < 2_000; k++) {
        const values = fields.map(() => (r() < 0.3 ? `${pick()} / ${pick()}` : pick()));
        const msg = dataRow(values);
        const counts: MaskCounts = {};
        const got = masker.maskDataRow(msg, 3, msg.length, plan, counts);
        const wantCounts: MaskCounts = {};
        const want = values.map((v, i) => masker.maskText(v, classes[i], wantCounts) ?? v);
        const changed = want.some((w, i) => w !== values[i]);
        expect(got === undefined).toBe(!changed);
        if (got !== undefined) {
          expect(got.equals(dataRow(want).subarray(3))).toBe(true);
          masked++;
        }
        expect(counts).toEqual(wantCounts);
      }
      expect(masked).toBeGreaterThan(1_000);
    });
  }

  it('matchAsciiInPlace writes what match returns', () => {
    const renderer = new Renderer(Buffer.alloc(32, 3));
    const alphabet = '0123456789abcXYZ -.@()+#';
    for (let k = 0; k < 20_000; k++) {
      let s = '';
      const n = Math.floor(r() * 24);
      for (let i = 0; i < n; i++) s += alphabet[Math.floor(r() * (k % 3 === 0 ? 10 : alphabet.length))];
      for (const mode of ['full', 'partial'] as const) {
        const buf = Buffer.from(`<<${s}>>`, 'latin1');
        renderer.matchAsciiInPlace(buf, 2, 2 + s.length, mode);
        expect(buf.toString('latin1')).toBe(`<<${renderer.match('credit-card', s, mode, 'text')}>>`);
      }
    }
  });
});
