/** OpenAPI 3.1 path entries for the incidents routes (merged into http/openapi.ts). */

const json = (description: string) => ({ description, content: { 'application/json': { schema: { type: 'object' } } } });
const error = {
  description: 'Error',
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
};
const common = { 400: error, 401: error };
const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string' } };
const q = (name: string, description: string, type = 'string') => ({ name, in: 'query', schema: { type }, description });
const body = (properties: Record<string, unknown>, required: string[] = []) =>
  ({ required: required.length > 0, content: { 'application/json': { schema: { type: 'object', properties, required } } } });

export const incidentsOpenApiPaths = {
  '/api/incidents': {
    get: {
      summary: 'Incidents, most recently detected first',
      parameters: [q('status', 'open, acknowledged, resolved or all (default all)'), q('service', 'service.name'), q('limit', '1-1000, default 100', 'integer')],
      responses: { 200: json('{incidents}: service, environment, status, firstBadAt, detectedAt, acknowledgedAt, recoveredAt, resolvedAt, suspectDeployId, recoveredUnverified, alerts'), ...common },
    },
  },
  '/api/incidents/{id}': {
    get: {
      summary: 'The story: the incident, its suspect deploy, links and an ordered timeline (first bad signal, alert fired, notified, acknowledged, access, statements, actions, deploys, rollbacks, verdicts, signal back to baseline, resolved)',
      parameters: [idParam],
      responses: { 200: json('{incident, suspectDeploy, links, times: {mttdMs, mttaMs, mttrMs}, timeline: [{at, kind, title, actor, service, links, data}]}'), 404: error, ...common },
    },
  },
  '/api/incidents/{id}/ack': {
    post: { summary: 'Acknowledge (idempotent)', parameters: [idParam], responses: { 200: json('Incident'), 404: error, 409: error, ...common } },
  },
  '/api/incidents/{id}/assign': {
    post: {
      summary: 'Assign to a person', parameters: [idParam], requestBody: body({ assignee: { type: 'string' } }, ['assignee']),
      responses: { 200: json('Incident'), 404: error, 409: error, ...common },
    },
  },
  '/api/incidents/{id}/resolve': {
    post: {
      summary: 'Resolve by hand', parameters: [idParam], requestBody: body({ note: { type: 'string' } }),
      responses: { 200: json('Incident'), 404: error, 409: error, ...common },
    },
  },
  '/api/incidents/{id}/notes': {
    post: {
      summary: 'Add a note to the timeline (viewers read it withheld)', parameters: [idParam], requestBody: body({ note: { type: 'string' } }),
      responses: { 200: json('Incident'), 404: error, ...common },
    },
  },
  '/api/loop-metrics': {
    get: {
      summary: 'Loop metrics over a period: per-incident MTTD, MTTA, MTTR; DORA: deployment frequency, lead time, change fail rate, failed-deployment recovery time, rework rate; medians, p90 and a per-week trend',
      parameters: [
        q('from', 'Epoch ms, ISO 8601 or now-<duration>; default now-30d'), q('to', 'Epoch ms, ISO 8601 or now; default now'), q('service', 'service.name'),
      ],
      responses: { 200: json('{from, to, service, incidents: {count, each, mttd, mtta, mttr}, dora: {...}, weeks: [...], deploysAvailable}'), ...common },
    },
  },
};
