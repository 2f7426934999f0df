import { execFileSync } from 'node:child_process';
import type { Command } from 'commander';
import { apiCall, type ClientOpts, withClientOptions as withClient } from './api-client.js';
import { columns, shortTime } from './table.js';

/**
 * `tightloop deploy record|verify` over the REST API (`/api/deploys`). `record` fills what it is
 * not told from GitHub Actions / GitLab CI variables; `verify` is a CI gate: exit 0 pass, 1 fail,
 * 3 inconclusive (or no verdict before --timeout), 2 usage or connection error.
 * New `deploy` subcommands register on the same `deploy` command (see `deployCommand`).
 */

interface DeployOut {
  id: string; service: string; version: string; environment: string; status: string; previousVersion: string | null;
  commit: string | null; url: string | null; source?: string; rollbackOf?: string | null; startedAt?: string; actor?: string | null;
}
interface EvidenceOut { signal: string; outcome: string; baseline: Record<string, number>; candidate: Record<string, number>; stats: Record<string, number>; detail?: string }
interface VerificationOut { id: string; outcome: string | null; reason: string | null; baselineKind: string; baselineVersion: string | null; evidence: EvidenceOut[] }

export const EXIT_INCONCLUSIVE = 3;

/** Deploy facts from the CI environment (GitHub Actions, GitLab CI), when present. */
export function ciDefaults(env: NodeJS.ProcessEnv = process.env): { commit?: string; commitTime?: string; url?: string; environment?: string; actor?: string } {
  const out: { commit?: string; commitTime?: string; url?: string; environment?: string; actor?: string } = {};
  if (env.GITHUB_ACTIONS === 'true' || env.GITHUB_SHA !== undefined) {
    out.commit = env.GITHUB_SHA;
    if (env.GITHUB_SERVER_URL && env.GITHUB_REPOSITORY && env.GITHUB_RUN_ID) {
      out.url = `${env.GITHUB_SERVER_URL}/${env.GITHUB_REPOSITORY}/actions/runs/${env.GITHUB_RUN_ID}`;
    }
    out.actor = env.GITHUB_ACTOR;
  }
  if (env.GITLAB_CI === 'true' || env.CI_COMMIT_SHA !== undefined) {
    out.commit = env.CI_COMMIT_SHA;
    out.commitTime = env.CI_COMMIT_TIMESTAMP;
    out.url = env.CI_PIPELINE_URL ?? env.CI_JOB_URL;
    out.environment = env.CI_ENVIRONMENT_NAME;
    out.actor = env.GITLAB_USER_LOGIN;
  }
  for (const k of Object.keys(out) as Array<keyof typeof out>) if (out[k] === undefined || out[k] === '') delete out[k];
  return out;
}

