import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ScramClientExchange, ScramServerExchange, deriveKeys } from './scram.js';
import { decodeBind, decodeCopyResponse, decodeErrorFields, decodeExecute, decodeParse, decodeRowDescription, decodeSaslInitial, decodeStartup, decodeTarget, rowsFromTag } from './wire/decode.js';
import { cstr, frame, int16, int32, parseMessage, startupMessage } from './wire/encode.js';
import { ProtocolViolation } from './wire/errors.js';
import { CLIENT_LIMITS, clientMessageLimits, CUT_FIELD, MessageFramer } from './wire/framer.js';
import { ensureSelfSigned, loadSecureContext } from './tls.js';

function messages(buf: Buffer): string[] {
  const out: string[] = [];
  for (let off = 0; off < buf.length; off += 1 + buf.readInt32BE(off + 1)) out.push(String.fromCharCode(buf[off]));
  return out;
}

describe('MessageFramer', () => {
  it('returns whole messages however the stream is cut', () => {
    const stream = Buffer.concat([frame('Q', cstr('SELECT 1')), frame('S'), frame('d', Buffer.alloc(70_000, 1)), frame('c')]);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: stream.length - 1 }), { maxLength: 20 }), (cuts) => {
        const points = [...new Set(cuts)].sort((a, b) => a - b);
        const framer = new MessageFramer(1 << 20);
        const seen: string[] = [];
        let last = 0;
        for (const p of [...points, stream.length]) {
          seen.push(...messages(framer.push(stream.subarray(last, p))));
          last = p;
        }
        expect(seen).toEqual(['Q', 'S', 'd', 'c']);
        expect(framer.bufferedBytes).toBe(0);
      }),
    );
  });

  it('clips an oversized error or notice however the stream is cut: the cut field is replaced whole, the rest skipped (attack round 8 G4)', () => {
    const big = frame('E', Buffer.concat([cstr('SERROR'), cstr('C22P02'), cstr(`Minvalid input syntax for type integer: "${'x'.repeat(5000)}"`), cstr('Fnumutils.c'), Buffer.of(0)]));
    const small = frame('N', Buffer.concat([cstr('SNOTICE'), cstr('Mhello'), Buffer.of(0)]));
    const stream = Buffer.concat([frame('Z', Buffer.from('I')), big, small, big, frame('Z', Buffer.from('I'))]);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: stream.length - 1 }), { maxLength: 30 }), (cuts) => {
        const points = [...new Set(cuts)].sort((a, b) => a - b);
        const framer = new MessageFramer({ max: 1 << 20, clip: { types: 'EN', bytes: 1024 } });
        const out: Buffer[] = [];
        let last = 0;
        for (const p of [...points, stream.length]) {
          out.push(framer.push(stream.subarray(last, p)));
          last = p;
          // Never more than the clip (and one chunk) held.
          expect(framer.bufferedBytes).toBeLessThanOrEqual(1024 + stream.length);
        }
        const all = Buffer.concat(out);
        expect(messages(all)).toEqual(['Z', 'E', 'N', 'E', 'Z']);
        const text = all.toString('latin1');
        expect(text).not.toContain('xxxx');
        expect(text).toContain(`M${CUT_FIELD}\0`);
        expect(text).toContain('C22P02\0');
        expect(text).toContain('Mhello\0');
        expect(framer.bufferedBytes).toBe(0);
      }),
    );
  });

  it('hands back the chunk itself when it holds only whole messages (no copy)', () => {
    const chunk = Buffer.concat([frame('S'), frame('H')]);
    expect(new MessageFramer(1024).push(chunk)).toBe(chunk);
  });

  it('rejects impossible lengths instead of waiting for gigabytes', () => {
    const bad = Buffer.from([0x51, 0x7f, 0xff, 0xff, 0xff]);
    expect(() => new MessageFramer(1 << 20).push(bad)).toThrow(ProtocolViolation);
    expect(() => new MessageFramer(1 << 20).push(Buffer.from([0x51, 0, 0, 0, 2]))).toThrow(ProtocolViolation);
    // An oversize server message's length is data (a row's length can spell a value): not printed.
    const over = Buffer.from([0x44, 0x10, 0x00, 0x00, 0x6b]);
    expect(() => new MessageFramer(1 << 20).push(over)).toThrow(/over the gateway's limit of 1048576 bytes$/);
    expect(() => new MessageFramer(1 << 20).push(over)).not.toThrow(/268435563/);
  });

  it('limits a client\'s messages by type, refusing at the header instead of buffering the message', () => {
    const header = (type: string, len: number): Buffer => Buffer.concat([Buffer.from(type), Buffer.from([len >>> 24, (len >>> 16) & 255, (len >>> 8) & 255, len & 255])]);
    const client = (): MessageFramer => new MessageFramer(clientMessageLimits());
    // The 5-byte header of a 200 MiB Query is enough: nothing of its body is waited for.
    expect(() => client().push(header('Q', 200 * 1024 * 1024))).toThrow(/Query message of 209715200 bytes is over the gateway's limit of 1048576 bytes/);
    expect(() => client().push(header('P', CLIENT_LIMITS.statement + 1))).toThrow(/Parse message/);
    expect(() => client().push(header('d', CLIENT_LIMITS.copyData + 1))).toThrow(/CopyData message/);
    expect(() => client().push(header('B', CLIENT_LIMITS.bind + 1))).toThrow(/Bind message/);
    expect(() => client().push(header('E', CLIENT_LIMITS.other + 1))).toThrow(/'E' message/);
    // Within the limits, a message is framed (and held until complete) as before.
    const f = client();
    expect(f.push(header('Q', CLIENT_LIMITS.statement)).length).toBe(0);
    expect(f.bufferedBytes).toBe(5);
    const g = client();
    expect(messages(g.push(Buffer.concat([frame('B', Buffer.alloc(2 * 1024 * 1024)), frame('d', Buffer.alloc(1024 * 1024)), frame('S')])))).toEqual(['B', 'd', 'S']);
    expect(() => client().push(header('Q', 1 << 30))).toThrow(expect.objectContaining({ sqlstate: '54000', fatal: true }) as Error);
  });
});

