import type { ChartMarker } from './chart';
import { href } from './router';
import type { Deploy } from './types';

/**
 * How deploys appear on charts and in links: with their direction (1.0.0 → 2.0.0, rollback →
 * 1.0.0), their verdict, and a link to it.
 */

const TONE: Record<string, ChartMarker['tone']> = { passed: 'ok', failed: 'bad', rolled_back: 'bad', inconclusive: 'warn', verifying: 'warn', started: 'neutral' };
const VERDICT: Record<string, string> = { passed: '✓ passed', failed: '✗ failed', rolled_back: '✗ rolled back', inconclusive: '? inconclusive', verifying: '… verifying' };

export const isRollback = (d: Deploy): boolean => d.source === 'rollback' || d.rollbackOf !== null;

/** "1.0.0 → 2.0.0", "rollback 2.0.0 → 1.0.0", or the version alone (a service's first). */
export function deployDirection(d: Deploy): string {
  const from = d.previousVersion !== null && d.previousVersion !== d.version ? `${d.previousVersion} → ` : '';
  return `${isRollback(d) ? 'rollback ' : ''}${from}${d.version}`;
}

/** The window a deploy is judged in: 2 minutes before it to 3 minutes after (epoch ms). */
export function aroundMs(ms: number, beforeMs = 2 * 60_000, afterMs = 3 * 60_000): { from: string; to: string } {
  return { from: String(Math.round(ms - beforeMs)), to: String(Math.round(ms + afterMs)) };
}

/** The service's charts zoomed to a moment (e.g. a deploy's start or an incident's first bad request). */
export function chartsAt(service: string, ms: number, afterMs?: number): string {
  return href('/services', { service, ...aroundMs(ms, 2 * 60_000, afterMs) });
}

export function deployMarker(d: Deploy): ChartMarker {
  const verdict = VERDICT[d.status];
  return {
    timeMs: Date.parse(d.startedAt),
    label: deployDirection(d) + (verdict === undefined ? '' : ` ${verdict.split(' ')[0]}`),
    title: `${deployDirection(d)}: ${verdict ?? d.status} (open the verdict)`,
    tone: TONE[d.status] ?? 'neutral',
    href: href(`/deploys/${encodeURIComponent(d.id)}`),
    // Recorded deploys and rollbacks before versions tightloop only saw in telemetry.
    priority: (d.source === 'implicit' ? 0 : 1) + (isRollback(d) || d.status === 'failed' || d.status === 'rolled_back' ? 1 : 0),
  };
}
