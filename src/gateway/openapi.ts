/** OpenAPI 3.1 path entries for the gateway's routes (merged into http/openapi.ts). */

const json = (description: string) => ({ description, content: { 'application/json': { schema: { type: 'object' } } } });
const error = {
  description: 'Error',
  content: { 'application/json': { schema: { type: 'object', properties: { error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } } } } } },
};
const common = { 400: error, 401: error, 403: error, 404: error };
const path = (name: string, description: string) => ({ name, in: 'path', required: true, schema: { type: 'string' }, description });
const query = (name: string, description: string, type = 'string') => ({ name, in: 'query', schema: { type }, description });
const body = (description: string, properties: Record<string, unknown>, required: string[] = []) => ({
  required: true,
  content: { 'application/json': { schema: { type: 'object', description, properties, required } } },
});
const duration = { description: 'Seconds, or 90s / 30m / 1h / 2d', oneOf: [{ type: 'integer' }, { type: 'string' }] };
const mode = { type: 'string', enum: ['read', 'write', 'admin'] };

export const gatewayOpenApiPaths = {
  '/api/resources': {
    get: { summary: 'PostgreSQL resources behind the gateway (credentials never included)', responses: { 200: json('Resources'), ...common } },
    post: {
      summary: 'Add a resource (admin)',
      requestBody: body('Resource', {
        name: { type: 'string' }, host: { type: 'string' }, port: { type: 'integer' }, database: { type: 'string' }, user: { type: 'string' },
        credential: { type: 'string', description: 'env:TIGHTLOOP_CRED_* (or a listed variable) or file:<credential dir>/…; the password itself is never stored' },
        allowInsecurePassword: { type: 'boolean', description: 'send the password in cleartext or MD5 when the server asks without TLS (default false)' },
        tls: { type: 'object', properties: { mode: { type: 'string', enum: ['disable', 'prefer', 'require', 'verify-ca', 'verify-full'] }, caFile: { type: 'string' }, serverName: { type: 'string' } } },
        policy: { type: 'object', description: 'guardrails {rules, modes, roles, allowFunctions}, masking {enabled, detectors, mode, columns, exemptRoles}, limits {statementTimeoutMs, lockTimeoutMs, idleInTransactionSessionTimeoutMs}, breakGlass, reviewWindowS, maxGrantS; the 201 answer carries warnings (e.g. a superuser upstream login)' },
      }, ['name', 'host', 'database', 'user', 'credential']),
      responses: { 201: json('Created resource'), 409: error, ...common },
    },
  },
  '/api/resources/{name}': {
    get: { summary: 'One resource, with `classification`: the columns masking classified as sensitive (implied column rules: column, table, source sample|name|seen|unsampled, detectors, kind values|contains, mode, overriddenBy)', parameters: [path('name', 'Resource name')], responses: { 200: json('Resource'), ...common } },
    delete: { summary: 'Remove a resource (admin); its live sessions end', parameters: [path('name', 'Resource name')], responses: { 200: json('Removed'), ...common } },
  },
  '/api/resources/{name}/policy': {
    put: { summary: 'Replace a resource policy (admin)', parameters: [path('name', 'Resource name')], requestBody: body('Policy', {}), responses: { 200: json('Resource'), ...common } },
  },
  '/api/access/grants': {
    get: { summary: 'Live grants (all=1 includes ended ones)', parameters: [query('resource', 'Resource name'), query('all', '1 to include revoked and expired')], responses: { 200: json('Grants'), ...common } },
    post: {
      summary: 'Grant access directly (admins, or admin grant holders on the resource)',
      requestBody: body('Grant', { user: { type: 'string' }, role: { type: 'string' }, resource: { type: 'string' }, mode, duration }, ['resource', 'mode']),
      responses: { 201: json('Grant'), ...common },
    },
  },
  '/api/access/grants/{id}': {
    delete: { summary: 'Revoke a grant; sessions using it are terminated', parameters: [path('id', 'Grant id')], responses: { 200: json('Revoked'), 409: error, ...common } },
  },
  '/api/access/requests': {
    get: { summary: 'Access and statement-review requests, newest first', parameters: [query('status', 'pending, approved, denied, expired, used, revoked'), query('resource', 'Resource name'), query('mine', '1 for your own')], responses: { 200: json('Requests'), ...common } },
    post: {
      summary: 'Request just-in-time access (breakGlass grants at once where the resource allows it, and alerts)',
      requestBody: body('Access request', { resource: { type: 'string' }, mode, duration, reason: { type: 'string' }, breakGlass: { type: 'boolean' } }, ['resource', 'mode', 'duration', 'reason']),
      responses: { 201: json('Request'), ...common },
    },
  },
  '/api/access/requests/{id}': {
    get: { summary: 'One request', parameters: [path('id', 'Request id')], responses: { 200: json('Request'), ...common } },
  },
  '/api/access/requests/{id}/approve': {
    post: { summary: 'Approve (not your own; needs the admin role or an admin grant)', parameters: [path('id', 'Request id')], requestBody: body('Note', { note: { type: 'string' } }), responses: { 200: json('Request'), 409: error, ...common } },
  },
  '/api/access/requests/{id}/deny': {
    post: { summary: 'Deny (or withdraw your own)', parameters: [path('id', 'Request id')], requestBody: body('Note', { note: { type: 'string' } }), responses: { 200: json('Request'), 409: error, ...common } },
  },
  '/api/access/revoke/{id}': {
    post: { summary: 'Revoke a grant by grant or request id, or withdraw a pending request', parameters: [path('id', 'Grant or request id')], responses: { 200: json('Revoked'), 409: error, ...common } },
  },
  '/api/gateway/credentials': {
    post: { summary: 'Enrol the calling token for SCRAM-SHA-256 logins at the gateway', responses: { 201: json('Enrolled'), ...common } },
  },
  '/api/audit': {
    get: {
      summary: 'Audit records in chain order (admin); format=ndjson streams an export',
      parameters: [
        query('kind', 'Record kind, or a prefix ending in "." (statement, connection., request., grant., access.)'), query('actor', 'User name'),
        query('resource', 'Resource name'), query('session', 'Session id'), query('from', 'Epoch ms or ISO 8601'), query('to', 'Epoch ms or ISO 8601'),
        query('after', 'Records after this sequence number', 'integer'), query('limit', '1-5000, default 100 (JSON)', 'integer'), query('format', 'json (default) or ndjson'),
      ],
      responses: { 200: { description: 'Records', content: { 'application/json': {}, 'application/x-ndjson': {} } }, ...common },
    },
  },
  '/api/audit/verify': {
    get: {
      summary: 'Verify the hash chain; names the first edited, deleted or reordered record (admin)',
      parameters: [query('headSeq', 'Expected last sequence number (anchored elsewhere)', 'integer'), query('headHash', 'Expected last hash')],
      responses: { 200: json('{ok, records, head} or {ok:false, firstBad:{seq,id,reason}}'), ...common },
    },
  },
} as const;
