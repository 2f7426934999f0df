/**
 * Plain-text columns for list commands: a header row in capitals, cells padded to the widest
 * value, two spaces between columns, the last column unpadded. Long free text (reasons,
 * conditions) is cut to `max` characters with an ellipsis so a row stays one line.
 */
export function columns(headers: string[], rows: Array<Array<string | number | null | undefined>>, max = 60): string {
  const cell = (v: string | number | null | undefined): string => {
    const s = v === null || v === undefined || v === '' ? '-' : String(v).replace(/\s+/g, ' ');
    return s.length > max ? `${s.slice(0, max - 1)}…` : s;
  };
  const body = rows.map((r) => r.map(cell));
  const widths = headers.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? '').length)));
  const line = (vals: string[]): string => vals.map((v, i) => (i === vals.length - 1 ? v : v.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(headers.map((h) => h.toUpperCase())), ...body.map(line)].join('\n') + '\n';
}

/** An ISO time as `2026-12-07 06:01:14` (UTC, seconds): short enough for a column. */
export function shortTime(iso: string | null | undefined): string {
  return iso === null || iso === undefined ? '-' : iso.replace('T', ' ').slice(0, 19);
}
