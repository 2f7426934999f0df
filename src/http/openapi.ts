/**
 * The OpenAPI 3.1 description of the REST API, served at /api/openapi.json. Written by hand so it
 * stays readable; a test checks that every registered /api route is described here.
 */

import { actionsOpenApiPaths } from '../deploys/actions/openapi.js';
import { deploysOpenApiPaths } from '../deploys/openapi.js';
import { rolloutOpenApiPaths } from '../deploys/rollout/openapi.js';
import { detectOpenApiPaths } from '../detect/openapi.js';
import { gatewayOpenApiPaths } from '../gateway/index.js';
import { incidentsOpenApiPaths } from '../incidents/openapi.js';
import { authOpenApiPaths } from '../auth/openapi.js';
import { consoleOpenApiPaths } from './console-api.js';
import { withRequiredRoles } from './roles.js';
import { API_ERRORS } from '../core/app-error.js';

const timeParams = [
  { name: 'from', in: 'query', schema: { type: 'string' }, description: 'Epoch ms, ISO 8601 or now-<duration> (e.g. now-1h).' },
  { name: 'to', in: 'query', schema: { type: 'string' }, description: 'Epoch ms, ISO 8601 or now. Default now.' },
];
const stepParam = { name: 'step', in: 'query', schema: { type: 'string' }, description: 'Bucket width: seconds or 30s, 5m, 1h.' };
const q = (name: string, description: string, type = 'string') => ({ name, in: 'query', schema: { type }, description });

const error = {
  description: 'Error',
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
};

/** The error body, its codes from the one registry (core/app-error.ts) with status and meaning. */
const errorSchema = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: { code: { type: 'string', enum: Object.keys(API_ERRORS) }, message: { type: 'string' } },
      required: ['code', 'message'],
    },
  },
  'x-error-codes': API_ERRORS,
};
const ok = (description: string) => ({ description, content: { 'application/json': { schema: { type: 'object' } } } });
const responses = (description: string) => ({ 200: ok(description), 400: error, 401: error });

const otlp = (signal: string) => ({
  post: {
    summary: `OTLP/HTTP ${signal} export (protobuf or JSON, optionally gzip)`,
    security: [],
    requestBody: { content: { 'application/x-protobuf': {}, 'application/json': {} } },
    responses: {
      200: { description: 'Export response, partial_success when items were rejected' },
      400: { description: 'google.rpc.Status: malformed request' },
      413: { description: 'google.rpc.Status: body over the size limit (after decompression)' },
      415: { description: 'google.rpc.Status: unsupported content type or encoding' },
      429: { description: 'google.rpc.Status: write queue full; Retry-After set' },
      503: { description: 'google.rpc.Status: store unavailable; Retry-After set' },
    },
  },
});

const sentryIngest = (summary: string) => ({
  post: {
    summary: `${summary}; authenticated by the project's Sentry key (sentry_key, X-Sentry-Auth or the envelope dsn), gzip/deflate accepted`,
    security: [],
    parameters: [{ name: 'projectId', in: 'path', required: true, schema: { type: 'integer' } }, q('sentry_key', 'Project public key')],
    responses: {
      200: ok('{"id":"<event_id>"}, after the events are durable'),
      400: error, 401: error, 403: error, 413: error, 415: error,
      429: { description: 'Overloaded; Retry-After and X-Sentry-Rate-Limits set' },
    },
  },
});

