import type { Command } from 'commander';
import { apiCall, serverUrl, type ClientOpts, withClientOptions as withClient } from './api-client.js';
import { durationText, pctText, perDayText } from './loop-figures.js';

/**
 * `tightloop incident list|show|ack|assign|resolve` and `tightloop report` over the REST API
 * (`/api/incidents`, `/api/loop-metrics`). Exit codes: 0 ok, 1 refused by the server (e.g. not
 * found, already resolved), 2 usage or connection error.
 */

interface IncidentOut {
  id: string;
  title: string;
  service: string;
  environment: string;
  status: string;
  firstBadAt: string | null;
  detectedAt: string;
  acknowledgedBy: string | null;
  assignee: string | null;
  resolvedAt: string | null;
  suspectDeployId: string | null;
}

interface StoryOut {
  incident: IncidentOut;
  suspectDeploy: { id: string; version: string; commit: string | null } | null;
  times: { mttdMs: number | null; mttaMs: number | null; mttrMs: number | null };
  links: { traceIds?: string[]; errorGroups?: string[]; logs?: string; traces?: string };
  timeline: Array<{ at: string; kind: string; title: string; actor: string | null }>;
}

interface StatOut { count: number; medianMs: number | null; p90Ms: number | null }
interface ReportOut {
  from: string;
  to: string;
  service: string | null;
  deploysAvailable: boolean;
  incidents: { count: number; mttd: StatOut; mtta: StatOut; mttr: StatOut };
  dora: {
    deployments: number;
    deploymentFrequency: { perDay: number; perWeek: number };
    leadTime: StatOut;
    failedDeployments: number;
    changeFailRate: number | null;
    failedDeploymentRecovery: StatOut & { unrecovered: number };
    reworkDeployments: number;
    reworkRate: number | null;
  };
  weeks: Array<{ weekStart: string; deployments: number; changeFailRate: number | null; leadTimeMedianMs: number | null; incidents: number; mttdMedianMs: number | null; mttrMedianMs: number | null }>;
}

/** Durations for people (the console's Loop view writes them the same way). */
export const human = durationText;
const pct = pctText;
const statLine = (name: string, s: StatOut): string => `  ${name.padEnd(34)} median ${human(s.medianMs).padEnd(10)} p90 ${human(s.p90Ms).padEnd(10)} (n=${s.count})`;

const line = (i: IncidentOut): string =>
  `${i.id}  ${i.status.padEnd(12)}  ${i.service}${i.environment === '' ? '' : `/${i.environment}`}  detected ${i.detectedAt}${i.assignee === null ? '' : `  → ${i.assignee}`}  ${i.title}`;

/** The console's page for an API search link: `<base>/api/logs?…` → `<base>/logs?…` (same filters and range). */
export function consoleLink(apiLink: string): string {
  return apiLink.replace(/\/api\/(logs|traces)\?/, '/$1?');
}

/** The incident in the console, opened on its time range: 2 min before the first bad signal to 3 min after the end. */
export function incidentConsoleUrl(base: string, i: IncidentOut, nowMs = Date.now()): string {
  const start = Date.parse(i.firstBadAt ?? i.detectedAt);
  const end = i.resolvedAt === null ? nowMs : Date.parse(i.resolvedAt);
  return `${base.replace(/\/+$/, '')}/incidents/${encodeURIComponent(i.id)}?from=${start - 120_000}&to=${end + 180_000}`;
}

export function renderStory(s: StoryOut, consoleBase?: string): string {
  const i = s.incident;
  const out = [
    `${i.id}  ${i.title}`,
    ...(consoleBase === undefined ? [] : [`  console ${incidentConsoleUrl(consoleBase, i)}`]),
    `  status ${i.status}${i.assignee === null ? '' : `, assigned to ${i.assignee}`}${i.acknowledgedBy === null ? '' : `, acknowledged by ${i.acknowledgedBy}`}`,
    `  MTTD ${human(s.times.mttdMs)}   MTTA ${human(s.times.mttaMs)}   MTTR ${human(s.times.mttrMs)}`,
  ];
  if (s.suspectDeploy !== null) out.push(`  suspect deploy ${s.suspectDeploy.id} (${s.suspectDeploy.version}${s.suspectDeploy.commit === null ? '' : `, commit ${s.suspectDeploy.commit}`})`);
  if ((s.links.traceIds ?? []).length > 0) out.push(`  example traces ${(s.links.traceIds ?? []).join(' ')}`);
  if ((s.links.errorGroups ?? []).length > 0) out.push(`  error groups ${(s.links.errorGroups ?? []).join(' ')}`);
  if (s.links.traces !== undefined) out.push(`  traces ${consoleLink(s.links.traces)}`);
  if (s.links.logs !== undefined) out.push(`  logs ${consoleLink(s.links.logs)}`);
  out.push('', '  timeline:');
  for (const e of s.timeline) out.push(`    ${e.at}  ${e.kind.padEnd(17)} ${e.title}${e.actor === null ? '' : `  [${e.actor}]`}`);
  return out.join('\n') + '\n';
}

