/**
 * Entry point of the demo shop, one process per version (started by the `local` actuator):
 *
 *   VERSION=2.0.0 PORT=0 DATABASE_URL=postgres://... \
 *   OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 OTEL_SERVICE_NAME=shop \
 *   OTEL_RESOURCE_ATTRIBUTES=service.version=2.0.0,deployment.environment.name=production \
 *   SENTRY_DSN=http://<key>@127.0.0.1:4318/1 SENTRY_RELEASE=2.0.0 node dist/src/demo/shop/main.js
 *
 * Telemetry starts before the app module loads so the SDK is in place for the first request.
 * Prints `shop <version> listening on <port>` once ready; SIGTERM/SIGINT flush and exit.
 */
import { startTelemetry } from './telemetry.js';

const version = process.env.VERSION ?? process.env.SERVICE_VERSION ?? '1.0.0';
const databaseUrl = process.env.DATABASE_URL;
if (databaseUrl === undefined || databaseUrl === '') {
  process.stderr.write('shop: DATABASE_URL is required\n');
  process.exit(2);
}
const telemetry = startTelemetry();
const { startShop } = await import('./app.js');
const shop = await startShop({ version, databaseUrl, port: Number(process.env.PORT ?? 0) });
process.stdout.write(`shop ${version} listening on ${shop.port}\n`);

let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  void shop.close().finally(() => telemetry.shutdown().finally(() => process.exit(0)));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
