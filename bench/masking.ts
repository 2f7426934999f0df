/**
 * `npm run bench -- masking [--values 10000] [--seconds 3]`
 *
 * The masking detectors (issue 15, class 6), in process, on one core:
 * 1. Accuracy on the generated corpus (bench/_pii-corpus.ts): per type, recall over `values`
 *    PII samples in many formats, and the false-positive rate over `values` non-PII look-alikes
 *    (order ids, timestamps, versions, UUIDs, amounts; plus IP addresses for the non-IP types).
 * 2. Throughput: DataRow messages through Masker.maskDataRow with the default policy (content
 *    detectors only), for two row shapes of four text columns — all PII (every value is masked:
 *    the pgbench PII script's shape) and mixed (id, name, status, and an amount or, in every
 *    fourth row, an e-mail). values/s = rows × columns / CPU time of the benchmark's one thread
 *    ("on one core": on a shared machine wall time measures the scheduler too; the wall-time rate
 *    is printed beside it). The RESULT key `mask_values_per_s` is the PII-heavy shape, the harder
 *    one.
 */
import { DEFAULT_MASKING, DetectorSet, Masker, type DetectorMatch, type MaskCounts } from '../src/gateway/masking/index.js';
import { cpus, loadavg } from 'node:os';
import { arg } from './_util.js';
import { ipLookAlikes, lookAlikes, piiSamples, PII_TYPES, rng, type PiiType } from './_pii-corpus.js';

const VALUES = arg('values', 10_000);
const SECONDS = arg('seconds', 3);

function covered(matches: readonly DetectorMatch[], type: PiiType, start: number, end: number): boolean {
  return matches.some((m) => m.id === type && m.start <= start && m.end >= end);
}

function accuracy(): { worstRecall: number; worstFp: number } {
  const detectors = new DetectorSet();
  const others = lookAlikes(VALUES);
  const ips = ipLookAlikes(VALUES);
  let worstRecall = 1;
  let worstFp = 0;
  for (const type of PII_TYPES) {
    const samples = piiSamples(type, VALUES);
    const hit = samples.filter((s) => covered(detectors.find(s.text), type, s.start, s.end)).length;
    const negatives = type === 'ipv4' || type === 'ipv6' ? others : [...others, ...ips];
    const fp = negatives.filter((t) => detectors.find(t).some((m) => m.id === type)).length;
    const recall = hit / samples.length;
    const fpRate = fp / negatives.length;
    worstRecall = Math.min(worstRecall, recall);
    worstFp = Math.max(worstFp, fpRate);
    console.log(`${type.padEnd(12)} recall ${(recall * 100).toFixed(2)} % (${samples.length - hit} of ${samples.length} missed), false positives ${(fpRate * 100).toFixed(3)} % (${fp} of ${negatives.length})`);
  }
  return { worstRecall, worstFp };
}

function dataRow(values: readonly string[]): Buffer {
  const parts = values.map((v) => Buffer.from(v, 'utf8'));
  const len = 4 + 2 + parts.reduce((n, p) => n + 4 + p.length, 0);
  const out = Buffer.alloc(1 + len);
  out[0] = 0x44;
  out.writeInt32BE(len, 1);
  out.writeInt16BE(values.length, 5);
  let off = 7;
  for (const p of parts) {
    out.writeInt32BE(p.length, off);
    p.copy(out, off + 4);
    off += 4 + p.length;
  }
  return out;
}

/** values/s over the masking thread's CPU time (one core, whatever else the machine runs), and over wall time. */
function throughput(rows: Buffer[], columns: number): { cpu: number; wall: number } {
  const masker = new Masker(DEFAULT_MASKING, Buffer.alloc(32, 7));
  const fields = Array.from({ length: columns }, (_, i) => ({ name: `c${i}`, tableOid: 0, column: 0, typeOid: 25, format: 0 }));
  const plan = masker.plan(fields);
  const counts: MaskCounts = {};
  // Warm-up (JIT, regex tier-up), not measured.
  for (const r of rows) masker.maskDataRow(r, 0, r.length, plan, counts);
  let done = 0;
  let changed = 0;
  const t0 = performance.now();
  const cpu0 = threadCpuUs();
  const until = t0 + SECONDS * 1000;
  while (performance.now() < until) {
    for (const r of rows) if (masker.maskDataRow(r, 0, r.length, plan, counts) !== undefined) changed++;
    done += rows.length;
  }
  const cpuS = (threadCpuUs() - cpu0) / 1e6;
  const s = (performance.now() - t0) / 1000;
  if (changed === 0) throw new Error('nothing was masked: the benchmark measures nothing');
  return { cpu: (done * columns) / cpuS, wall: (done * columns) / s };
}

/** CPU time of this process (user + system, µs): the benchmark runs on one thread. */
function threadCpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

const { worstRecall, worstFp } = accuracy();

const r = rng(99);
const pii = (t: PiiType): string[] => piiSamples(t, 2_000, 99).map((s) => s.text);
const [emails, phones, cards, ssns] = [pii('email'), pii('phone'), pii('credit-card'), pii('us-ssn')];
const piiRows = Array.from({ length: 2_000 }, (_, i) => dataRow([emails[i], phones[i], cards[i], ssns[i]]));
const names = ['Jane Doe', 'John Smith', 'Maria Garcia', 'Li Wang', 'Ahmed Khan'];
const mixedRows = Array.from({ length: 2_000 }, (_, i) => dataRow([String(100_000 + i), names[i % names.length], r() < 0.5 ? 'shipped' : 'pending', i % 4 === 0 ? emails[i] : (r() * 1000).toFixed(2)]));
const pii4 = throughput(piiRows, 4);
const mixed = throughput(mixedRows, 4);
console.log(`throughput, 4 PII text columns (every value masked): ${(pii4.cpu / 1e6).toFixed(2)} M values per CPU-second (${(pii4.wall / 1e6).toFixed(2)} M/s wall)`);
console.log(`throughput, mixed rows (a PII value in every fourth row): ${(mixed.cpu / 1e6).toFixed(2)} M values per CPU-second (${(mixed.wall / 1e6).toFixed(2)} M/s wall)`);
console.log(`load average ${loadavg().map((x) => x.toFixed(2)).join(' ')} on ${cpus().length} cores: wall-time rates shrink with the load, CPU-time rates do not`);
console.log(`RESULT masking mask_values_per_s=${pii4.cpu.toFixed(0)} mask_mixed_values_per_s=${mixed.cpu.toFixed(0)} mask_values_per_wall_s=${pii4.wall.toFixed(0)} min_recall=${worstRecall.toFixed(4)} max_fp_rate=${worstFp.toFixed(4)}`);
