/** OpenAPI 3.1 path entries for the deploys routes (merged into http/openapi.ts). */

const json = (description: string) => ({ description, content: { 'application/json': { schema: { type: 'object' } } } });
const error = {
  description: 'Error',
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
};
const common = { 400: error, 401: error };
const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string' } };
const q = (name: string, description: string, type = 'string') => ({ name, in: 'query', schema: { type }, description });

export const deploysOpenApiPaths = {
  '/api/deploys': {
    get: {
      summary: 'Deploys, newest first',
      parameters: [
        q('service', 'service.name'), q('environment', 'deployment.environment'), q('version', 'service.version'),
        q('status', 'started, verifying, passed, failed, inconclusive or rolled_back'),
        q('from', 'Started at or after: epoch ms, ISO 8601 or now-<duration>'), q('to', 'Started at or before'),
        q('limit', '1-1000, default 100', 'integer'),
      ],
      responses: { 200: json('{deploys}'), ...common },
    },
    post: {
      summary: 'Record a deploy (member); its verification starts at once unless verify is false. The actor is the caller; previousVersion is worked out by tightloop, and a rollback restores only a version tightloop saw serving healthily',
      requestBody: { required: true, content: { 'application/json': { schema: {
        type: 'object', required: ['service', 'version'], additionalProperties: false,
        properties: {
          service: { type: 'string' }, version: { type: 'string' }, environment: { type: 'string', description: 'Default production' },
          commit: { type: 'string' }, commitTime: { type: 'string', format: 'date-time' }, url: { type: 'string', format: 'uri' },
          source: { type: 'string', enum: ['api', 'cli'] },
          rollbackOf: { type: 'string', description: 'Id of the deploy this one rolls back' },
          verify: { type: 'boolean' }, startedAt: { type: 'string', format: 'date-time' },
        },
      } } } },
      responses: { 201: json('Deploy with its verification'), 404: error, ...common },
    },
  },
  '/api/deploys/{id}': {
    get: { summary: 'A deploy with its verification and evidence, and rollbackTarget: the version a rollback would restore (the latest explicitly recorded one tightloop saw serving healthily before it; null if none)', parameters: [idParam], responses: { 200: json('Deploy'), 404: error, ...common } },
  },
  '/api/deploys/{id}/verify': {
    post: {
      summary: 'Start (or restart) the verification; answers at once with the pending verification',
      parameters: [idParam],
      requestBody: { content: { 'application/json': { schema: { type: 'object', properties: { maxDurationS: { type: 'number' } } } } } },
      responses: { 202: json('Verification (pending)'), 404: error, ...common },
    },
  },
  '/api/deploys/{id}/verification': {
    get: {
      summary: 'The current verification: outcome (pass, fail, inconclusive; null while pending), reason, evidence per signal',
      parameters: [idParam, q('waitS', 'Wait up to this many seconds (0-60) for the verdict', 'integer')],
      responses: { 200: json('Verification'), 404: error, ...common },
    },
  },
};
