/** OpenAPI 3.1 path entries for actions (merged into http/openapi.ts). */

const json = (description: string) => ({ description, content: { 'application/json': { schema: { type: 'object' } } } });
const error = {
  description: 'Error',
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
};
const common = { 400: error, 401: error, 403: error, 404: error };
const path = (name: string, description: string) => ({ name, in: 'path', required: true, schema: { type: 'string' }, description });
const query = (name: string, description: string, type = 'string') => ({ name, in: 'query', schema: { type }, description });
const note = { content: { 'application/json': { schema: { type: 'object', properties: { note: { type: 'string' } } } } } };

export const actionsOpenApiPaths = {
  '/api/actions': {
    get: { summary: 'Actions (runbooks) from the actions folder and built-ins, with files that failed to load', responses: { 200: json('{actions, errors}'), ...common } },
  },
  '/api/actions/{name}': {
    get: { summary: 'One action definition (header values hidden)', parameters: [path('name', 'Action name')], responses: { 200: json('Action'), ...common } },
  },
  '/api/actions/{name}/runs': {
    post: {
      summary: 'Run an action: parameters are validated (400 action_params_invalid names each bad one); 202 running or pending_approval, 200 when wait=true and it finished',
      parameters: [path('name', 'Action name')],
      requestBody: {
        required: true,
        content: { 'application/json': { schema: { type: 'object', properties: {
          params: { type: 'object', additionalProperties: { oneOf: [{ type: 'string' }, { type: 'number' }, { type: 'boolean' }] } },
          deployId: { type: 'string' }, wait: { type: 'boolean' }, waitS: { type: 'integer', minimum: 1, maximum: 600 },
        } } } },
      },
      responses: { 200: json('Finished run'), 202: json('Run (running or pending_approval)'), ...common },
    },
  },
  '/api/actions/runs': {
    get: {
      summary: 'Action runs, newest first',
      parameters: [query('action', 'Action name'), query('status', 'pending_approval, running, succeeded, failed, denied'), query('deployId', 'Runs of a deploy'), query('limit', '1-1000, default 100', 'integer')],
      responses: { 200: json('{runs}'), ...common },
    },
  },
  '/api/actions/runs/{id}': {
    get: { summary: 'One run: who, parameters, status, exit code, duration, captured output', parameters: [path('id', 'Run id')], responses: { 200: json('Run'), ...common } },
  },
  '/api/actions/runs/{id}/approve': {
    post: { summary: 'Approve a pending run (admin; not your own); it starts at once', parameters: [path('id', 'Run id')], requestBody: note, responses: { 200: json('Run'), 409: error, ...common } },
  },
  '/api/actions/runs/{id}/deny': {
    post: { summary: 'Deny a pending run (admin)', parameters: [path('id', 'Run id')], requestBody: note, responses: { 200: json('Run'), 409: error, ...common } },
  },
} as const;
