import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api } from './api';
import { useRefreshTick } from './hooks';

/**
 * Counts on the navigation: firing alerts, open incidents, requests waiting for a decision
 * (access requests and action runs pending approval). Read when the user signs in, on every
 * refresh tick and once a minute — not on every navigation (a view's own query stays the only one).
 */

export interface NavCounts { firing: number; open: number; pending: number }

const count = async (path: string, params: Record<string, string | number>, key: string): Promise<number> => {
  try {
    const r = await api<Record<string, unknown[]>>(path, { params });
    return Array.isArray(r[key]) ? r[key].length : 0;
  } catch {
    return 0;
  }
};

export function useNavCounts(authed: boolean): NavCounts | null {
  const [c, setC] = useState<NavCounts | null>(null);
  const tick = useRefreshTick();
  const [minute, setMinute] = useState(0);
  useEffect(() => {
    const t = setInterval(() => setMinute((m) => m + 1), 60_000);
    return () => clearInterval(t);
  }, []);
  useEffect(() => {
    if (!authed) return;
    let live = true;
    void Promise.all([
      count('/api/alerts', { state: 'firing', limit: 500 }, 'alerts'),
      count('/api/incidents', { status: 'open', limit: 500 }, 'incidents'),
      count('/api/access/requests', { status: 'pending', limit: 500 }, 'requests'),
      count('/api/actions/runs', { status: 'pending_approval', limit: 500 }, 'runs'),
    ]).then(([firing, open, requests, runs]) => { if (live) setC({ firing, open, pending: requests + runs }); });
    return () => { live = false; };
  }, [authed, tick, minute]);
  return c;
}

const FOR: Record<string, { key: keyof NavCounts; label: string }> = {
  '/alerts': { key: 'firing', label: 'firing' },
  '/incidents': { key: 'open', label: 'open' },
  '/access': { key: 'pending', label: 'waiting for approval' },
};

export function NavBadges(props: { path: string; counts: NavCounts | null }): JSX.Element | null {
  const f = FOR[props.path];
  const n = f === undefined || props.counts === null ? 0 : props.counts[f.key];
  if (f === undefined || n === 0) return null;
  return <span class="nav-badge" data-nav-count={f.key} aria-label={`${n} ${f.label}`}>{n}</span>;
}