export const openApiDocument = {
  openapi: '3.1.0',
  info: { title: 'tightloop API', version: '0.1.0' },
  components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } }, schemas: { Error: errorSchema } },
  security: [{ bearer: [] }],
  // Each operation carries `x-required-role` (viewer, member, admin, public, ingest): roles.ts.
  paths: withRequiredRoles({
    '/api/health': { get: { summary: 'Readiness (status ok, or degraded with the failing components), what ingest cut, dropped or repaired since start, and where the admin token file is (relative, when under the working directory)', security: [], responses: { 200: ok('{"status":"ok","ingest":{"truncatedValues":0,"droppedItems":0,"invalidUtf8":0},"adminTokenFile":".tightloop/admin.token"}') } } },
    '/api/health/active': { get: { summary: 'Load balancer check: 200 on the active node, 503 with Retry-After on a standby (docs/cluster.md)', security: [], responses: { 200: ok('{"active":true}'), 503: error } } },
    '/api/cluster': { get: { summary: 'The nodes on this state database (roles, start, last heartbeat, alive), the leases and their holders (fencing token, expiry)', responses: { 200: ok('{"mode":"cluster","self":"01J…","nodes":[{"id":"01J…","roles":["api","ingest","gateway","worker"],"lastHeartbeatAt":"…","alive":true,"leases":[{"name":"active","token":3}]}],"leases":[{"name":"active","holder":"01J…","token":3}]}'), 401: error, 403: error } } },
    '/api/openapi.json': { get: { summary: 'This document', security: [], responses: { 200: ok('OpenAPI document') } } },
    '/metrics': { get: { summary: 'Counters and gauges in the Prometheus text format 0.0.4 (tightloop_*)', responses: { 200: ok('# TYPE tightloop_telemetry_flush_failures_total counter …'), 401: error, 403: error } } },
    '/api/me': { get: { summary: 'The calling token\'s user: id, name and role', responses: { 200: ok('{"id":"01J…","name":"vera","role":"viewer"}') } } },
    '/api/services': {
      get: { summary: 'Services with versions, environments, last seen and RED over the window (default 15 min)', parameters: timeParams, responses: responses('Services') },
    },
    '/api/services/{service}/red': {
      get: {
        summary: 'Rate, error rate and p50/p95/p99 latency per bucket, from rollups',
        parameters: [
          { name: 'service', in: 'path', required: true, schema: { type: 'string' } },
          ...timeParams, stepParam, q('version', 'service.version'), q('environment', 'deployment.environment'), q('operation', 'Span name'),
        ],
        responses: responses('RED buckets'),
      },
    },
    '/api/traces': {
      get: {
        summary: 'Trace summaries, newest first',
        parameters: [
          ...timeParams, q('service', 'service.name'), q('operation', 'Span name'),
          q('minDurationMs', 'Minimum trace duration', 'number'), q('status', 'error | ok'), q('limit', '1-1000, default 50', 'integer'),
        ],
        responses: responses('Trace summaries'),
      },
    },
    '/api/traces/{traceId}': {
      get: {
        summary: 'Every span of a trace, the logs carrying its trace id and the errors raised in it',
        parameters: [{ name: 'traceId', in: 'path', required: true, schema: { type: 'string', pattern: '^[0-9a-fA-F]{32}$' } }],
        responses: { ...responses('Trace'), 404: error },
      },
    },
    '/api/logs': {
      get: {
        summary: 'Log records, newest first',
        parameters: [
          ...timeParams, q('q', 'Case-insensitive substring of the body'), q('service', 'service.name'),
          q('severity', 'Minimum severity: trace, debug, info, warn, error, fatal or 1-24'), q('traceId', '32 hex chars'),
          q('eventName', 'Exact LogRecord.event_name (OTLP 1.5)'),
          { name: 'attr.<key>', in: 'query', schema: { type: 'string' }, description: 'Exact match on a record attribute' },
          q('limit', '1-5000, default 100', 'integer'),
        ],
        responses: responses('Logs'),
      },
    },
    '/api/logs/volume': {
      get: {
        summary: 'Every matching log record counted per time bucket (no row limit), with the errors among them',
        parameters: [
          ...timeParams, q('q', 'Case-insensitive substring of the body'), q('service', 'service.name'),
          q('severity', 'Minimum severity: trace, debug, info, warn, error, fatal or 1-24'), q('traceId', '32 hex chars'),
          q('eventName', 'Exact LogRecord.event_name (OTLP 1.5)'),
          { name: 'attr.<key>', in: 'query', schema: { type: 'string' }, description: 'Exact match on a record attribute' },
          q('buckets', '1-1000 equal buckets over the range, default 60', 'integer'),
        ],
        responses: responses('Buckets: time (epoch ms), count, errors; only buckets holding a record'),
      },
    },
    '/api/metrics/query': {
      get: {
        summary: 'Metric series aggregated per step',
        parameters: [
          q('name', 'Metric name (required)'), q('service', 'service.name'),
          q('agg', 'sum, avg, min, max, rate, p50, p95, p99 (percentiles from histograms)'),
          q('groupBy', 'Comma-separated labels: service, version, environment or attribute keys'),
          ...timeParams, stepParam,
        ],
        responses: responses('Series'),
      },
    },
    '/api/projects': {
      get: { summary: 'Error-tracking projects with their Sentry DSNs', responses: responses('Projects') },
      post: {
        summary: 'Create a project; the answer carries its DSN',
        requestBody: { content: { 'application/json': { schema: { type: 'object', required: ['name'], properties: { name: { type: 'string' } } } } } },
        responses: { 201: ok('Project with dsn'), 400: error, 401: error, 409: error },
      },
    },
    '/api/projects/{projectId}/release-health': {
      get: {
        summary: 'Sessions, crashes and crash-free rate per release and environment (from Sentry session items)',
        parameters: [{ name: 'projectId', in: 'path', required: true, schema: { type: 'integer' } }],
        responses: { ...responses('Release health'), 404: error },
      },
    },
    '/api/errors': {
      get: {
        summary: 'Error groups, most recently seen first',
        parameters: [
          q('project', 'Project id', 'integer'), q('service', 'service.name'), q('release', 'Groups seen in this release'),
          q('environment', 'Groups seen in this environment'), q('status', 'unresolved, resolved, resolved-in-next-release, ignored, regressed'),
          q('newInRelease', 'Groups first seen in this release'), q('q', 'Substring of title or culprit'),
          q('from', 'Last seen at or after (epoch ms or ISO 8601)'), q('to', 'First seen at or before (epoch ms or ISO 8601)'),
          q('limit', '1-1000, default 100', 'integer'),
        ],
        responses: responses('Error groups'),
      },
    },
    '/api/errors/{groupId}': {
      get: {
        summary: 'An error group: latest event with its stack, counts per release and environment, linked trace ids',
        parameters: [{ name: 'groupId', in: 'path', required: true, schema: { type: 'string', pattern: '^[0-9a-f]{32}$' } }],
        responses: { ...responses('Error group'), 404: error },
      },
      patch: {
        summary: 'Set the status: unresolved, resolved, resolved-in-next-release or ignored',
        parameters: [{ name: 'groupId', in: 'path', required: true, schema: { type: 'string', pattern: '^[0-9a-f]{32}$' } }],
        requestBody: { content: { 'application/json': { schema: { type: 'object', required: ['status'], properties: { status: { type: 'string' } } } } } },
        responses: { ...responses('Updated group'), 404: error },
      },
    },
    '/api/errors/{groupId}/events': {
      get: {
        summary: 'Events of a group, newest first',
        parameters: [
          { name: 'groupId', in: 'path', required: true, schema: { type: 'string', pattern: '^[0-9a-f]{32}$' } },
          q('before', 'Events before this time (epoch ms or ISO 8601)'), q('limit', '1-500, default 50', 'integer'),
        ],
        responses: { ...responses('Events'), 404: error },
      },
    },
    '/api/{projectId}/envelope/': sentryIngest('Sentry envelope (event, transaction, session(s), client_report; others skipped)'),
    '/api/{projectId}/store/': sentryIngest('Sentry event (legacy store endpoint)'),
    ...gatewayOpenApiPaths,
    ...detectOpenApiPaths,
    ...deploysOpenApiPaths,
    ...actionsOpenApiPaths,
    ...rolloutOpenApiPaths,
    ...incidentsOpenApiPaths,
    ...authOpenApiPaths,
    ...consoleOpenApiPaths,
    '/v1/traces': otlp('traces'),
    '/v1/logs': otlp('logs'),
    '/v1/metrics': otlp('metrics'),
  }),
} as const;
