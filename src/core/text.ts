/**
 * A value of unknown type (JSON data of a timeline entry, a span attribute, a database cell) as
 * display text. Scalars read as `String()` would; objects and arrays as their JSON, never as
 * "[object Object]"; null and undefined (and values JSON cannot hold) as `absent`.
 */
export function textOf(v: unknown, absent = ''): string {
  switch (typeof v) {
    case 'string':
      return v;
    case 'number':
    case 'boolean':
    case 'bigint':
      return String(v);
    case 'object':
      return v === null ? absent : (JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x)) ?? absent);
    default:
      return absent;
  }
}
