/**
 * The demo reads tightloop's state through the same REST API as the console and the CLI.
 * `missing` is true when the route does not exist in this build (a pillar not there yet), so a
 * step can say "not available" instead of pretending.
 */

export interface ApiAnswer<T> {
  status: number;
  body: T;
  missing: boolean;
}

export type DemoApi = <T = unknown>(path: string, init?: { method?: string; body?: unknown; token?: string }) => Promise<ApiAnswer<T>>;

export function demoApi(url: string, adminToken: string): DemoApi {
  return async <T>(path: string, init: { method?: string; body?: unknown; token?: string } = {}): Promise<ApiAnswer<T>> => {
    const res = await fetch(url + path, {
      method: init.method ?? 'GET',
      headers: { authorization: `Bearer ${init.token ?? adminToken}`, ...(init.body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    let body: unknown = null;
    try {
      body = text === '' ? null : JSON.parse(text);
    } catch { // a body that is not JSON is kept as text for the caller to show
      body = text;
    }
    // The app's answer for an unknown route (as opposed to a known route's 404 for a missing id).
    const missing = res.status === 404 && /"message":"no route /.test(text);
    return { status: res.status, body: body as T, missing };
  };
}
