/** Shapes of the API's JSON (see GET /api/openapi.json and the pillars' contracts). */

export interface ServiceSummary {
  service: string; versions: string[]; environments: string[]; lastSeenUs: number;
  count: number; errors: number; rate: number; errorRate: number; p50Ms: number | null; p95Ms: number | null; p99Ms: number | null;
}
export interface RedBucket { timeUs: number; count: number; errors: number; rate: number; errorRate: number; p50Ms: number | null; p95Ms: number | null; p99Ms: number | null }
export interface TraceSummary { traceId: string; rootService: string; rootName: string; rootVersion?: string; startUs: number; durationNs: number; spanCount: number; errorCount: number; services: string[] }
export interface SpanRow {
  traceId: string; spanId: string; parentSpanId: string; name: string; kind: number; startUs: number; durationNs: number;
  statusCode: number; statusMessage: string; service: string; version: string; environment: string;
  resourceAttrs: Record<string, unknown>; scopeName: string; attrs: Record<string, unknown>;
  events: Array<{ timeUs: number; name: string; attrs: Record<string, unknown> }>;
}
export interface LogRow {
  timeUs: number; severityNumber: number; severityText: string; body: string; traceId: string; spanId: string;
  service: string; version: string; environment: string; attrs: Record<string, unknown>;
}
export interface ErrorEventLite { eventId: string; time: number; service: string; release: string; environment: string; traceId: string; spanId: string; title: string; groupId?: string; payload?: unknown }
export interface ErrorGroup {
  id: string; projectId: number; service: string; title: string; culprit: string; level: string; firstSeen: string; lastSeen: string;
  count: number; firstRelease: string; lastRelease: string; status: string; latestTraceId: string;
}
export interface Alert {
  id: string; ruleId: string; ruleName: string; state: string; labels: Record<string, string>; series: Record<string, string>;
  value: number | null; activeAt: string; firedAt: string | null; resolvedAt: string | null; updatedAt: string; muted?: unknown;
}
export interface Deploy {
  id: string; service: string; version: string; environment: string; previousVersion: string | null; status: string; source: string;
  commit: string | null; actor: string | null; rollbackOf: string | null; startedAt: string; finishedAt: string | null; decidedAt: string | null; verificationId: string | null;
}
export interface SignalEvidence { signal: string; outcome: string; baseline: Record<string, number>; candidate: Record<string, number>; stats: Record<string, number>; detail?: string }
export interface Verification {
  id: string; deployId: string; baselineKind: string; baselineVersion: string | null; startedAt: string; decidedAt: string | null;
  outcome: string | null; reason: string | null; evidence: SignalEvidence[];
}
