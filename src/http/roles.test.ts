import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { installRoleModel, roleAtLeast, ruleFor, withRequiredRoles } from './roles.js';
import { routesPlugin } from './plugin.js';

describe('role model', () => {
  it('refuses to start with a route that declares no role, in a plugin or at the root', async () => {
    const app = Fastify();
    installRoleModel(app, () => Promise.resolve(null));
    expect(() => app.get('/api/unlisted', () => 'x')).toThrow(/GET \/api\/unlisted has no required role/);
    app.register(routesPlugin((api) => {
      api.post('/api/services', () => 'x'); // listed for GET only
    }));
    await expect(app.ready()).rejects.toThrow(/POST \/api\/services has no required role/);
  });

  it('orders the roles and maps HEAD to GET', () => {
    expect(['viewer', 'member', 'admin'].map((r) => roleAtLeast(r, 'member'))).toEqual([false, true, true]);
    expect(roleAtLeast('root', 'viewer')).toBe(false);
    expect(ruleFor('HEAD', '/api/services')).toEqual(ruleFor('GET', '/api/services'));
    expect(withRequiredRoles({ '/api/users/{id}': { delete: { summary: 'x' } } })).toEqual({ '/api/users/{id}': { delete: { summary: 'x', 'x-required-role': 'admin' } } });
  });
});
