import { z } from 'zod';

/**
 * Parses `90s`, `30m`, `12h`, `2d`, `4w` (or plain seconds) into whole seconds; undefined when
 * malformed, zero or too large. Shared by access grants and API token expiry.
 */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d+)\s*([smhdw])?$/i.exec(text.trim());
  if (m === null) return undefined;
  const unit = { s: 1, m: 60, h: 3_600, d: 86_400, w: 604_800 }[(m[2] ?? 's').toLowerCase() as 's' | 'm' | 'h' | 'd' | 'w'];
  const seconds = Number(m[1]) * unit;
  return Number.isSafeInteger(seconds) && seconds > 0 ? seconds : undefined;
}

/** A body field: whole seconds, or a duration text (`parseDuration`); `hint` names valid forms. */
export function durationField(hint: string) {
  return z.union([z.number().int().positive(), z.string()]).transform((v, ctx) => {
    const s = typeof v === 'number' ? v : parseDuration(v);
    if (s === undefined) {
      ctx.addIssue({ code: 'custom', message: hint });
      return z.NEVER;
    }
    return s;
  });
}
