/**
 * Wiring of the errors module: what the HTTP server opens, registers and closes. The server
 * hands in the state database (with ERRORS_MIGRATIONS applied) and the telemetry writer's
 * submit (Sentry transactions become spans).
 */
import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import type { Database } from '../state/index.js';
import type { TelemetryBatches } from '../telemetry/index.js';
import { registerErrorsApi } from './api-routes.js';
import { ErrorEventStore, type StoredErrorEvent } from './event-store.js';
import { ErrorEvents } from './events.js';
import { GroupStore } from './groups.js';
import { registerSentryIngest, UnstoredItems } from './ingest-routes.js';
import { errorsFromLogs, errorsFromTelemetry } from './otel-errors.js';
import { OtelSpanErrors, type SpanSource } from './otel-feed.js';
import { InThreadCommitter, type BatchCommitter } from './commit.js';
import { ErrorPipeline, type ErrorPipelineOptions } from './pipeline.js';
import { dsnFor, ProjectRegistry, type Project } from './projects.js';
import { ReleaseHealthStore } from './release-health.js';
import { errorsDb } from './tables.js';
import { WorkerCommitter, workerScript } from './worker-committer.js';
import { routesPlugin } from '../http/plugin.js';

export interface ErrorsModuleDeps {
  state: Kysely<Database>;
  submitSpans: (batches: TelemetryBatches) => Promise<void>;
  maxBodyBytes: number;
  /** Largest envelope item; default 1 MiB (Sentry's event limit). */
  maxItemBytes?: number;
  log: { error(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  /**
   * The SQLite state file behind `state`: error commits then run in a worker thread on their own
   * connection (see worker-committer.ts). Omit for PostgreSQL (asynchronous already).
   */
  statePath?: string;
  /**
   * The telemetry store: exception span events then become error events after the OTLP
   * request's ack, rebuilt from the spans after a crash (otel-feed.ts). Without it the OTLP
   * hook derives them before the ack.
   */
  spans?: SpanSource;
  pipeline?: Omit<ErrorPipelineOptions, 'groupingVersion'>;
}

export interface ErrorsModule {
  readonly events: ErrorEvents;
  readonly defaultProject: Project;
  /** DSN of the default project, for the start banner. */
  defaultDsn(baseUrl: string): string;
  /** Sentry ingest; register at the root, outside the bearer-token API plugin. */
  ingestPlugin: (app: FastifyInstance) => Promise<void>;
  /** The REST API; register inside the bearer-token API plugin. `publicUrl` builds DSNs. */
  registerApi(api: FastifyInstance, publicUrl: () => string): void;
  /** Errors raised in one trace (for GET /api/traces/:id). */
  errorsForTrace(traceId: string): Promise<StoredErrorEvent[]>;
  /** OTLP hook: exception span events and log records become error events. Never rejects. */
  onIngested(batches: TelemetryBatches): Promise<void>;
  close(): Promise<void>;
}

export async function openErrorsModule(deps: ErrorsModuleDeps): Promise<ErrorsModule> {
  const db = errorsDb(deps.state);
  const projects = new ProjectRegistry(db);
  await projects.load();
  const defaultProject = await projects.ensureDefault();
  const eventStore = new ErrorEventStore(db);
  const groups = new GroupStore(db);
  const health = new ReleaseHealthStore(db);
  const events = new ErrorEvents((err) => deps.log.error({ err }, 'error event listener failed'));
  const script = deps.statePath === undefined ? undefined : workerScript();
  const committer: BatchCommitter = script !== undefined && deps.statePath !== undefined
    ? new WorkerCommitter(script, deps.statePath)
    : new InThreadCommitter(groups, eventStore);
  let feed: OtelSpanErrors | undefined;
  const pipeline = new ErrorPipeline(committer, events, {
    ...deps.pipeline,
    groupingVersion: (id) => projects.get(id)?.groupingVersion ?? 1,
    otelWatermark: (committing) => feed?.watermark(committing),
  });
  if (deps.spans !== undefined) {
    feed = new OtelSpanErrors(deps.spans, pipeline, db, defaultProject.id, deps.log);
    try {
      await feed.start();
    } catch (err) {
      feed.stop();
      await pipeline.close();
      throw err;
    }
  }
  const maxItemBytes = deps.maxItemBytes ?? 1024 * 1024;
  const unstored = new UnstoredItems(deps.log);

  return {
    events,
    defaultProject,
    defaultDsn: (baseUrl) => dsnFor(baseUrl, defaultProject),
    ingestPlugin: routesPlugin((app) => {
      registerSentryIngest(app, { projects, pipeline, health, submitSpans: deps.submitSpans, maxBodyBytes: deps.maxBodyBytes, maxItemBytes, unstored });
    }),
    registerApi: (api, publicUrl) => { registerErrorsApi(api, { projects, groups, events: eventStore, health, publicUrl, unstored: (id) => unstored.forProject(id) }); },
    errorsForTrace: (traceId) => eventStore.byTrace(traceId),
    onIngested: async (batches) => {
      // Span exceptions come through the feed once their spans are committed (see above).
      const found = feed === undefined ? errorsFromTelemetry(batches, defaultProject.id)
        : batches.logs === undefined ? [] : errorsFromLogs(batches.logs, defaultProject.id);
      if (found.length === 0) return;
      try {
        await pipeline.submit(found);
      } catch (err) {
        // The spans/logs are committed already; failing the OTLP request would make the
        // exporter resend them. Losing the derived error events is the lesser harm.
        deps.log.error({ err, events: found.length }, 'OTel error events not stored');
      }
    },
    close: async () => {
      feed?.stop();
      await pipeline.close();
    },
  };
}