export function renderReport(r: ReportOut): string {
  const d = r.dora;
  const out = [
    `Loop report ${r.from} → ${r.to}${r.service === null ? '' : `  service ${r.service}`}`,
    '',
    `Incidents: ${r.incidents.count}`,
    statLine('MTTD (first bad signal → detected)', r.incidents.mttd),
    statLine('MTTA (detected → acknowledged)', r.incidents.mtta),
    statLine('MTTR (first bad signal → recovered)', r.incidents.mttr),
    '',
    `Deploys (DORA)${r.deploysAvailable ? '' : '  — no deploy records available'}`,
    `  deployment frequency               ${perDayText(d.deploymentFrequency.perDay)}  ${d.deploymentFrequency.perWeek.toFixed(1)}/week  (${d.deployments} deploys)`,
    statLine('lead time for changes', d.leadTime),
    `  change fail rate                   ${pct(d.changeFailRate)}  (${d.failedDeployments} of ${d.deployments})`,
    `${statLine('failed-deployment recovery time', d.failedDeploymentRecovery)}${d.failedDeploymentRecovery.unrecovered > 0 ? `  ${d.failedDeploymentRecovery.unrecovered} not recovered` : ''}`,
    `  deployment rework rate             ${pct(d.reworkRate)}  (${d.reworkDeployments} of ${d.deployments})`,
    '',
    'Per week      deploys  fail rate  lead time   incidents  MTTD        MTTR',
  ];
  for (const w of r.weeks) {
    out.push(`  ${w.weekStart.slice(0, 10)}  ${String(w.deployments).padStart(7)}  ${pct(w.changeFailRate).padStart(9)}  ${human(w.leadTimeMedianMs).padEnd(10)}  ${String(w.incidents).padStart(9)}  ${human(w.mttdMedianMs).padEnd(10)}  ${human(w.mttrMedianMs)}`);
  }
  return out.join('\n') + '\n';
}

/** Adds `incident …` and `report`; `setCode` receives the exit code. */
export function registerIncidentCommands(program: Command, setCode: (code: number) => void): void {
  const incident = program.command('incident').description('incidents: list, show the story, acknowledge, assign, resolve');
  const print = (opts: ClientOpts, data: unknown, text: () => string): void => {
    process.stdout.write(opts.json === true ? JSON.stringify(data) + '\n' : text());
  };

  withClient(incident.command('list')
    .description('list incidents, most recently detected first')
    .option('--status <s>', 'open, acknowledged, resolved or all', 'all')
    .option('--service <name>', 'only this service'))
    .action(async (opts: ClientOpts & { status: string; service?: string }) => {
      const q = new URLSearchParams({ status: opts.status, ...(opts.service === undefined ? {} : { service: opts.service }) });
      const r = await apiCall<{ incidents: IncidentOut[] }>('incident list', opts, 'GET', `/api/incidents?${q.toString()}`);
      if (r.code === 0 && r.data !== undefined) {
        const list = r.data.incidents;
        print(opts, list, () => (list.length === 0 ? 'no incidents\n' : list.map(line).join('\n') + '\n'));
      }
      setCode(r.code);
    });

  withClient(incident.command('show <id>').description('the incident and its timeline'))
    .action(async (id: string, opts: ClientOpts) => {
      const r = await apiCall<StoryOut>('incident show', opts, 'GET', `/api/incidents/${encodeURIComponent(id)}`);
      if (r.code === 0 && r.data !== undefined) { const s = r.data; print(opts, s, () => renderStory(s, serverUrl(opts))); }
      setCode(r.code);
    });

  const change = (name: string, what: string, body: (opts: Record<string, unknown>) => unknown, verb: string) =>
    async (id: string, opts: ClientOpts & Record<string, unknown>) => {
      const r = await apiCall<IncidentOut>(`incident ${name}`, opts, 'POST', `/api/incidents/${encodeURIComponent(id)}/${what}`, body(opts));
      if (r.code === 0 && r.data !== undefined) { const i = r.data; print(opts, i, () => `incident ${i.id} ${verb}\n  ${line(i)}\n`); }
      setCode(r.code);
    };
  withClient(incident.command('ack <id>').description('acknowledge an incident'))
    .action(change('ack', 'ack', () => ({}), 'acknowledged'));
  withClient(incident.command('assign <id> <assignee>').description('assign an incident to someone'))
    .action(async (id: string, assignee: string, opts: ClientOpts) => change('assign', 'assign', () => ({ assignee }), `assigned to ${assignee}`)(id, opts as ClientOpts & Record<string, unknown>));
  withClient(incident.command('resolve <id>').description('resolve an incident by hand').option('--note <text>', 'why / what fixed it'))
    .action(change('resolve', 'resolve', (o) => (typeof o.note === 'string' ? { note: o.note } : {}), 'resolved'));

  withClient(program.command('report')
    .description('loop metrics: MTTD, MTTA, MTTR and the DORA keys, with a weekly trend')
    .option('--from <t>', 'start (ISO 8601, epoch ms or now-30d)', 'now-30d')
    .option('--to <t>', 'end (ISO 8601, epoch ms or now)', 'now')
    .option('--service <name>', 'only this service'))
    .action(async (opts: ClientOpts & { from: string; to: string; service?: string }) => {
      const q = new URLSearchParams({ from: opts.from, to: opts.to, ...(opts.service === undefined ? {} : { service: opts.service }) });
      const r = await apiCall<ReportOut>('report', opts, 'GET', `/api/loop-metrics?${q.toString()}`);
      if (r.code === 0 && r.data !== undefined) { const m = r.data; print(opts, m, () => renderReport(m)); }
      setCode(r.code);
    });
}
