/** Parses `90s`, `30m`, `1h`, `2d` (or plain seconds) into seconds; undefined when malformed. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d+)\s*(s|m|h|d)?$/i.exec(text.trim());
  if (m === null) return undefined;
  const n = Number(m[1]);
  const unit = (m[2] ?? 's').toLowerCase();
  const seconds = n * (unit === 'd' ? 86_400 : unit === 'h' ? 3_600 : unit === 'm' ? 60 : 1);
  return Number.isSafeInteger(seconds) && seconds > 0 ? seconds : undefined;
}
