import type { FastifyInstance } from 'fastify';

/**
 * A Fastify plugin (its own encapsulation context) from a function that registers routes and
 * hooks, which needs no await. The plugin answers with a promise, so Fastify waits for nothing
 * else, and a throw while registering (a route the role model does not know) becomes the
 * plugin's failure, reported by `app.ready()` as from an async plugin: avvio calls a plugin
 * outside any try, so a plain function's throw would escape it.
 */
export function routesPlugin(register: (app: FastifyInstance) => void): (app: FastifyInstance) => Promise<void> {
  return (app) => new Promise<void>((resolve) => {
    register(app);
    resolve();
  });
}
