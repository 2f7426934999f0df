/** OpenAPI 3.1 path entries for the detect routes (merged into http/openapi.ts). */

const json = (description: string) => ({ description, content: { 'application/json': { schema: { type: 'object' } } } });
const error = {
  description: 'Error',
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
};
const common = { 400: error, 401: error };
const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string' } };
const ruleBody = {
  required: true,
  content: { 'application/json': { schema: {
    type: 'object',
    description: 'A rule as in rules.yaml. type threshold (RED): signal (error_rate | p50_ms | p95_ms | p99_ms | rate), op, threshold, '
      + 'window, for, n_of_m {n, m}, keep_firing_for, min_count. type metric: metric (instrument name), agg (avg | min | max | sum | '
      + 'last | count | increase | rate | p50 | p90 | p95 | p99) and the threshold fields. type log: match {pattern, regex, '
      + 'min_severity (TRACE..FATAL)}, signal (count | rate) and the threshold fields. type error: event (new_group | regressed | '
      + 'spike), resolve_after; spike: window, baseline, factor, min_count, keep_firing_for; by over service, version, environment, '
      + 'group, title. type slo: objective, period (7d | 28d | 30d: the workbook burn factors; other periods need windows), windows [{severity, factor, long, short}], min_events; by defaults to service, environment (one budget). type absence: for. '
      + 'All: name, select {service, operation, version, environment, attributes {key: value}}, by (labels or attr.<attribute key>), '
      + 'labels, receivers, group_by, group_wait, group_interval, repeat_interval. Durations: 30s, 5m, 1h, 3d. '
      + 'A rule that does not validate answers 400 naming the field.',
    required: ['name', 'type'],
  } } },
};
const matcher = { type: 'object', properties: { name: { type: 'string' }, value: { type: 'string' }, op: { type: 'string', enum: ['=', '!=', '=~', '!~'] } } };

export const detectOpenApiPaths = {
  '/api/rules': {
    get: { summary: 'Alert rules (file rules have ids file:<name> and are read-only)', responses: { 200: json('{rules}'), ...common } },
    post: { summary: 'Create a rule', requestBody: ruleBody, responses: { 201: json('Rule'), 409: error, ...common } },
  },
  '/api/rules/{id}': {
    get: { summary: 'One rule', parameters: [idParam], responses: { 200: json('Rule'), 404: error, ...common } },
    put: { summary: 'Replace a rule (its open alerts end)', parameters: [idParam], requestBody: ruleBody, responses: { 200: json('Rule'), 404: error, 409: error, ...common } },
    delete: { summary: 'Delete a rule', parameters: [idParam], responses: { 204: { description: 'Deleted' }, 404: error, 409: error, ...common } },
  },
  '/api/alerts': {
    get: {
      summary: 'Alerts, most recently changed first',
      parameters: [
        { name: 'state', in: 'query', schema: { type: 'string', enum: ['pending', 'firing', 'resolved', 'all'] }, description: 'Default: all' },
        { name: 'limit', in: 'query', schema: { type: 'integer' }, description: '1-1000, default 100' },
      ],
      responses: { 200: json('{alerts}: rule, labels, series, value, state, times, muted (why a notification is held back)'), ...common },
    },
  },
  '/api/alerts/{id}': {
    get: { summary: 'One alert with its state history', parameters: [idParam], responses: { 200: json('Alert with history'), 404: error, ...common } },
  },
  '/api/silences': {
    get: {
      summary: 'Active and pending silences',
      parameters: [{ name: 'all', in: 'query', schema: { type: 'boolean' }, description: 'Include expired silences' }],
      responses: { 200: json('{silences}'), ...common },
    },
    post: {
      summary: 'Create a silence',
      requestBody: { required: true, content: { 'application/json': { schema: {
        type: 'object', required: ['matchers'],
        properties: {
          matchers: { oneOf: [{ type: 'array', items: matcher }, { type: 'object', additionalProperties: { type: 'string' } }] },
          startsAt: { type: 'string', format: 'date-time' }, endsAt: { type: 'string', format: 'date-time' },
          duration: { type: 'string', description: 'Instead of endsAt, e.g. 2h' }, comment: { type: 'string' },
        },
      } } } },
      responses: { 201: json('Silence'), ...common },
    },
  },
  '/api/silences/{id}': {
    delete: { summary: 'Expire a silence now', parameters: [idParam], responses: { 200: json('Silence'), 404: error, ...common } },
  },
};
