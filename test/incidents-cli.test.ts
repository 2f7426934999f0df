import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { human, renderReport } from '../src/cli/incidents.js';
import { run } from '../src/cli/main.js';
import { serverConfigSchema } from '../src/http/config.js';
import { startServer, type RunningServer } from '../src/http/server.js';
import { loopMetrics, type IncidentStory } from '../src/incidents/index.js';
import { eventually, stateUrlFor } from './helpers/server.js';

/**
 * The terminal rendering of `tightloop report` (the numbers come from the pure metrics), and
 * `tightloop incident assign` against a real server whose incident a real alert opened.
 */

describe('tightloop report rendering', () => {
  it('formats durations for people', () => {
    expect([human(null), human(1500), human(42_000), human(190_000), human(7_500_000), human(97_200_000)])
      .toEqual(['—', '1.5 s', '42 s', '3 m 10 s', '2 h 5 m', '1 d 3 h']);
  });

  it('prints every key, the weekly trend and says when deploys are not available', () => {
    const from = Date.parse('2026-11-02T00:00:00Z');
    const m = loopMetrics({
      fromMs: from, toMs: from + 7 * 86_400_000,
      incidents: [{ id: 'i1', service: 'api', environment: 'prod', firstBadAt: from + 1000, detectedAt: from + 31_000, acknowledgedAt: from + 91_000, recoveredAt: from + 601_000, resolvedAt: from + 700_000, suspectDeployId: 'd1' }],
      deploys: [{ id: 'd1', service: 'api', environment: 'prod', status: 'rolled_back', rollbackOf: null, source: 'api', commitTime: new Date(from - 3_600_000).toISOString(), startedAt: new Date(from).toISOString(), finishedAt: new Date(from + 60_000).toISOString(), decidedAt: null }],
    });
    const text = renderReport({ ...m, deploysAvailable: false });
    expect(text).toContain('Incidents: 1');
    expect(text).toMatch(/MTTD \(first bad signal → detected\)\s+median 30 s\s+p90 30 s\s+\(n=1\)/);
    expect(text).toMatch(/MTTR \(first bad signal → recovered\)\s+median 10 m 0 s/);
    expect(text).toContain('0.14/day');
    expect(text).toMatch(/change fail rate\s+100\.0 %\s+\(1 of 1\)/);
    expect(text).toMatch(/lead time for changes\s+median 1 h 1 m/);
    expect(text).toContain('no deploy records available');
    expect(text).toMatch(/2026-11-02\s+1\s+100\.0 %/);
  });
});

describe('tightloop incident assign', () => {
  let dataDir: string;
  let server: RunningServer;
  let provider: BasicTracerProvider;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'tightloop-incidents-cli-'));
    writeFileSync(join(dataDir, 'rules.yaml'), `rules:
  - name: cart-errors
    type: threshold
    select: { service: cart }
    by: [service, environment]
    signal: error_rate
    threshold: 0.2
    window: 2s
    min_count: 10
`);
    server = await startServer(serverConfigSchema.parse({ dataDir, stateUrl: await stateUrlFor(dataDir), port: 0, logLevel: 'silent' }), pino({ level: 'silent' }));
    provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': 'cart', 'deployment.environment.name': 'prod' }),
      spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: `${server.url}/v1/traces` }), { scheduledDelayMillis: 50 })],
    });
  });

  afterAll(async () => {
    await provider.shutdown();
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const token = (): string => server.adminToken ?? '';

  async function cli(...args: string[]): Promise<{ code: number; out: string }> {
    let out = '';
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => { out += String(chunk); return true; });
    const errSpy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => { out += String(chunk); return true; });
    try {
      return { code: await run(['node', 'tightloop', ...args, '--url', server.url, '--token', token()]), out };
    } finally {
      spy.mockRestore();
      errSpy.mockRestore();
    }
  }

  async function api<T>(method: string, path: string): Promise<{ status: number; body: T }> {
    const res = await fetch(server.url + path, { method, headers: { authorization: `Bearer ${token()}` } });
    return { status: res.status, body: (await res.json()) as T };
  }

  it('assigns the open incident to a person; the API and the timeline show it; bad input is refused', async () => {
    // Failing cart requests over OTLP until the threshold rule fires and opens an incident.
    const tracer = provider.getTracer('test');
    let sending = true;
    const traffic = (async () => {
      while (sending) {
        for (let i = 0; i < 10; i++) {
          const span = tracer.startSpan('POST /cart', { kind: SpanKind.SERVER });
          if (i < 5) {
            span.recordException(new Error('stock service unavailable'));
            span.setStatus({ code: SpanStatusCode.ERROR });
          }
          span.end();
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    let id: string;
    try {
      id = await eventually(async () => (await api<{ incidents: Array<{ id: string }> }>('GET', '/api/incidents?status=open')).body.incidents[0]?.id, 20_000);
    } finally {
      sending = false;
      await traffic;
    }

    const assigned = await cli('incident', 'assign', id, 'dana');
    expect(assigned.code).toBe(0);
    expect(assigned.out).toContain(`incident ${id} assigned to dana`);
    expect(assigned.out).toContain('→ dana');
    const story = await api<IncidentStory>('GET', `/api/incidents/${id}`);
    expect(story.body.incident.assignee).toBe('dana');
    expect(story.body.timeline.filter((e) => e.kind === 'assigned').map((e) => e.actor)).toEqual(['admin']);

    // Reassigning replaces the assignee; --json prints the incident.
    const json = await cli('incident', 'assign', id, 'erik', '--json');
    expect(json.code).toBe(0);
    expect((JSON.parse(json.out) as { assignee: string }).assignee).toBe('erik');
    expect((await api<IncidentStory>('GET', `/api/incidents/${id}`)).body.incident.assignee).toBe('erik');

    // A blank name is a 400 (exit 2); an unknown incident a 404 (exit 1); a resolved one a 409 (exit 1).
    const blank = await cli('incident', 'assign', id, ' ');
    expect(blank.code).toBe(2);
    expect(blank.out).toContain(`'assignee': a user name`);
    expect((await cli('incident', 'assign', 'nope', 'dana')).code).toBe(1);
    expect((await cli('incident', 'resolve', id)).code).toBe(0);
    const late = await cli('incident', 'assign', id, 'dana');
    expect(late.code).toBe(1);
    expect(late.out).toContain('is resolved');
  });
});
