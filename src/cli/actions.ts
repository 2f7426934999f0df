import type { Command } from 'commander';
import { apiCall, type ClientOpts, withClientOptions as withClient } from './api-client.js';
import { textOf } from '../core/text.js';

/**
 * `tightloop action list|run|show|approve|deny` and `tightloop deploy start` over the REST API.
 * Exit codes: 0 ok (run succeeded, rollout promoted), 1 failed / denied / rolled back or refused
 * by the server, 2 usage or connection error.
 */

interface RunOut {
  id: string; action: string; status: string; exitCode: number | null; params: Record<string, unknown>; actor: string | null;
  durationMs: number | null; output: string; error: string | null;
}
interface ActionOut { name: string; kind: string; approval: string; description: string | null; params: Record<string, { type: string; required: boolean; default?: unknown; values?: string[] }>; source: string }
interface RolloutOut {
  id: string; deployId: string; service: string; version: string; previousVersion: string | null; rollbackTo?: string | null; status: string; reason: string | null;
  steps: { weight: number; verdicts: { outcome: string; reason: string | null }[] }[]; rollbackDeployId: string | null; rollbackVerdict: string | null;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const collect = (v: string, prev: string[]): string[] => [...prev, v];

function paramsOf(pairs: string[]): Record<string, string> | string {
  const out: Record<string, string> = {};
  for (const p of pairs) {
    const eq = p.indexOf('=');
    if (eq <= 0) return `--param ${p}: expected name=value`;
    out[p.slice(0, eq)] = p.slice(eq + 1);
  }
  return out;
}

const runLine = (r: RunOut): string =>
  `run ${r.id}  ${r.action}  ${r.status}${r.exitCode === null ? '' : `  exit ${r.exitCode}`}${r.durationMs === null ? '' : `  ${r.durationMs} ms`}${r.error === null ? '' : `  (${r.error})`}`;

function paramText(a: ActionOut): string {
  return Object.entries(a.params).map(([k, p]) => {
    const t = p.type === 'enum' ? (p.values ?? []).join('|') : p.type;
    return p.required ? `${k}:${t}` : `[${k}:${t}${p.default === undefined ? '' : `=${textOf(p.default)}`}]`;
  }).join(' ');
}

/** Adds `action ...` and `deploy start`; `setCode` receives the exit code. */
export function registerActionCommands(program: Command, setCode: (code: number) => void): void {
  const action = program.command('action').description('run and inspect actions (runbooks defined in YAML)');

  withClient(action.command('list').description('list actions and files that failed to load'))
    .action(async (opts: ClientOpts) => {
      const r = await apiCall<{ actions: ActionOut[]; errors: { file: string; message: string }[] }>('action list', opts, 'GET', '/api/actions');
      if (r.code === 0 && r.data !== undefined) {
        if (opts.json === true) process.stdout.write(JSON.stringify(r.data) + '\n');
        else {
          for (const a of r.data.actions) {
            process.stdout.write(`${a.name}  ${a.kind}${a.approval === 'required' ? '  (approval required)' : ''}  ${paramText(a)}\n${a.description === null ? '' : `    ${a.description}\n`}`);
          }
          for (const e of r.data.errors) process.stderr.write(`not loaded: ${e.message}\n`);
        }
      }
      setCode(r.code);
    });

  withClient(action.command('run <name>')
    .description('run an action, e.g. `action run restart --param SERVICE=shop --wait`')
    .option('--param <k=v>', 'a parameter (repeatable)', collect, [] as string[])
    .option('--deploy <id>', 'the deploy this run belongs to')
    .option('--wait', 'wait for the run to finish; exit 1 if it failed'))
    .action(async (name: string, opts: ClientOpts & { param: string[]; deploy?: string; wait?: boolean }) => {
      const params = paramsOf(opts.param);
      if (typeof params === 'string') {
        process.stderr.write(`tightloop action run: ${params}\n`);
        setCode(2);
        return;
      }
      const r = await apiCall<RunOut>('action run', opts, 'POST', `/api/actions/${encodeURIComponent(name)}/runs`, { params, deployId: opts.deploy });
      if (r.code !== 0 || r.data === undefined) {
        setCode(r.code);
        return;
      }
      let run = r.data;
      if (opts.wait === true) {
        while (run.status === 'running' || run.status === 'pending_approval') {
          await sleep(run.status === 'pending_approval' ? 1_000 : 200);
          const g = await apiCall<RunOut>('action run', opts, 'GET', `/api/actions/runs/${encodeURIComponent(run.id)}`);
          if (g.code !== 0 || g.data === undefined) {
            setCode(g.code);
            return;
          }
          run = g.data;
        }
      }
      if (opts.json === true) process.stdout.write(JSON.stringify(run) + '\n');
      else {
        process.stdout.write(runLine(run) + '\n');
        if (run.status === 'pending_approval') process.stdout.write(`  waiting for approval: tightloop action approve ${run.id}\n`);
        if (opts.wait === true && run.output !== '') process.stdout.write(run.output.endsWith('\n') ? run.output : `${run.output}\n`);
      }
      setCode(run.status === 'failed' || run.status === 'denied' ? 1 : 0);
    });

  withClient(action.command('show <runId>').description('show a run with its output'))
    .action(async (id: string, opts: ClientOpts) => {
      const r = await apiCall<RunOut>('action show', opts, 'GET', `/api/actions/runs/${encodeURIComponent(id)}`);
      if (r.code === 0 && r.data !== undefined) {
        process.stdout.write(opts.json === true ? JSON.stringify(r.data) + '\n' : `${runLine(r.data)}\n  by ${r.data.actor ?? '-'}  params ${JSON.stringify(r.data.params)}\n${r.data.output}\n`);
      }
      setCode(r.code);
    });

  for (const verb of ['approve', 'deny'] as const) {
    withClient(action.command(`${verb} <runId>`).description(`${verb} a run waiting for approval`).option('--note <text>', 'why'))
      .action(async (id: string, opts: ClientOpts & { note?: string }) => {
        const r = await apiCall<RunOut>(`action ${verb}`, opts, 'POST', `/api/actions/runs/${encodeURIComponent(id)}/${verb}`, { note: opts.note });
        if (r.code === 0 && r.data !== undefined) process.stdout.write(opts.json === true ? JSON.stringify(r.data) + '\n' : `${runLine(r.data)}\n`);
        setCode(r.code);
      });
  }

  // `deploy` may already exist (deploy record|verify); add `start` to it.
  const deploy = program.commands.find((c) => c.name() === 'deploy') ?? program.command('deploy').description('deploy records, verification and progressive deploys');
  withClient(deploy.command('start')
    .description('progressive deploy: canary steps, verification at each, automatic promote or rollback')
    .requiredOption('--service <name>', 'service (configured in services.yaml)')
    .requiredOption('--version <version>', 'version to roll out')
    .option('--environment <env>', 'deployment environment (default: the service config\'s)')
    .option('--commit <sha>', 'commit of this version')
    .option('--steps <list>', 'canary weights, e.g. 10,50,100')
    .option('--no-wait', 'return once started'))
    .action(async (opts: ClientOpts & { service: string; version: string; environment?: string; commit?: string; steps?: string; wait: boolean }) => {
      let steps: number[] | undefined;
      if (opts.steps !== undefined) {
        steps = opts.steps.split(',').map((s) => Number(s.trim()));
        if (steps.some((n) => !Number.isInteger(n))) {
          process.stderr.write('tightloop deploy start: --steps: comma-separated integers ending at 100\n');
          setCode(2);
          return;
        }
      }
      const r = await apiCall<RolloutOut>('deploy start', opts, 'POST', '/api/deploys/rollouts', {
        service: opts.service, version: opts.version, environment: opts.environment, commit: opts.commit ?? process.env.GITHUB_SHA ?? process.env.CI_COMMIT_SHA, steps,
      });
      if (r.code !== 0 || r.data === undefined) {
        setCode(r.code);
        return;
      }
      let ro = r.data;
      if (opts.json !== true) process.stdout.write(`rollout ${ro.id}: ${ro.service} ${ro.previousVersion ?? '(none)'} → ${ro.version}, steps ${ro.steps.map((s) => `${s.weight}%`).join(' → ')}\n`);
      let seen = 0;
      while (opts.wait && ro.status === 'running') {
        await sleep(1_000);
        const g = await apiCall<RolloutOut>('deploy start', opts, 'GET', `/api/deploys/rollouts/${encodeURIComponent(ro.id)}`);
        if (g.code !== 0 || g.data === undefined) {
          setCode(g.code);
          return;
        }
        ro = g.data;
        if (opts.json !== true) {
          const verdicts = ro.steps.flatMap((s) => s.verdicts.map((v) => `  ${s.weight}%: ${v.outcome}${v.reason === null ? '' : ` (${v.reason})`}`));
          for (const line of verdicts.slice(seen)) process.stdout.write(line + '\n');
          seen = verdicts.length;
        }
      }
      if (opts.json === true) process.stdout.write(JSON.stringify(ro) + '\n');
      else {
        process.stdout.write(`${ro.status}${ro.reason === null ? '' : `: ${ro.reason}`}\n`);
        if (ro.rollbackDeployId !== null) process.stdout.write(`rollback deploy ${ro.rollbackDeployId} to ${ro.rollbackTo ?? ro.previousVersion ?? '?'}: verification ${ro.rollbackVerdict ?? 'pending'}\n`);
      }
      // 3: held for want of evidence (like an inconclusive `deploy verify`); 1: rolled back or failed.
      setCode(ro.status === 'promoted' || ro.status === 'running' ? 0 : ro.status === 'held' ? 3 : 1);
    });
}
