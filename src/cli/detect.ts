import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { parseRulesYaml } from '../detect/rules-file.js';
import { apiCall, type ClientOpts, withClientOptions as withClient } from './api-client.js';
import { ruleCondition } from './rule-text.js';
import { columns } from './table.js';

/**
 * `tightloop silence add|list|rm` over the REST API (`/api/silences`). Exit codes: 0 ok,
 * 1 refused by the server, 2 usage or connection error.
 */

interface SilenceOut {
  id: string;
  matchers: Array<{ name: string; op: string; value: string }>;
  startsAt: string;
  endsAt: string;
  comment: string;
  createdBy: string;
  state?: string;
}

const MATCHER_RE = /^([A-Za-z_][A-Za-z0-9_.]*)(=~|!~|!=|=)(.*)$/;

/** `service=checkout`, `version!=1.2`, `operation=~GET .*` → a matcher. */
export function parseMatcher(text: string): { name: string; op: string; value: string } | undefined {
  const m = MATCHER_RE.exec(text.trim());
  return m === null ? undefined : { name: m[1], op: m[2], value: m[3] };
}

const call = (what: string, method: string, path: string, opts: ClientOpts, body?: unknown) =>
  apiCall(`silence ${what}`, opts, method, path, body);

const line = (s: SilenceOut): string =>
  `${s.id}  ${s.state ?? ''}  ${s.matchers.map((m) => `${m.name}${m.op}${m.value}`).join(',')}  ${s.startsAt} → ${s.endsAt}  ${s.comment}`;

interface RuleOut { id: string; source: string; spec: { name: string; type: string } & Record<string, unknown> }

/** A rule file for `rule add`: one rule, a list of rules, or a rules.yaml-style `{rules: [...]}`. */
function rulesIn(text: string): unknown[] {
  const doc: unknown = parseYaml(text);
  if (Array.isArray(doc)) return doc;
  if (doc !== null && typeof doc === 'object' && Array.isArray((doc as { rules?: unknown }).rules)) return (doc as { rules: unknown[] }).rules;
  return [doc];
}

/** Adds `rule list|add|rm|check` and `silence add|list|rm`; `setCode` receives the exit code. */
export function registerDetectCommands(program: Command, setCode: (code: number) => void): void {
  const rule = program.command('rule').description('alert rules (file rules live in <data-dir>/rules.yaml)');

  withClient(rule.command('list').description('list rules'))
    .action(async (opts: ClientOpts) => {
      const r = await apiCall('rule list', opts, 'GET', '/api/rules');
      if (r.code === 0) {
        const list = (r.data as { rules: RuleOut[] }).rules;
        if (opts.json === true) process.stdout.write(JSON.stringify(list) + '\n');
        else process.stdout.write(list.length === 0 ? 'no rules\n'
          : columns(['id', 'source', 'type', 'name', 'condition'], list.map((x) => [x.id, x.source, x.spec.type, x.spec.name, ruleCondition(x.spec)]), 120));
      }
      setCode(r.code);
    });

  withClient(rule.command('add <file>').description('create the rule(s) of a YAML or JSON file (one rule, a list, or {rules: [...]})'))
    .action(async (file: string, opts: ClientOpts) => {
      let rules: unknown[];
      try {
        rules = rulesIn(readFileSync(file, 'utf8'));
      } catch (err) {
        process.stderr.write(`tightloop rule add: ${file}: ${(err as Error).message.split('\n')[0]}\n`);
        setCode(2);
        return;
      }
      let code = 0;
      const made: RuleOut[] = [];
      for (const body of rules) {
        const r = await apiCall('rule add', opts, 'POST', '/api/rules', body);
        if (r.code !== 0) { code = r.code; break; }
        made.push(r.data as RuleOut);
      }
      if (opts.json === true) process.stdout.write(JSON.stringify(made) + '\n');
      else for (const x of made) process.stdout.write(`rule ${x.id} added (${x.spec.type} ${x.spec.name})\n`);
      setCode(code);
    });

  withClient(rule.command('rm <id>').description('delete an API rule'))
    .action(async (id: string, opts: ClientOpts) => {
      const r = await apiCall('rule rm', opts, 'DELETE', `/api/rules/${encodeURIComponent(id)}`);
      if (r.code === 0) process.stdout.write(`rule ${id} deleted\n`);
      setCode(r.code);
    });

  rule.command('check <file>').description('validate a rules.yaml without a server (exit 1 naming line and field)')
    .action((file: string) => {
      try {
        const f = parseRulesYaml(readFileSync(file, 'utf8'), file);
        process.stdout.write(`${file}: ok (${f.rules.length} rules, ${f.receivers.length} receivers, ${f.inhibit_rules.length} inhibit rules)\n`);
        setCode(0);
      } catch (err) {
        process.stderr.write(`${(err as Error).message}\n`);
        setCode((err as NodeJS.ErrnoException).code === 'ENOENT' ? 2 : 1);
      }
    });

  const silence = program.command('silence').description('mute alert notifications by label matchers');

  withClient(silence.command('add <matchers...>')
    .description('add a silence, e.g. `silence add service=checkout environment=prod --duration 2h`')
    .option('--duration <d>', 'how long (30m, 2h, 1d)', '1h')
    .option('--starts-at <iso>', 'start time (default now)')
    .option('--comment <text>', 'why', ''))
    .action(async (texts: string[], opts: ClientOpts & { duration: string; startsAt?: string; comment: string }) => {
      const matchers = texts.map(parseMatcher);
      const bad = texts.find((_, i) => matchers[i] === undefined);
      if (bad !== undefined) {
        process.stderr.write(`tightloop silence add: '${bad}' is not a matcher (label=value, label!=value, label=~regex, label!~regex)\n`);
        setCode(2);
        return;
      }
      const r = await call('add', 'POST', '/api/silences', opts, { matchers, duration: opts.duration, startsAt: opts.startsAt, comment: opts.comment });
      if (r.code === 0) process.stdout.write(opts.json === true ? JSON.stringify(r.data) + '\n' : `silence ${(r.data as SilenceOut).id} added\n  ${line(r.data as SilenceOut)}\n`);
      setCode(r.code);
    });

  withClient(silence.command('list')
    .description('list active and pending silences')
    .option('--all', 'include expired silences'))
    .action(async (opts: ClientOpts & { all?: boolean }) => {
      const r = await call('list', 'GET', `/api/silences${opts.all === true ? '?all=true' : ''}`, opts);
      if (r.code === 0) {
        const list = (r.data as { silences: SilenceOut[] }).silences;
        if (opts.json === true) process.stdout.write(JSON.stringify(list) + '\n');
        else process.stdout.write(list.length === 0 ? 'no silences\n' : list.map(line).join('\n') + '\n');
      }
      setCode(r.code);
    });

  withClient(silence.command('rm <id>').description('expire a silence now'))
    .action(async (id: string, opts: ClientOpts) => {
      const r = await call('rm', 'DELETE', `/api/silences/${encodeURIComponent(id)}`, opts);
      if (r.code === 0) process.stdout.write(opts.json === true ? JSON.stringify(r.data) + '\n' : `silence ${id} expired\n`);
      setCode(r.code);
    });
}
