/**
 * What the demo tells the terminal: one line per step with the wall-clock time, the time since
 * the demo started and a link into the console. Steps are also kept in order (`steps`) and
 * written as JSON lines to a file when asked, so the end-to-end test can check the story
 * without parsing terminal text.
 */
import { appendFileSync } from 'node:fs';

export type StepStatus = 'ok' | 'fail' | 'unavailable' | 'info';

export interface DemoStep {
  id: string;
  status: StepStatus;
  at: string;
  /** Milliseconds since the demo started. */
  sinceStartMs: number;
  title: string;
  link: string | null;
  data: Record<string, unknown>;
}

export interface ReporterOptions {
  consoleUrl: string;
  write?: (text: string) => void;
  /** JSON lines of every step go here too. */
  stepsFile?: string;
  color?: boolean;
}

const MARK: Record<StepStatus, string> = { ok: '✔', fail: '✘', unavailable: '⚠', info: '•' };
const COLOR: Record<StepStatus, string> = { ok: '32', fail: '31', unavailable: '33', info: '36' };

function clock(d: Date): string {
  return d.toISOString().slice(11, 23);
}

export class DemoReporter {
  readonly steps: DemoStep[] = [];
  private readonly t0 = Date.now();
  private readonly write: (text: string) => void;

  constructor(private readonly o: ReporterOptions) {
    this.write = o.write ?? ((t) => process.stdout.write(t));
  }

  /** A console link: `path` like `/incidents/01H...`; null for none. */
  link(path: string | null): string | null {
    return path === null ? null : `${this.o.consoleUrl}${path}`;
  }

  private paint(status: StepStatus, s: string): string {
    return this.o.color === true ? `\x1b[${COLOR[status]}m${s}\x1b[0m` : s;
  }

  step(id: string, title: string, opts: { status?: StepStatus; link?: string | null; data?: Record<string, unknown> } = {}): DemoStep {
    const now = new Date();
    const status = opts.status ?? 'ok';
    const step: DemoStep = { id, status, at: now.toISOString(), sinceStartMs: now.getTime() - this.t0, title, link: this.link(opts.link ?? null), data: opts.data ?? {} };
    this.steps.push(step);
    const since = `+${(step.sinceStartMs / 1000).toFixed(1)}s`.padStart(7);
    const line = `${clock(now)} ${since}  ${this.paint(status, MARK[status])} ${title}${step.link === null ? '' : `\n${' '.repeat(24)}→ ${step.link}`}\n`;
    this.write(line);
    if (this.o.stepsFile !== undefined) appendFileSync(this.o.stepsFile, JSON.stringify(step) + '\n');
    return step;
  }

  /** A pillar the demo needs is not there: say so plainly; never pretend the step happened. */
  unavailable(id: string, what: string, why: string): DemoStep {
    return this.step(id, `${what}: not available (${why})`, { status: 'unavailable' });
  }

  /** Indented detail under the last step (command output, query results). */
  detail(text: string): void {
    const body = text.replace(/\s+$/, '').split('\n').map((l) => `${' '.repeat(24)}${l}`).join('\n');
    if (body.trim() !== '') this.write(`${this.o.color === true ? `\x1b[2m${body}\x1b[0m` : body}\n`);
  }

  /** A command the demo runs, shown as the user would type it. */
  command(argv: string[]): void {
    const shown = argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
    this.write(`${' '.repeat(24)}${this.o.color === true ? '\x1b[1m$ ' + shown + '\x1b[0m' : '$ ' + shown}\n`);
  }

  banner(text: string): void {
    this.write(`\n${this.o.color === true ? `\x1b[1m${text}\x1b[0m` : text}\n`);
  }
}
