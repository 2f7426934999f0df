/**
 * A generated corpus for the masking detectors (issue 15): per PII type, values in many
 * real-world formats, alone or inside text; and non-PII look-alikes (order ids, timestamps,
 * versions, UUIDs, amounts, IP addresses for the non-IP detectors) that must not be masked.
 * Deterministic (seeded), so the test and the benchmark see the same values.
 */

export type PiiType = 'email' | 'phone' | 'credit-card' | 'us-ssn' | 'iban' | 'ipv4' | 'ipv6';
export const PII_TYPES: readonly PiiType[] = ['email', 'phone', 'credit-card', 'us-ssn', 'iban', 'ipv4', 'ipv6'];

export interface Sample {
  /** The full value a column would hold. */
  text: string;
  /** Where the PII sits in it. */
  start: number;
  end: number;
}

/** mulberry32: small, fast, seeded. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type R = () => number;
const int = (r: R, lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo + 1));
const pick = <T>(r: R, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
const digits = (r: R, n: number): string => Array.from({ length: n }, () => String(int(r, 0, 9))).join('');
const letters = (r: R, n: number, set = 'abcdefghijklmnopqrstuvwxyz'): string => Array.from({ length: n }, () => set[int(r, 0, set.length - 1)]).join('');

const FIRST = ['jane', 'john', 'maria', 'li', 'ahmed', 'olga', 'pierre', 'sven', 'aiko', 'carlos', 'fatima', 'noah', 'emma', 'lucas', 'mia'];
const LAST = ['doe', 'smith', 'garcia', 'wang', 'khan', 'ivanova', 'dubois', 'larsen', 'tanaka', 'silva', 'okafor', 'muller', 'rossi'];
const DOMAINS = ['example.com', 'example.org', 'mail.example.net', 'corp.example.co.uk', 'uni.example.edu', 'example.de', 'post.example.io', 'example.fr'];

function localPart(r: R): string {
  const f = pick(r, FIRST);
  const l = pick(r, LAST);
  switch (int(r, 0, 5)) {
    case 0: return `${f}.${l}`;
    case 1: return `${f}${l}${int(r, 1, 99)}`;
    case 2: return `${f[0]}${l}`;
    case 3: return `${f}_${l}+${letters(r, 4)}`;
    case 4: return `${f}.${l}`.toUpperCase();
    default: return `${f}-${l}.${digits(r, 2)}`;
  }
}

function email(r: R): string {
  const local = localPart(r);
  const domain = pick(r, DOMAINS);
  if (r() < 0.55) return `${local}@${domain}`;
  // The @ (and sometimes the dots) spelt otherwise.
  const at = pick(r, [' at ', ' AT ', '(at)', ' [at] ', '{at}', '%40', '&#64;', '\uFF20', '#', '!', '|', '~', '*', '=', '$']);
  const dotted = r() < 0.3 ? domain.replace(/\./g, pick(r, [' dot ', ' [dot] ', '(dot)', ' DOT '])) : domain;
  return `${local}${at}${dotted}`;
}

function nanp(r: R): [string, string, string] {
  return [`${int(r, 2, 9)}${digits(r, 2)}`, `${int(r, 2, 9)}${digits(r, 2)}`, digits(r, 4)];
}

function phone(r: R): string {
  const [a, b, c] = nanp(r);
  switch (int(r, 0, 13)) {
    case 0: return `(${a}) ${b}-${c}`;
    case 1: return `${a}-${b}-${c}`;
    case 2: return `${a}.${b}.${c}`;
    case 3: return `${a} ${b} ${c}`;
    case 4: return `+1 ${a} ${b} ${c}`;
    case 5: return `+1-${a}-${b}-${c}`;
    case 6: return `1-${a}-${b}-${c}`;
    case 7: return `+1${a}${b}${c}`;
    case 8: return `+44 ${int(r, 20, 79)} ${digits(r, 4)} ${digits(r, 4)}`;
    case 9: return `+49 ${int(r, 30, 89)} ${digits(r, 7)}`;
    case 10: return `+33 ${int(r, 1, 9)} ${digits(r, 2)} ${digits(r, 2)} ${digits(r, 2)} ${digits(r, 2)}`;
    case 11: return `0044 ${int(r, 20, 79)} ${digits(r, 4)} ${digits(r, 4)}`;
    case 12: return `07${digits(r, 3)} ${digits(r, 6)}`;
    default: return `+${int(r, 30, 99)} (${int(r, 1, 9)}) ${digits(r, 3)} ${digits(r, 4)}`;
  }
}

/** A bare-digit phone number: only recognisable as the whole value or after a word. */
function barePhone(r: R): { text: string; pii: string } {
  const [a, b, c] = nanp(r);
  const pii = `${r() < 0.3 ? '1' : ''}${a}${b}${c}`;
  return r() < 0.5 ? { text: pii, pii } : { text: `${pick(r, ['tel: ', 'Phone ', 'mobile:', 'call '])}${pii}`, pii };
}

