/** OpenAPI 3.1 path entries for the users and tokens routes (merged into http/openapi.ts). */

const json = (description: string) => ({ description, content: { 'application/json': { schema: { type: 'object' } } } });
const error = {
  description: 'Error',
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
};
const common = { 400: error, 401: error, 403: error };
const idParam = (description: string) => ({ name: 'id', in: 'path', required: true, schema: { type: 'string' }, description });
const q = (name: string, description: string, type = 'string') => ({ name, in: 'query', schema: { type }, description });
const body = (properties: Record<string, unknown>, required: string[] = []) =>
  ({ required: required.length > 0, content: { 'application/json': { schema: { type: 'object', properties, required } } } });

export const authOpenApiPaths = {
  '/api/users': {
    get: { summary: 'Users: id, name, role, createdAt', responses: { 200: json('{users}'), ...common } },
    post: {
      summary: 'Create a user with a first API token, returned once (admin). The name is also the PostgreSQL user name at the gateway.',
      requestBody: body({
        name: { type: 'string', pattern: '^[a-zA-Z][a-zA-Z0-9._-]{0,62}$' },
        role: { type: 'string', enum: ['admin', 'member', 'viewer'], default: 'member' },
      }, ['name']),
      responses: { 201: json('{id, name, role, createdAt, token, tokenId, gatewayPort (the PostgreSQL gateway\'s port, or null)}'), 409: error, ...common },
    },
  },
  '/api/users/{id}': {
    patch: {
      summary: "Change a user's role (admin); their tokens carry it from the next request. 409 when it would leave no admin",
      parameters: [idParam('User id or name')],
      requestBody: body({
        role: { type: 'string', enum: ['admin', 'member', 'viewer'] },
      }, ['role']),
      responses: { 200: json('The user with the new role'), 404: error, 409: error, ...common },
    },
    delete: {
      summary: 'Delete a user (admin; not yourself); their tokens go with them',
      parameters: [idParam('User id or name')],
      responses: { 200: json('The deleted user'), 404: error, 409: error, ...common },
    },
  },
  '/api/tokens': {
    get: {
      summary: 'Your API tokens (never the token or its hash): id, name, prefix, scopes, createdAt, expiresAt, lastUsedAt, revokedAt',
      parameters: [q('userId', "Another user's tokens (admin)"), q('all', 'true: include revoked tokens')],
      responses: { 200: json('{tokens}'), ...common },
    },
    post: {
      summary: 'Issue an API token, returned once; admins may issue one for another user',
      requestBody: body({
        name: { type: 'string', default: 'api token' },
        expiresIn: { description: 'Seconds, or 12h / 30d / 4w; default never', oneOf: [{ type: 'integer' }, { type: 'string' }] },
        userId: { type: 'string', description: 'User id or name (admin)' },
      }),
      responses: { 201: json('The token fields and `token`'), 404: error, ...common },
    },
  },
  '/api/tokens/{id}': {
    delete: {
      summary: 'Revoke a token (your own; any for admins); it stops working at once',
      parameters: [idParam('Token id')],
      responses: { 200: json('The revoked token'), 404: error, ...common },
    },
  },
};
