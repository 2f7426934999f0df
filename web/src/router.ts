import { useEffect, useState } from 'preact/hooks';

/**
 * Every view's state lives in the URL (path + query), so any screen can be shared or reloaded.
 * `navigate` pushes a new entry; `patch` replaces query parameters of the current one.
 */

export interface Route {
  path: string;
  query: URLSearchParams;
}

const listeners = new Set<() => void>();

function current(): Route {
  return { path: location.pathname, query: new URLSearchParams(location.search) };
}

export function navigate(path: string, params: Record<string, string | undefined> = {}, replace = false): void {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') u.set(k, v);
  const s = u.toString();
  const url = path + (s === '' ? '' : `?${s}`);
  if (url === location.pathname + location.search) return;
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  for (const l of listeners) l();
}

/** Sets (or removes, with undefined/'') query parameters of the current URL. */
export function patch(params: Record<string, string | undefined>, replace = false): void {
  const q = new URLSearchParams(location.search);
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === '') q.delete(k);
    else q.set(k, v);
  }
  navigate(location.pathname, Object.fromEntries(q), replace);
}

/** Link target keeping the global time range. */
export function href(path: string, params: Record<string, string | undefined> = {}): string {
  const q = new URLSearchParams();
  const cur = new URLSearchParams(location.search);
  for (const k of ['from', 'to', 'refresh']) {
    const v = cur.get(k);
    if (v !== null) q.set(k, v);
  }
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, v);
  const s = q.toString();
  return path + (s === '' ? '' : `?${s}`);
}

export function useRoute(): Route {
  const [route, setRoute] = useState(current);
  useEffect(() => {
    const update = (): void => setRoute(current());
    listeners.add(update);
    addEventListener('popstate', update);
    return () => {
      listeners.delete(update);
      removeEventListener('popstate', update);
    };
  }, []);
  return route;
}

/** Click handler for in-app links: client-side navigation unless a modifier asks for a new tab. */
export function onLinkClick(e: MouseEvent): void {
  const a = (e.target as HTMLElement).closest('a');
  if (a === null || a.target !== '' || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const url = new URL(a.href);
  if (url.origin !== location.origin || url.pathname.startsWith('/api/')) return;
  e.preventDefault();
  history.pushState(null, '', url.pathname + url.search);
  for (const l of listeners) l();
}
