import { render, type JSX } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, clearToken, getToken, setToken, setUnauthorizedHandler } from './api';
import { bumpRefresh } from './hooks';
import { href, navigate, onLinkClick, patch, useRoute, type Route } from './router';
import { DEFAULT_FROM, RANGES, rangeOf, type TimeRange } from './time';
import { clearMe, loadMe } from './me';
import { NavBadges, useNavCounts } from './nav-badges';
import { GlobalSearch } from './search';
import './styles.css';
import { AccessView } from './views/access';
import { AlertsView } from './views/alerts';
import { AuditView } from './views/audit';
import { DeploysView } from './views/deploys';
import { ErrorsView } from './views/errors';
import { IncidentsView } from './views/incidents';
import { LogsView } from './views/logs';
import { LoopView } from './views/loop';
import { ServicesView } from './views/services';
import { TracesView } from './views/traces';

/** The console shell: login, navigation, time range, refresh, theme; one view per pillar. */

export interface ViewProps {
  route: Route;
  range: TimeRange;
  theme: string;
}

const VIEWS: Array<{ path: string; label: string; view: (p: ViewProps) => JSX.Element }> = [
  { path: '/services', label: 'Services', view: ServicesView },
  { path: '/traces', label: 'Traces', view: TracesView },
  { path: '/logs', label: 'Logs', view: LogsView },
  { path: '/errors', label: 'Errors', view: ErrorsView },
  { path: '/alerts', label: 'Alerts', view: AlertsView },
  { path: '/deploys', label: 'Deploys', view: DeploysView },
  { path: '/incidents', label: 'Incidents', view: IncidentsView },
  { path: '/access', label: 'Access', view: AccessView },
  { path: '/audit', label: 'Audit', view: AuditView },
  { path: '/loop', label: 'Loop', view: LoopView },
];

const REFRESH = [{ value: '', label: 'Off' }, { value: '10s', label: '10 s' }, { value: '30s', label: '30 s' }, { value: '1m', label: '1 min' }];
const REFRESH_MS: Record<string, number> = { '10s': 10_000, '30s': 30_000, '1m': 60_000 };

/** `datetime-local` value (local time, seconds) of an epoch ms. */
function toLocalInput(ms: number): string {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
  return d.toISOString().slice(0, 19);
}

function setAbsolute(which: 'from' | 'to', value: string): void {
  const ms = new Date(value).getTime();
  if (Number.isFinite(ms)) patch({ [which]: String(ms) });
}

