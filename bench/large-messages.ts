/**
 * `npm run bench -- large-messages [--sizes 1,5,10,50]`
 *
 * Attack round 8 G4: what one large upstream message costs the gateway's thread and heap, in
 * process: the bytes arrive in 64 KiB chunks through the upstream framer (the session's limits:
 * errors and notices clipped at SERVER_NOTICE_BYTES) and are masked as the relay does (default
 * policy: content detectors; `full` mode, so the non-ASCII path of a row goes through
 * Renderer.maskChars too). For each size: an ErrorResponse echoing the value, the same error
 * with the clip off (the old framing: held and masked whole), a DataRow of ASCII and one of
 * non-ASCII text. Prints ms per MB (wall and the process's CPU) and the heap + array-buffer
 * growth as a multiple of the message size. Figures are noisy on a shared machine: read them
 * beside the load average printed first.
 */
import { loadavg } from 'node:os';
import { DEFAULT_MASKING, Masker, type MaskCounts } from '../src/gateway/masking/index.js';
import { SERVER_NOTICE_BYTES } from '../src/gateway/session.js';
import { MessageFramer, type MessageLimits } from '../src/gateway/wire/framer.js';

const sizesArg = process.argv.indexOf('--sizes');
const SIZES = (sizesArg === -1 ? '1,5,10,50' : (process.argv[sizesArg + 1] ?? '')).split(',').map(Number);
const MB = 1_000_000;
const CHUNK = 64 * 1024;

function frameOf(type: string, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + body.length);
  out.write(type, 0, 'latin1');
  out.writeInt32BE(4 + body.length, 1);
  body.copy(out, 5);
  return out;
}

function errorResponse(value: string): Buffer {
  return frameOf('E', Buffer.from(`SERROR\0VERROR\0C22P02\0Minvalid input syntax for type integer: "${value}"\0Fnumutils.c\0L617\0Rpg_strtoint32_safe\0\0`, 'utf8'));
}

function dataRow(value: string): Buffer {
  const v = Buffer.from(value, 'utf8');
  const body = Buffer.allocUnsafe(2 + 4 + v.length);
  body.writeInt16BE(1, 0);
  body.writeInt32BE(v.length, 2);
  v.copy(body, 6);
  return frameOf('D', body);
}

const masker = new Masker({ ...DEFAULT_MASKING, mode: 'full' }, Buffer.alloc(32, 1));
const plan = masker.plan([{ name: 'v', tableOid: 0, column: 0, typeOid: 25, format: 0 }]);

/** Feeds `msg` in chunks through a framer and masks what comes out; returns ms (wall, CPU) and peak growth. */
function run(msg: Buffer, limits: MessageLimits, sql: string): { wall: number; cpu: number; grow: number } {
  globalThis.gc?.();
  const m0 = process.memoryUsage();
  const base = m0.heapUsed + m0.arrayBuffers;
  let peak = base;
  const sample = (): void => {
    const m = process.memoryUsage();
    peak = Math.max(peak, m.heapUsed + m.arrayBuffers);
  };
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const framer = new MessageFramer(limits);
  const counts: MaskCounts = {};
  for (let off = 0; off < msg.length; off += CHUNK) {
    const buf = framer.push(msg.subarray(off, off + CHUNK));
    for (let at = 0; at < buf.length; at += 1 + buf.readInt32BE(at + 1)) {
      const end = at + 1 + buf.readInt32BE(at + 1);
      sample();
      if (buf[at] === 0x45) masker.maskErrorMessage(buf, at, end, counts, sql);
      else masker.maskDataRow(buf, at, end, plan, counts);
      sample();
    }
  }
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { wall, cpu: (c.user + c.system) / 1000, grow: (peak - base) / msg.length };
}

const row = 256 * 1024 * 1024;
const clipped: MessageLimits = { max: 256 * 1024 * 1024, byType: { D: row }, clip: { types: 'EN', bytes: SERVER_NOTICE_BYTES } };
const unclipped: MessageLimits = { max: 256 * 1024 * 1024, byType: { D: row } };

console.log(`load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
console.log('case                     MB   wall ms/MB   cpu ms/MB   heap growth / size');
for (const mb of SIZES) {
  const n = Math.round(mb * MB);
  const sql = `select repeat('x', ${n})::int`;
  const cases: [string, Buffer, MessageLimits][] = [
    ['error (clipped)', errorResponse('x'.repeat(n)), clipped],
    ['error (unclipped)', errorResponse('x'.repeat(n)), unclipped],
    ['row ascii', dataRow('x'.repeat(n)), clipped],
    ['row non-ascii', dataRow('é'.repeat(Math.round(n / 2))), clipped],
  ];
  for (const [name, msg, limits] of cases) {
    const r = run(msg, limits, sql);
    const size = msg.length / MB;
    console.log(`${name.padEnd(22)} ${mb.toString().padStart(4)}   ${(r.wall / size).toFixed(1).padStart(10)}   ${(r.cpu / size).toFixed(1).padStart(9)}   ${r.grow.toFixed(2).padStart(8)}x`);
  }
}
