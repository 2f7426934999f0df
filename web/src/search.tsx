import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { api } from './api';
import { href, navigate } from './router';

/**
 * The global search box: a trace id, an error group id, a deploy or incident id, or a service
 * name opens that object. Ids are told apart by asking the server (an error group id and a trace
 * id are both 32 hex digits); nothing is guessed without an answer.
 */

const HEX32 = /^[0-9a-f]{32}$/i;
const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/i;

const exists = (path: string): Promise<boolean> => api(path).then(() => true, () => false);

/** Where a search term leads, or null (with the reason) when nothing matches. */
export async function resolveSearch(raw: string): Promise<{ path: string; params?: Record<string, string> } | { none: string }> {
  const term = raw.trim();
  if (term === '') return { none: 'Type a trace id, an error group, a deploy, an incident or a service.' };
  if (HEX32.test(term)) {
    const id = term.toLowerCase();
    if (await exists(`/api/errors/${id}`)) return { path: `/errors/${id}` };
    if (await exists(`/api/traces/${id}`)) return { path: `/traces/${id}` };
    return { none: `No error group or trace ${id}.` };
  }
  if (ULID.test(term)) {
    const id = term.toUpperCase();
    const [deploy, incident] = await Promise.all([exists(`/api/deploys/${id}`), exists(`/api/incidents/${id}`)]);
    if (deploy) return { path: `/deploys/${id}` };
    if (incident) return { path: `/incidents/${id}` };
    return { none: `No deploy or incident ${id}.` };
  }
  const { services } = await api<{ services: Array<{ service: string }> }>('/api/services', { params: { from: 'now-7d' } });
  const names = services.map((s) => s.service);
  const match = names.find((n) => n === term) ?? names.find((n) => n.toLowerCase() === term.toLowerCase())
    ?? (names.filter((n) => n.toLowerCase().includes(term.toLowerCase())).length === 1 ? names.find((n) => n.toLowerCase().includes(term.toLowerCase())) : undefined);
  if (match !== undefined) return { path: '/services', params: { service: match } };
  return { none: `No trace, error group, deploy, incident or service matches “${term}”.` };
}

export function GlobalSearch(): JSX.Element {
  const [term, setTerm] = useState('');
  const [msg, setMsg] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setMsg(undefined);
    try {
      const r = await resolveSearch(term);
      if ('none' in r) setMsg(r.none);
      else {
        setTerm('');
        const target = new URL(href(r.path, r.params), location.origin);
        navigate(target.pathname, Object.fromEntries(target.searchParams));
      }
    } catch (err) {
      setMsg((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="global-search" role="search" aria-label="Go to" onSubmit={submit}>
      <input type="search" aria-label="Search: trace id, error group, deploy, incident or service" placeholder="trace id, error group, deploy, service…"
        value={term} onInput={(e) => { setTerm(e.currentTarget.value); setMsg(undefined); }} aria-describedby={msg === undefined ? undefined : 'search-msg'} />
      <button type="submit" disabled={busy}>Go</button>
      {msg !== undefined && <span id="search-msg" class="search-msg" role="status">{msg}</span>}
    </form>
  );
}
