import { useEffect, useState } from 'preact/hooks';
import { api } from './api';

/**
 * Who is signed in (GET /api/me) and what their role allows, so views show only the controls
 * the user can use (the role model: src/http/roles.ts). Until it is known, or if it cannot be
 * read, the console assumes the least (viewer): controls appear once the role allows them.
 */

export interface Me { id: string; name: string; role: string }
const RANK: Record<string, number> = { viewer: 1, member: 2, admin: 3 };

let me: Me | null = null;
const listeners = new Set<(m: Me | null) => void>();

export async function loadMe(): Promise<void> {
  try {
    me = await api<Me>('/api/me');
  } catch {
    me = null;
  }
  for (const l of listeners) l(me);
}

export function clearMe(): void {
  me = null;
  for (const l of listeners) l(me);
}

export function useMe(): Me | null {
  const [m, setM] = useState(me);
  useEffect(() => {
    listeners.add(setM);
    setM(me);
    return () => { listeners.delete(setM); };
  }, []);
  return m;
}

/** Does the signed-in user hold at least `needed`? (false while unknown: fail closed) */
export function can(m: Me | null, needed: 'member' | 'admin'): boolean {
  return m !== null && (RANK[m.role] ?? 0) >= RANK[needed];
}
