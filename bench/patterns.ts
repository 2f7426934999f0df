/**
 * `npm run bench -- patterns [--chars 65536] [--reps 5]`
 *
 * The longest the event loop is held by one user-supplied pattern (log rule, silence matcher)
 * over one text: the worst known ReDoS patterns, and the largest patterns the matcher accepts
 * (MAX_POSITIONS states, the worst case of its per-character cost), each over texts built to
 * keep as many states alive as possible. Compile time is measured apart (once per pattern).
 * The stall reported is the median CPU time of one test() over `reps` runs (what the event loop
 * spends; on a shared machine wall time mostly measures the scheduler, so it is printed beside).
 */
import { CompiledPattern, MAX_POSITIONS } from '../src/core/pattern.js';
import { arg } from './_util.js';

const CHARS = arg('chars', 65_536);
const REPS = arg('reps', 5);
const big = MAX_POSITIONS - 2;
const cases: Array<[string, string]> = [
  ['^(a|aa)+$', `${'a'.repeat(CHARS - 1)}!`],
  ['(a+)+$', `${'a'.repeat(CHARS - 1)}!`],
  ['(.*a){20}b', 'a'.repeat(CHARS)],
  ['^(\\w+\\s?)*$', `${'word '.repeat(CHARS / 5)}!`],
  ['(x+x+)+y', 'x'.repeat(CHARS)],
  [`(?:.*a.{${Math.floor(big / 8) - 2}}){8}$`, `${'ab'.repeat(CHARS / 2)}`],
  [`[ab]*a[ab]{${big - 1}}$`, 'ab'.repeat(CHARS / 2)],
  [`(?:[ab]|.){${big / 2}}c`, 'ab'.repeat(CHARS / 2)],
  [`(?i)(?:\\w*.\\w?){${Math.floor(big / 3)}}!`, 'aB1'.repeat(CHARS / 3)],
  [`(?:ü|.)*é{${big - 3}}x`, 'éüé'.repeat(CHARS / 3)],
];

// A running server has run the matcher before: warm it up on other patterns and short texts,
// as the first seconds after start would (the cold first call runs in the interpreter).
for (let r = 0; r < 200; r++) for (const p of ['^(a|b)+$', '(?:.*a.{10}){8}$', 'x{100}']) new CompiledPattern(p).test('ab'.repeat(500));

let worst = 0;
let worstCase = '';
let worstCompile = 0;
let worstWall = 0;
for (const [p, text] of cases) {
  const t0 = performance.now();
  const c = new CompiledPattern(p);
  const compileMs = performance.now() - t0;
  worstCompile = Math.max(worstCompile, compileMs);
  const times: number[] = [];
  const cpus: number[] = [];
  let result = false;
  for (let r = 0; r < REPS; r++) {
    const cpu = process.cpuUsage();
    const t = performance.now();
    result = c.test(text);
    times.push(performance.now() - t);
    const used = process.cpuUsage(cpu);
    cpus.push((used.user + used.system) / 1000);
  }
  times.sort((a, b) => a - b);
  cpus.sort((a, b) => a - b);
  const wallMs = times[Math.floor(times.length / 2)];
  const ms = cpus[Math.floor(cpus.length / 2)];
  if (ms > worst) { worst = ms; worstCase = p; }
  worstWall = Math.max(worstWall, wallMs);
  process.stdout.write(`${p.padEnd(40)} states=${String(c.positions).padStart(3)} chars=${text.length} match=${String(result).padEnd(5)} compile=${compileMs.toFixed(1)}ms cpu_median=${ms.toFixed(1)}ms wall_median=${wallMs.toFixed(1)}ms wall_max=${times[times.length - 1].toFixed(1)}ms\n`);
}
process.stdout.write(`worst: ${worstCase}\n`);
process.stdout.write(`RESULT patterns chars=${CHARS} worst_stall_cpu_ms=${worst.toFixed(1)} worst_stall_wall_ms=${worstWall.toFixed(1)} worst_compile_ms=${worstCompile.toFixed(1)}\n`);
