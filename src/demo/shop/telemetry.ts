import { logs, metrics, NodeSDK, tracing } from '@opentelemetry/sdk-node';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import * as Sentry from '@sentry/node';

/**
 * The shop's instrumentation, configured the way the README tells any app to connect: the OTel
 * SDK reads OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES from the
 * environment; `@sentry/node` gets SENTRY_DSN and SENTRY_RELEASE. Exports are frequent (500 ms)
 * so verification sees a new version's traffic within about a second.
 */

export interface ShopTelemetry {
  shutdown(): Promise<void>;
}

export function startTelemetry(): ShopTelemetry {
  const sdk = new NodeSDK({
    spanProcessors: [new tracing.BatchSpanProcessor(new OTLPTraceExporter(), { scheduledDelayMillis: 500, maxExportBatchSize: 1024 })],
    logRecordProcessors: [new logs.BatchLogRecordProcessor({ exporter: new OTLPLogExporter(), scheduledDelayMillis: 500 })],
    metricReaders: [new metrics.PeriodicExportingMetricReader({ exporter: new OTLPMetricExporter(), exportIntervalMillis: 5_000 })],
    instrumentations: [],
  });
  sdk.start();
  const dsn = process.env.SENTRY_DSN;
  if (dsn !== undefined && dsn !== '') {
    // OTel is set up above; Sentry only reports errors. @sentry/node 11 registers no OTel tracer
    // provider of its own unless `enableOpenTelemetrySetup` (which would clash with the one above).
    Sentry.init({
      dsn,
      release: process.env.SENTRY_RELEASE,
      environment: process.env.SENTRY_ENVIRONMENT ?? 'production',
      defaultIntegrations: false,
      integrations: [Sentry.linkedErrorsIntegration()],
      tracesSampleRate: 0,
    });
  }
  return {
    async shutdown() {
      await Promise.allSettled([sdk.shutdown(), Sentry.close(2_000)]);
    },
  };
}
