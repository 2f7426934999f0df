import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from './api';

/** Refresh ticks: views re-fetch when the global refresh interval fires or the user asks. */
let tick = 0;
const tickListeners = new Set<(t: number) => void>();
export function bumpRefresh(): void {
  tick++;
  for (const l of tickListeners) l(tick);
}
export function useRefreshTick(): number {
  const [t, setT] = useState(tick);
  useEffect(() => {
    tickListeners.add(setT);
    return () => { tickListeners.delete(setT); };
  }, []);
  return t;
}

export interface Loaded<T> {
  data: T | undefined;
  error: ApiError | Error | undefined;
  loading: boolean;
  reload: () => void;
}

/**
 * Loads data for a view. Keeps showing the previous data while a refresh is in flight, so live
 * updates never blank the screen (no layout shift).
 */
export function useLoad<T>(load: (signal: AbortSignal) => Promise<T>, deps: unknown[]): Loaded<T> {
  const [state, setState] = useState<{ data: T | undefined; error: Error | undefined; loading: boolean }>({ data: undefined, error: undefined, loading: true });
  const [n, setN] = useState(0);
  const refresh = useRefreshTick();
  const latest = useRef(0);
  useEffect(() => {
    const ctl = new AbortController();
    const id = ++latest.current;
    setState((s) => ({ ...s, loading: true }));
    load(ctl.signal).then(
      (data) => { if (id === latest.current) setState({ data, error: undefined, loading: false }); },
      (error: Error) => { if (id === latest.current && error.name !== 'AbortError') setState((s) => ({ data: s.data, error, loading: false })); },
    );
    return () => ctl.abort();
  }, [...deps, n, refresh]);
  return { ...state, reload: () => setN((x) => x + 1) };
}
