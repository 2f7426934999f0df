import { randomBytes } from 'node:crypto';

/** OTLP/JSON trace requests with known ids, for tests that must find every acknowledged span. */
export function randomTraceId(): string {
  return randomBytes(16).toString('hex');
}

export function jsonTraceRequest(traceId: string, spans: number, service = 'durable'): string {
  const now = Date.now() * 1e6;
  const list = [];
  for (let i = 0; i < spans; i++) {
    list.push({
      traceId,
      spanId: randomBytes(8).toString('hex'),
      parentSpanId: i === 0 ? '' : undefined,
      name: i === 0 ? 'GET /orders' : `step ${i}`,
      kind: i === 0 ? 2 : 1,
      startTimeUnixNano: String(now + i * 1000),
      endTimeUnixNano: String(now + i * 1000 + 2_000_000),
      attributes: [{ key: 'i', value: { intValue: String(i) } }],
    });
  }
  return JSON.stringify({
    resourceSpans: [{
      resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
      scopeSpans: [{ scope: { name: 'test' }, spans: list }],
    }],
  });
}
