/** Loopback peers (IPv4 127/8, ::1 and IPv4-mapped forms). */
export function isLoopback(address: string): boolean {
  const a = address.startsWith('::ffff:') ? address.slice(7) : address;
  return a === '::1' || a.startsWith('127.') || a === 'localhost';
}