function initialTheme(): string {
  const saved = localStorage.getItem('tightloop.theme');
  if (saved === 'light' || saved === 'dark') return saved;
  return matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

function Login(props: { onLogin: () => void }): JSX.Element {
  const [token, setTok] = useState('');
  const [remember, setRemember] = useState(false);
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  // The server names its own admin token file (e.g. .tightloop-demo/ under the demo), when it
  // lies under the server's working directory; otherwise the page names it generically.
  const [tokenFile, setTokenFile] = useState('<data-dir>/admin.token');
  useEffect(() => {
    const ac = new AbortController();
    fetch('/api/health', { signal: ac.signal })
      .then(async (res) => (res.ok ? ((await res.json()) as { adminTokenFile?: unknown }) : {}))
      .then((h) => { if (typeof h.adminTokenFile === 'string') setTokenFile(h.adminTokenFile); })
      .catch(() => undefined); // a hint only: the generic name stays
    return () => ac.abort();
  }, []);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    setToken(token.trim(), remember);
    try {
      await api('/api/services', { params: { from: 'now-1m' } });
      props.onLogin();
    } catch (err) {
      clearToken();
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="login" id="main">
      <form onSubmit={submit} class="panel login-form" aria-labelledby="login-h">
        <h1 id="login-h">tightloop</h1>
        <p class="muted">Sign in with an API token (the admin token is in <code class="token-file">{tokenFile}</code>, or create one with <code>tightloop token create</code>).</p>
        <label class="field"><span>API token</span>
          <input type="password" name="token" autocomplete="current-password" required value={token} onInput={(e) => setTok(e.currentTarget.value)} autoFocus />
        </label>
        <label class="check"><input type="checkbox" checked={remember} onChange={(e) => setRemember(e.currentTarget.checked)} /> Remember on this browser</label>
        {error !== undefined && <p class="error-box" role="alert">{error}</p>}
        <button type="submit" class="primary" disabled={busy}>Sign in</button>
      </form>
    </main>
  );
}

function App(): JSX.Element {
  const route = useRoute();
  const [authed, setAuthed] = useState(getToken() !== null);
  const [theme, setTheme] = useState(initialTheme);
  // A refresh (timer or button) moves relative ranges on: `rev` counts them.
  const [rev, setRev] = useState(0);
  useEffect(() => { setUnauthorizedHandler(() => { clearToken(); setAuthed(false); }); }, []);
  useEffect(() => { if (authed) void loadMe(); else clearMe(); }, [authed]);
  const counts = useNavCounts(authed);
  useEffect(() => {
    document.documentElement.dataset.theme = theme;
    localStorage.setItem('tightloop.theme', theme);
  }, [theme]);
  useEffect(() => {
    if (route.path === '/' || route.path === '') navigate('/services', Object.fromEntries(route.query), true);
  }, [route.path]);
  const refresh = route.query.get('refresh') ?? '';
  useEffect(() => {
    const ms = REFRESH_MS[refresh];
    if (ms === undefined) return;
    const t = setInterval(() => { setRev((r) => r + 1); bumpRefresh(); }, ms);
    return () => clearInterval(t);
  }, [refresh]);
  // The range is resolved in the same render as the URL change or refresh that moves it: a view
  // then mounts with its final range and queries once (resolving it in an effect afterwards made
  // the first request carry the previous range, be aborted and be sent again).
  const clock = useRef({ key: '', now: 0 });
  const clockKey = `${route.path}?${route.query.toString()}#${rev}`;
  if (clock.current.key !== clockKey) clock.current = { key: clockKey, now: Date.now() };
  const now = clock.current.now;

  if (!authed) return <Login onLogin={() => setAuthed(true)} />;
  const range = rangeOf(route.query, now);
  const active = VIEWS.find((v) => route.path === v.path || route.path.startsWith(v.path + '/')) ?? VIEWS[0];
  const View = active.view;
  const from = route.query.get('from') ?? DEFAULT_FROM;
  const custom = !RANGES.some((r) => r.value === from) || (route.query.get('to') ?? 'now') !== 'now';
  return (
    <div class="shell" onClick={onLinkClick}>
      <a href="#main" class="skip">Skip to content</a>
      <header class="topbar">
        <span class="brand">tightloop</span>
        <nav aria-label="Views">
          <ul>
            {VIEWS.map((v) => (
              <li key={v.path}><a href={href(v.path)} aria-current={v === active ? 'page' : undefined}>{v.label}<NavBadges path={v.path} counts={counts} /></a></li>
            ))}
          </ul>
        </nav>
        <GlobalSearch />
        <div class="controls">
          <label class="field inline"><span>Time range</span>
            <select aria-label="Time range" value={custom ? 'custom' : from} onChange={(e) => {
              const v = e.currentTarget.value;
              if (v === 'custom-pick') patch({ from: String(range.fromMs), to: String(range.toMs) });
              else if (v !== 'custom') patch({ from: v, to: undefined });
            }}>
              {custom && <option value="custom">Custom</option>}
              {!custom && <option value="custom-pick">Custom…</option>}
              {RANGES.map((r) => <option key={r.value} value={r.value}>{r.label}</option>)}
            </select>
          </label>
          {custom && (
            <>
              <label class="field inline"><span>From</span>
                <input aria-label="From" type="datetime-local" step="1" value={toLocalInput(range.fromMs)} onChange={(e) => setAbsolute('from', e.currentTarget.value)} />
              </label>
              <label class="field inline"><span>To</span>
                <input aria-label="To" type="datetime-local" step="1" value={toLocalInput(range.toMs)} onChange={(e) => setAbsolute('to', e.currentTarget.value)} />
              </label>
            </>
          )}
          <label class="field inline"><span>Refresh</span>
            <select aria-label="Refresh" value={refresh} onChange={(e) => patch({ refresh: e.currentTarget.value || undefined })}>
              {REFRESH.map((r) => <option key={r.value} value={r.value}>{r.label}</option>)}
            </select>
          </label>
          <button type="button" onClick={() => { setRev((r) => r + 1); bumpRefresh(); }} aria-label="Refresh now">↻</button>
          <button type="button" onClick={() => setTheme(theme === 'dark' ? 'light' : 'dark')} aria-label={`Switch to ${theme === 'dark' ? 'light' : 'dark'} theme`}>
            {theme === 'dark' ? '☀' : '☾'}
          </button>
          <button type="button" onClick={() => { clearToken(); setAuthed(false); }}>Sign out</button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {/* `/` redirects (above) before any view queries with a range it would then drop. */}
        {route.path !== '/' && route.path !== '' && <View route={route} range={range} theme={theme} />}
      </main>
    </div>
  );
}

const root = document.getElementById('app');
if (root !== null) render(<App />, root);