/** The commit time from the local git repository, when there is one (lead time starts there). */
function gitCommitTime(commit: string): string | undefined {
  try {
    const t = execFileSync('git', ['show', '-s', '--format=%cI', commit], { encoding: 'utf8', timeout: 2000, stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return t === '' ? undefined : t;
  } catch { // no git, not a repository, or an unknown commit: lead time then starts at the deploy record
    return undefined;
  }
}

/** The `deploy` command, created once; other modules add subcommands to it (e.g. `deploy start`). */
export function deployCommand(program: Command): Command {
  return program.commands.find((c) => c.name() === 'deploy')
    ?? program.command('deploy').description('record deploys and gate on their verification');
}

const pct = (x: number | undefined): string => (x === undefined ? '?' : `${(x * 100).toFixed(2)} %`);
const ms = (x: number | undefined): string => (x === undefined ? '?' : `${x.toFixed(1)} ms`);

function summary(d: DeployOut, v: VerificationOut): string {
  const lines = [`deploy ${d.id}  ${d.service} ${d.version} (${d.environment})  ${(v.outcome ?? 'pending').toUpperCase()}${v.reason ? `: ${v.reason}` : ''}`,
    `  baseline: ${v.baselineKind}${v.baselineVersion ? ` ${v.baselineVersion}` : ''}`];
  for (const e of v.evidence) {
    if (e.signal === 'error_rate') {
      lines.push(`  error rate  ${e.outcome.padEnd(12)} baseline ${pct(e.baseline.rate)} of ${e.baseline.requests}, candidate ${pct(e.candidate.rate)} of ${e.candidate.requests}, odds ratio ${e.stats.oddsRatio?.toFixed(2)}`);
    } else if (e.signal === 'latency') {
      lines.push(`  latency     ${e.outcome.padEnd(12)} p95 baseline ${ms(e.baseline.p95Ms)}, candidate ${ms(e.candidate.p95Ms)}; P(candidate slower) ${e.stats.probCandidateSlower?.toFixed(3)}`);
    } else if (e.signal === 'new_error_groups') {
      lines.push(`  new errors  ${e.outcome.padEnd(12)} ${e.candidate.newGroups ?? 0} new group(s)`);
    }
  }
  return lines.join('\n') + '\n';
}

const sleep = (msec: number): Promise<void> => new Promise((r) => setTimeout(r, msec));

/** Adds `deploy record|verify`; `setCode` receives the exit code. */
export function registerDeployCommands(program: Command, setCode: (code: number) => void): void {
  const deploy = deployCommand(program);

  withClient(deploy.command('list')
    .description('list deploys, newest first, with their verdict status')
    .option('--service <name>', 'only this service')
    .option('--environment <env>', 'only this environment')
    .option('--limit <n>', 'at most this many', '20'))
    .action(async (opts: ClientOpts & { service?: string; environment?: string; limit: string }) => {
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
        process.stderr.write('tightloop deploy list: --limit must be an integer from 1 to 1000\n');
        setCode(2);
        return;
      }
      const qs = new URLSearchParams({ limit: String(limit) });
      if (opts.service !== undefined) qs.set('service', opts.service);
      if (opts.environment !== undefined) qs.set('environment', opts.environment);
      const r = await apiCall<{ deploys: DeployOut[] }>('deploy list', opts, 'GET', `/api/deploys?${qs.toString()}`);
      if (r.code === 0 && r.data !== undefined) {
        const list = r.data.deploys;
        process.stdout.write(opts.json === true ? JSON.stringify(list) + '\n' : list.length === 0 ? 'no deploys\n'
          : columns(['started', 'service', 'version', 'environment', 'status', 'source', 'commit', 'id'], list.map((d) => [
            shortTime(d.startedAt), d.service, `${d.previousVersion === null ? '' : `${d.previousVersion} → `}${d.version}`, d.environment, d.status,
            d.rollbackOf === null || d.rollbackOf === undefined ? d.source : `${d.source ?? 'rollback'} of ${d.rollbackOf}`, d.commit?.slice(0, 12), d.id,
          ])));
      }
      setCode(r.code);
    });

  withClient(deploy.command('record')
    .description('record a deploy (CI: commit, run URL and environment come from GitHub Actions / GitLab CI variables)')
    .requiredOption('--service <name>', 'service.name')
    .requiredOption('--version <version>', 'service.version being deployed')
    .option('--environment <env>', 'deployment.environment (default $CI_ENVIRONMENT_NAME, else the one the service reports, else production)')
    .option('--commit <sha>', 'commit deployed (default $GITHUB_SHA / $CI_COMMIT_SHA)')
    .option('--commit-time <iso>', 'when it was committed (default $CI_COMMIT_TIMESTAMP, else from git)')
    .option('--link <url>', 'link to the deploy, e.g. the CI run (default from the CI variables)')
    .option('--no-verify', 'do not start verification'))
    .action(async (opts: ClientOpts & { service: string; version: string; environment?: string; commit?: string; commitTime?: string; link?: string; verify: boolean }) => {
      const ci = ciDefaults();
      const commit = opts.commit ?? ci.commit;
      const body = {
        service: opts.service, version: opts.version, environment: opts.environment ?? ci.environment,
        commit, commitTime: opts.commitTime ?? ci.commitTime ?? (commit === undefined ? undefined : gitCommitTime(commit)),
        url: opts.link ?? ci.url, source: 'cli', verify: opts.verify, // the actor is the token's user
      };
      const r = await apiCall<DeployOut>('deploy record', opts, 'POST', '/api/deploys', body);
      if (r.code === 0 && r.data) {
        const d = r.data;
        process.stdout.write(opts.json === true ? JSON.stringify(d) + '\n'
          : `deploy ${d.id} recorded: ${d.service} ${d.version} (${d.environment})${d.previousVersion ? ` after ${d.previousVersion}` : ''}, ${d.status}\n`);
      }
      setCode(r.code);
    });

  withClient(deploy.command('verify')
    .description('print a deploy\'s verification; with --wait, wait for the verdict (exit 0 pass, 1 fail, 3 inconclusive)')
    .requiredOption('--service <name>', 'service.name')
    .requiredOption('--version <version>', 'service.version')
    .option('--environment <env>', 'deployment.environment (default: any)')
    .option('--wait', 'wait for the verdict')
    .option('--timeout <seconds>', 'give up waiting after this long (exit 3)', '900'))
    .action(async (opts: ClientOpts & { service: string; version: string; environment?: string; wait?: boolean; timeout: string }) => {
      const timeoutS = Number(opts.timeout);
      if (!Number.isFinite(timeoutS) || timeoutS <= 0) {
        process.stderr.write('tightloop deploy verify: --timeout must be a positive number of seconds\n');
        setCode(2);
        return;
      }
      const deadline = Date.now() + timeoutS * 1000;
      const qs = new URLSearchParams({ service: opts.service, version: opts.version, limit: '1' });
      if (opts.environment !== undefined) qs.set('environment', opts.environment);
      let d: DeployOut | undefined;
      for (;;) {
        const r = await apiCall<{ deploys: DeployOut[] }>('deploy verify', opts, 'GET', `/api/deploys?${qs.toString()}`);
        if (r.code !== 0) { setCode(r.code === 1 ? 2 : r.code); return; }
        d = r.data?.deploys[0];
        if (d !== undefined) break;
        // A version not recorded yet becomes an implicit deploy when its telemetry arrives.
        if (opts.wait !== true || Date.now() >= deadline) {
          process.stderr.write(`tightloop deploy verify: no deploy of ${opts.service} ${opts.version}${opts.wait === true ? ` within ${timeoutS} s` : ''}\n`);
          setCode(opts.wait === true ? EXIT_INCONCLUSIVE : 2);
          return;
        }
        await sleep(1000);
      }
      let v: VerificationOut | undefined;
      for (;;) {
        const waitS = opts.wait === true ? Math.max(0, Math.min(30, Math.floor((deadline - Date.now()) / 1000))) : 0;
        const r = await apiCall<VerificationOut>('deploy verify', opts, 'GET', `/api/deploys/${encodeURIComponent(d.id)}/verification?waitS=${waitS}`);
        if (r.code !== 0) { setCode(r.code === 1 ? EXIT_INCONCLUSIVE : r.code); return; }
        v = r.data;
        if (v === undefined || v.outcome !== null || opts.wait !== true || Date.now() >= deadline) break;
      }
      if (v === undefined) { setCode(2); return; }
      process.stdout.write(opts.json === true ? JSON.stringify({ deploy: d, verification: v }) + '\n' : summary(d, v));
      setCode(v.outcome === 'pass' ? 0 : v.outcome === 'fail' ? 1 : EXIT_INCONCLUSIVE);
    });
}