function luhnDigit(body: string): string {
  let sum = 0;
  for (let i = 0; i < body.length; i++) {
    let d = body.charCodeAt(body.length - 1 - i) - 48;
    if (i % 2 === 0) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return String((10 - (sum % 10)) % 10);
}

function card(r: R): string {
  const [prefix, len] = pick(r, [['4', 16], ['51', 16], ['55', 16], ['2221', 16], ['2720', 16], ['34', 15], ['37', 15], ['6011', 16], ['65', 16], ['35', 16], ['4', 13], ['62', 19]] as const);
  const body = prefix + digits(r, len - prefix.length - 1);
  const n = body + luhnDigit(body);
  const sep = pick(r, ['', ' ', '-']);
  if (sep === '') return n;
  if (len === 15) return `${n.slice(0, 4)}${sep}${n.slice(4, 10)}${sep}${n.slice(10)}`;
  return n.match(/.{1,4}/g)?.join(sep) ?? n;
}

function ssnDigits(r: R): string {
  let area = int(r, 1, 899);
  if (area === 666) area = 665;
  return `${String(area).padStart(3, '0')}${String(int(r, 1, 99)).padStart(2, '0')}${String(int(r, 1, 9999)).padStart(4, '0')}`;
}

function ssn(r: R): { text: string; pii: string } {
  const d = ssnDigits(r);
  switch (int(r, 0, 4)) {
    case 0:
    case 1: {
      const pii = `${d.slice(0, 3)}-${d.slice(3, 5)}-${d.slice(5)}`;
      return { text: pii, pii };
    }
    case 2: {
      const pii = `${d.slice(0, 3)} ${d.slice(3, 5)} ${d.slice(5)}`;
      return { text: pii, pii };
    }
    case 3:
      return { text: d, pii: d };
    default:
      return { text: `${pick(r, ['SSN: ', 'ssn ', 'SSN#', 'Social Security No. '])}${d}`, pii: d };
  }
}

const IBAN_COUNTRIES: readonly [string, number][] = [['DE', 18], ['GB', 18], ['FR', 23], ['ES', 20], ['IT', 23], ['NL', 14], ['BE', 12], ['CH', 17], ['AT', 16], ['PL', 24]];

function iban(r: R): string {
  const [cc, n] = pick(r, IBAN_COUNTRIES);
  const bban = cc === 'GB' || cc === 'NL' ? letters(r, 4, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ') + digits(r, n - 4) : digits(r, n);
  const numeric = (bban + cc + '00').replace(/[A-Z]/g, (ch) => String(ch.charCodeAt(0) - 55));
  let rem = 0;
  for (const ch of numeric) rem = (rem * 10 + Number(ch)) % 97;
  const check = String(98 - rem).padStart(2, '0');
  const compact = cc + check + bban;
  return r() < 0.5 ? compact : (compact.match(/.{1,4}/g)?.join(' ') ?? compact);
}

function ipv4(r: R): string {
  return [int(r, 1, 223), int(r, 0, 255), int(r, 0, 255), int(r, 1, 254)].join('.');
}

function ipv6(r: R): string {
  const groups = Array.from({ length: 8 }, () => int(r, 0, 0xffff).toString(16));
  if (r() < 0.4) return groups.join(':');
  if (r() < 0.5) return `2001:db8::${groups[6]}:${groups[7]}`;
  return `fe80::${groups[5]}:${groups[6]}%eth0`;
}

const CONTEXTS: readonly ((v: string) => string)[] = [
  (v) => v,
  (v) => v,
  (v) => `contact: ${v}`,
  (v) => `${v}; updated by batch`,
  (v) => `{"value": "${v}", "ok": true}`,
  (v) => `note (${v}) pending`,
];

function place(r: R, text: string, pii = text, whole = false): Sample {
  const wrapped = whole ? text : pick(r, CONTEXTS)(text);
  const at = wrapped.indexOf(pii);
  return { text: wrapped, start: at, end: at + pii.length };
}

/** `n` PII samples of one type. */
export function piiSamples(type: PiiType, n: number, seed = 15): Sample[] {
  const r = rng(seed * 1000 + PII_TYPES.indexOf(type));
  const out: Sample[] = [];
  for (let i = 0; i < n; i++) {
    switch (type) {
      case 'email': out.push(place(r, email(r))); break;
      case 'phone': {
        if (r() < 0.2) {
          const b = barePhone(r);
          out.push(place(r, b.text, b.pii, true));
        } else out.push(place(r, phone(r)));
        break;
      }
      case 'credit-card': out.push(place(r, card(r))); break;
      case 'us-ssn': {
        const s = ssn(r);
        out.push(place(r, s.text, s.pii, s.text === s.pii && /^\d+$/.test(s.text)));
        break;
      }
      case 'iban': out.push(place(r, iban(r))); break;
      case 'ipv4': out.push(place(r, ipv4(r))); break;
      case 'ipv6': out.push(place(r, ipv6(r))); break;
    }
  }
  return out;
}

/** Values that look like PII to a careless pattern but are not. */
export function lookAlikes(n: number, seed = 15): string[] {
  const r = rng(seed * 7919);
  const hex = (k: number): string => letters(r, k, '0123456789abcdef');
  const makers: (() => string)[] = [
    () => `ORD-${int(r, 2019, 2026)}-${digits(r, 6)}`,
    () => `#${int(r, 100000, 9999999)}`,
    () => `INV${digits(r, 8)}`,
    () => String(int(r, 1, 99_999_999)),
    () => `order ${digits(r, 7)} shipped`,
    () => new Date(int(r, 1_500_000_000, 1_800_000_000) * 1000).toISOString(),
    () => new Date(int(r, 1_500_000_000, 1_800_000_000) * 1000).toISOString().replace('T', ' ').replace('Z', '+00'),
    () => String(int(r, 1_500_000_000, 1_800_000_000)),
    () => String(int(r, 1_500_000_000, 1_800_000_000) * 1000 + int(r, 0, 999)),
    () => `${int(r, 0, 20)}.${int(r, 0, 40)}.${int(r, 0, 300)}`,
    () => `v${int(r, 0, 9)}.${int(r, 0, 20)}.${int(r, 0, 99)}-rc.${int(r, 1, 9)}`,
    () => `${int(r, 1, 9)}.${int(r, 0, 9)}.${int(r, 1000, 99999)}.${int(r, 1000, 9999)}`,
    () => `${hex(8)}-${hex(4)}-4${hex(3)}-a${hex(3)}-${hex(12)}`,
    () => hex(32),
    () => `$${int(r, 1, 99999)}.${digits(r, 2)}`,
    () => `${int(r, 1, 9999)},${digits(r, 2)} EUR`,
    () => `${int(r, 1, 28)}/${int(r, 1, 12)}/${int(r, 1990, 2030)}`,
    () => `${int(r, 0, 23)}:${String(int(r, 0, 59)).padStart(2, '0')}:${String(int(r, 0, 59)).padStart(2, '0')}`,
    () => `sha256:${hex(64)}`,
    () => `build ${digits(r, 5)} of ${pick(r, FIRST)}'s branch`,
    () => `${pick(r, FIRST)} ${pick(r, LAST)}`,
    () => `Visit www.${pick(r, DOMAINS)} for details.`,
    () => `report_${digits(r, 4)}.pdf`,
    () => `lat ${int(r, -89, 89)}.${digits(r, 6)}, lon ${int(r, -179, 179)}.${digits(r, 6)}`,
    () => `SKU ${letters(r, 3, 'ABCDEFGHJKLMNPQRSTUVWXYZ')}-${digits(r, 4)}-${digits(r, 2)}`,
    () => `tracking 1Z${letters(r, 16, '0123456789ABCDEFGHJKLMNPRSTUVWXYZ')}`,
    () => `${digits(r, 3)}-${digits(r, 3)}`,
    () => `id=${digits(r, 6)}&page=${int(r, 1, 50)}`,
  ];
  return Array.from({ length: n }, () => pick(r, makers)());
}

/** IPs are PII to the IP detectors but look-alikes to every other detector. */
export function ipLookAlikes(n: number, seed = 15): string[] {
  const r = rng(seed * 104729);
  return Array.from({ length: n }, () => (r() < 0.5 ? ipv4(r) : ipv6(r)));
}
