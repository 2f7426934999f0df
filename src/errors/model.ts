/**
 * The error event as tightloop keeps it, whatever sent it (a Sentry SDK envelope, an OTel span
 * event named `exception`, an OTel log record with `exception.*` attributes). Keyed the OTel way:
 * service, release (= service.version), environment, trace_id/span_id.
 */

export interface StackFrame {
  /** Module (Python/Java style) or package path, when the SDK knows it. */
  module?: string;
  filename?: string;
  function?: string;
  lineno?: number;
  colno?: number;
  /** True for the application's own code (not node_modules, not the runtime). */
  inApp?: boolean;
}

export interface ExceptionInfo {
  type: string;
  value: string;
  /** Oldest call first, the crashing frame last (Sentry's order). */
  frames: StackFrame[];
  handled?: boolean;
}

export interface ErrorEvent {
  eventId: string;
  projectId: number;
  /** Event time in µs since the epoch. */
  timeUs: number;
  service: string;
  release: string;
  environment: string;
  level: string;
  platform: string;
  /** Lowercase hex, '' when absent. */
  traceId: string;
  spanId: string;
  /** Outermost exception last (Sentry's order); empty for a plain message. */
  exceptions: ExceptionInfo[];
  /** The log message (template when the SDK sent one, so parameters do not split groups). */
  message: string;
  /** An explicit fingerprint from the SDK; may contain `{{ default }}`. */
  fingerprint?: string[];
  transaction: string;
  user: Record<string, unknown> | null;
  tags: Record<string, string>;
  request: Record<string, unknown> | null;
  /** Where the event came from: 'sentry', 'otel-span', 'otel-log'. */
  source: string;
  /** The whole event as received (JSON text), for the detail view. */
  payload: string;
  /**
   * The payload already compressed, when the sender did it for us: a gzip envelope holding
   * just this event is stored as received (decompressed only when someone opens the event).
   */
  compressed?: { encoding: PayloadEncoding; bytes: Buffer };
}

/**
 * A Sentry `event` item not parsed yet. The ingest route checks the envelope's framing, auth and
 * sizes on the event loop, then hands these bytes to the committer, which parses, maps
 * (fromSentryEvent), groups and stores them — with the worker committer, all off the event loop.
 * An item that is not a JSON object fails its request with 400 (the pipeline reports it back).
 */
export interface RawSentryEvent {
  /** The item's payload: the event's JSON text as UTF-8 bytes. */
  raw: Uint8Array;
  projectId: number;
  /** The project's name (service unless the event names its own). */
  service: string;
  /** Arrival time, the event time when the event carries none. */
  nowUs: number;
  /** As ErrorEvent.compressed: the gzip envelope holding just this event. */
  compressed?: { encoding: PayloadEncoding; bytes: Buffer };
}

/** What the pipeline accepts: an event already mapped, or a Sentry event item still to parse. */
export type IncomingEvent = ErrorEvent | RawSentryEvent;

export function isRawSentryEvent(e: IncomingEvent): e is RawSentryEvent {
  return (e as RawSentryEvent).raw !== undefined;
}

/** How error_events.payload is stored. */
export type PayloadEncoding = 'deflate-json' | 'gzip-envelope' | 'json';

/** What grouping decided for one event. */
export interface GroupingResult {
  /** Stable id of the group: hash of project, grouping version and components. */
  groupId: string;
  version: number;
  /** The components that were hashed (shown in the API so users can see why events group). */
  components: string[];
  title: string;
  culprit: string;
}

export const GROUP_STATUSES = ['unresolved', 'resolved', 'resolved-in-next-release', 'ignored', 'regressed'] as const;
export type GroupStatus = (typeof GROUP_STATUSES)[number];
