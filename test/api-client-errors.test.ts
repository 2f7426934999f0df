import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_ERRORS } from '../src/core/app-error.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/** Fastify's own client errors answer with a code of the registry (issue 21.1), never `fst_err_*`. */
let server: TestServer;
beforeAll(async () => { server = await startTestServer(); });
afterAll(async () => { await server.close(); });

async function post(contentType: string, body: string): Promise<[number, string]> {
  const res = await fetch(`${server.url}/api/users`, { method: 'POST', headers: { authorization: `Bearer ${server.token}`, 'content-type': contentType }, body });
  return [res.status, ((await res.json()) as { error: { code: string } }).error.code];
}

describe('API client errors raised by Fastify', () => {
  it('an unknown content type is 415 unsupported_media_type; a body that is not JSON is 400 bad_request', async () => {
    expect(await post('application/xml', '<user/>')).toEqual([415, 'unsupported_media_type']);
    expect(await post('application/json', '{"name": ')).toEqual([400, 'bad_request']);
    for (const code of ['unsupported_media_type', 'bad_request']) expect(code in API_ERRORS).toBe(true);
  });
});
