/** OpenAPI 3.1 path entries for progressive deploys (merged into http/openapi.ts). */

const json = (description: string) => ({ description, content: { 'application/json': { schema: { type: 'object' } } } });
const error = {
  description: 'Error',
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
};
const common = { 400: error, 401: error, 403: error, 404: error };

export const rolloutOpenApiPaths = {
  '/api/deploys/rollouts': {
    get: { summary: 'Progressive deploys of this process, newest first', responses: { 200: json('{rollouts}'), ...common } },
    post: {
      summary: 'Start a progressive deploy: records the deploy (source rollout), runs the deploy action per canary step, verifies each, promotes or rolls back',
      requestBody: {
        required: true,
        content: { 'application/json': { schema: { type: 'object', required: ['service', 'version'], properties: {
          service: { type: 'string' }, version: { type: 'string' }, environment: { type: 'string' }, commit: { type: 'string' },
          commitTime: { type: 'string' }, url: { type: 'string' }, steps: { type: 'array', items: { type: 'integer' } },
          verifyMaxDurationS: { type: 'number' }, wait: { type: 'boolean' }, waitS: { type: 'integer' },
        } } } },
      },
      responses: { 200: json('Ended rollout (wait=true)'), 202: json('Running rollout'), 409: error, ...common },
    },
  },
  '/api/deploys/rollouts/{id}': {
    get: {
      summary: 'One rollout (by rollout or deploy id): steps with their verdicts, rollback deploy and verdict',
      parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
      responses: { 200: json('Rollout'), ...common },
    },
  },
  '/api/local-services': {
    get: { summary: 'Services run by the local actuator: proxy port, versions with pid, port, state, weight and requests served', responses: { 200: json('{services}'), ...common } },
  },
} as const;