describe('decoders', () => {
  it('startup parameters, Parse, Bind, RowDescription and command tags', () => {
    const startup = startupMessage({ user: 'alice', database: 'orders-prod' });
    const s = decodeStartup(startup.subarray(4));
    expect(s.code).toBe(196608);
    expect(Object.fromEntries(s.params)).toEqual({ user: 'alice', database: 'orders-prod' });

    const p = decodeParse(parseMessage('s1', 'SELECT $1', [23]).subarray(5));
    expect(p).toEqual({ name: 's1', sql: 'SELECT $1', paramTypes: [23] });

    const bind = frame('B', cstr('p1'), cstr('s1'), int16(1), int16(1), int16(2), int32(3), Buffer.from('abc'), int32(-1), int16(1), int16(1));
    expect(decodeBind(bind.subarray(5))).toEqual({ portal: 'p1', statement: 's1', resultFormats: [1] });

    const rd = frame('T', int16(1), cstr('email'), int32(1234), int16(2), int32(25), int16(-1), int32(-1), int16(0));
    expect(decodeRowDescription(rd.subarray(5))).toEqual([{ name: 'email', tableOid: 1234, column: 2, typeOid: 25, format: 0 }]);

    expect(rowsFromTag(cstr('SELECT 42'))).toBe(42);
    expect(rowsFromTag(cstr('INSERT 0 7'))).toBe(7);
    expect(rowsFromTag(cstr('CREATE TABLE'))).toBe(0);
  });

  it('throws ProtocolViolation on truncated bodies, never reads past the end', () => {
    expect(() => decodeParse(Buffer.from('s1\0SELECT'))).toThrow(ProtocolViolation);
    expect(() => decodeBind(Buffer.from('p\0s\0'))).toThrow(ProtocolViolation);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const decoders = [decodeParse, decodeBind, decodeRowDescription, decodeTarget, decodeExecute, decodeStartup, decodeErrorFields, decodeCopyResponse, decodeSaslInitial];
        for (const decode of decoders) {
          try {
            decode(Buffer.from(bytes));
          } catch (err) {
            expect(err).toBeInstanceOf(ProtocolViolation);
          }
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('SCRAM-SHA-256', () => {
  it('client and server halves agree, and the proof picks the right verifier', () => {
    const salt = Buffer.from('0123456789abcdef');
    const good = deriveKeys('tl_token-two', salt, 4096);
    const other = deriveKeys('tl_token-one', salt, 4096);
    const server = new ScramServerExchange(salt, 4096, [
      { id: 'one', storedKey: other.storedKey, serverKey: other.serverKey },
      { id: 'two', storedKey: good.storedKey, serverKey: good.serverKey },
    ]);
    const client = new ScramClientExchange('tl_token-two');
    const serverFirst = server.first(client.first());
    const result = server.final(client.final(serverFirst));
    expect(result?.verifier.id).toBe('two');
    expect(result?.clientKey.equals(good.clientKey)).toBe(true);
    client.verifyServerFinal(result?.serverFinal ?? '');
  });

  it('a wrong password yields no verifier; a forged server signature is refused', () => {
    const salt = Buffer.from('saltsaltsaltsalt');
    const keys = deriveKeys('right', salt, 4096);
    const server = new ScramServerExchange(salt, 4096, [{ id: 'x', storedKey: keys.storedKey, serverKey: keys.serverKey }]);
    const client = new ScramClientExchange('wrong');
    expect(server.final(client.final(server.first(client.first())))).toBeNull();
    const c2 = new ScramClientExchange('right');
    c2.final(new ScramServerExchange(salt, 4096, []).first(c2.first()));
    expect(() => c2.verifyServerFinal(`v=${Buffer.alloc(32).toString('base64')}`)).toThrow();
  });
});

describe('listener TLS material', () => {
  it('generates a self-signed certificate once (key 0600) and loads a configured pair', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tightloop-tls-'));
    try {
      const files = await ensureSelfSigned(dir);
      expect(statSync(files.keyFile).mode & 0o777).toBe(0o600);
      expect(await ensureSelfSigned(dir)).toEqual(files);
      const warnings: string[] = [];
      expect(await loadSecureContext(join(dir, 'elsewhere'), files, (w) => warnings.push(w))).toBeDefined();
      expect(warnings).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
