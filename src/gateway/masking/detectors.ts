import { isIPv6 } from 'node:net';

/**
 * Content detectors: find personal data and secrets inside a value, whatever the query did to
 * produce it (aliases, casts, concat, row_to_json, string_agg). Each detector is a candidate
 * pattern plus a validator (Luhn, IBAN mod 97, SSN ranges, ...) that keeps ordinary numbers
 * and words from being masked. All patterns run as one combined expression, so a value is
 * scanned once; a candidate that fails its validator is skipped as a whole (its digits are not
 * re-matched as something smaller).
 *
 * Matches never include quotes, backslashes, tabs or commas, so masking a match inside JSON,
 * an array literal or a COPY line keeps that text well-formed.
 */

export const DETECTOR_IDS = ['jwt', 'api-key', 'email', 'iban', 'credit-card', 'us-ssn', 'phone', 'ipv4', 'ipv6'] as const;
export type DetectorId = (typeof DETECTOR_IDS)[number];

interface Detector {
  id: DetectorId;
  pattern: string;
  validate(match: string): boolean;
}

function digitsOf(s: string): string {
  return s.replace(/\D/g, '');
}

export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

/** ISO 13616: move the first four characters to the end, letters to numbers, mod 97 = 1. */
export function ibanValid(candidate: string): boolean {
  const s = candidate.replace(/ /g, '').toUpperCase();
  if (s.length < 15 || s.length > 34) return false;
  const rearranged = s.slice(4) + s.slice(0, 4);
  let rem = 0;
  for (const ch of rearranged) {
    const code = ch.charCodeAt(0);
    const v = code >= 65 ? String(code - 55) : ch;
    for (const digit of v) rem = (rem * 10 + (digit.charCodeAt(0) - 48)) % 97;
  }
  return rem === 1;
}

/** Issuer prefixes of the major card networks: most Luhn-valid order numbers are not cards. */
function plausibleCard(digits: string): boolean {
  if (digits.length < 13 || digits.length > 19 || !luhnValid(digits)) return false;
  if (/^(\d)\1+$/.test(digits)) return false;
  const two = Number(digits.slice(0, 2));
  const four = Number(digits.slice(0, 4));
  return (
    digits[0] === '4' ||
    (two >= 51 && two <= 55) ||
    (four >= 2221 && four <= 2720) ||
    two === 34 || two === 37 || two === 35 || two === 36 || two === 38 || two === 30 ||
    four === 6011 || two === 65 || two === 62
  );
}

function ssnValid(s: string): boolean {
  const [area, group, serial] = s.split('-');
  return area !== '000' && area !== '666' && area[0] !== '9' && group !== '00' && serial !== '0000';
}

function jwtValid(s: string): boolean {
  try {
    const header = JSON.parse(Buffer.from(s.slice(0, s.indexOf('.')), 'base64url').toString('utf8')) as unknown;
    return typeof header === 'object' && header !== null && 'alg' in header;
  } catch {
    return false;
  }
}

const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';

const DETECTORS: readonly Detector[] = [
  { id: 'jwt', pattern: 'eyJ[A-Za-z0-9_-]{5,}\\.eyJ[A-Za-z0-9_-]{5,}\\.[A-Za-z0-9_-]*', validate: jwtValid },
  {
    id: 'api-key',
    pattern: [
      '(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{16,}',
      'gh[pousr]_[A-Za-z0-9]{36,}',
      'github_pat_[A-Za-z0-9_]{22,}',
      'AKIA[0-9A-Z]{16}',
      'xox[baprs]-[A-Za-z0-9-]{10,}',
      'AIza[0-9A-Za-z_-]{35}',
      'sk-[A-Za-z0-9_-]{20,}',
      'tl_[0-9A-Za-z]{43}',
      '-----BEGIN [A-Z ]*PRIVATE KEY-----',
    ].join('|'),
    validate: () => true,
  },
  {
    id: 'email',
    // Bounded repetitions keep the scan linear on long strings without an '@'.
    pattern: "[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?){0,8}\\.[A-Za-z]{2,24}",
    validate: (s) => s.length <= 254,
  },
  { id: 'iban', pattern: '\\b[A-Z]{2}\\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\\b', validate: ibanValid },
  { id: 'credit-card', pattern: '\\b\\d(?:[ -]?\\d){12,18}\\b', validate: (s) => plausibleCard(digitsOf(s)) },
  { id: 'us-ssn', pattern: '\\b\\d{3}-\\d{2}-\\d{4}\\b', validate: ssnValid },
  {
    id: 'phone',
    pattern: '(?:\\+\\d{1,3}[ .-]?(?:\\(\\d{1,4}\\)[ .-]?)?\\d{2,4}(?:[ .-]?\\d{2,4}){1,4}\\b|(?:\\(\\d{3}\\) ?|\\b\\d{3}[.-])\\d{3}[.-]\\d{4}\\b)',
    validate: (s) => {
      const n = digitsOf(s).length;
      return s.startsWith('+') ? n >= 8 && n <= 15 : n === 10;
    },
  },
  { id: 'ipv4', pattern: `(?<![\\d.])${OCTET}(?:\\.${OCTET}){3}(?![\\d.]*\\d)`, validate: () => true },
  {
    id: 'ipv6',
    pattern: '(?<![0-9A-Fa-f:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:%[0-9A-Za-z]+)?(?![0-9A-Fa-f:])',
    validate: (s) => s.length >= 6 && isIPv6(s.split('%')[0]),
  },
];

export interface DetectorMatch {
  id: DetectorId;
  start: number;
  end: number;
}

/** Values shorter than this cannot hold anything worth masking (the shortest, an e-mail, is 6). */
export const MIN_DETECTABLE_LENGTH = 6;

/** What a text must contain for a detector to have a chance; checked before any regex runs. */
type Need = 'at' | 'colon' | 'digit' | 'jwt' | 'key';
const NEEDS: Record<DetectorId, Need> = {
  email: 'at', ipv6: 'colon', jwt: 'jwt', 'api-key': 'key',
  iban: 'digit', 'credit-card': 'digit', 'us-ssn': 'digit', phone: 'digit', ipv4: 'digit',
};
const KEY_HINT = /sk_|pk_|rk_|gh[pousr]_|github_pat_|AKIA|xox|AIza|sk-|tl_|-----BEGIN/;

/**
 * A compiled set of enabled detectors. Most values hold nothing (names, ids, text): a cheap
 * pass for '@', ':', digits and key prefixes picks the detectors that could match, and only
 * their combined expression runs (compiled once per combination). Without it, the e-mail
 * pattern alone costs ~64 steps per character of every string that has no '@'.
 */
export class DetectorSet {
  private readonly detectors: readonly Detector[];
  private readonly compiled = new Map<number, { re: RegExp; members: readonly Detector[] }>();
  private static readonly GROUPS = DETECTORS.map((_, i) => `d${i}`);
  private readonly needMask: number;

  constructor(enabled: readonly DetectorId[] = DETECTOR_IDS) {
    this.detectors = DETECTORS.filter((d) => enabled.includes(d.id));
    this.needMask = this.detectors.reduce((m, d) => m | bit(NEEDS[d.id]), 0);
  }

  get empty(): boolean {
    return this.detectors.length === 0;
  }

  private regexFor(present: number): { re: RegExp; members: readonly Detector[] } {
    let c = this.compiled.get(present);
    if (c === undefined) {
      const members = this.detectors.filter((d) => (present & bit(NEEDS[d.id])) !== 0);
      const source = members.map((d, i) => `(?<d${i}>${d.pattern})`).join('|');
      c = { re: new RegExp(source, 'g'), members };
      this.compiled.set(present, c);
    }
    return c;
  }

  /** Validated matches, left to right, non-overlapping. */
  find(text: string): DetectorMatch[] {
    if (text.length < MIN_DETECTABLE_LENGTH || this.detectors.length === 0) return NONE;
    let present = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c >= 48 && c <= 57) present |= DIGIT;
      else if (c === 64) present |= AT;
      else if (c === 58) present |= COLON;
    }
    if (text.includes('eyJ')) present |= JWT;
    if (KEY_HINT.test(text)) present |= KEY;
    present &= this.needMask;
    if (present === 0) return NONE;
    const { re, members } = this.regexFor(present);
    re.lastIndex = 0;
    let out: DetectorMatch[] | undefined;
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      if (m[0].length === 0) {
        re.lastIndex++;
        continue;
      }
      const groups = m.groups as Record<string, string | undefined>;
      for (let i = 0; i < members.length; i++) {
        if (groups[DetectorSet.GROUPS[i]] === undefined) continue;
        const d = members[i];
        if (d.validate(m[0])) (out ??= []).push({ id: d.id, start: m.index, end: m.index + m[0].length });
        break;
      }
    }
    return out ?? NONE;
  }
}

const AT = 1;
const COLON = 2;
const DIGIT = 4;
const JWT = 8;
const KEY = 16;
function bit(n: Need): number {
  return n === 'at' ? AT : n === 'colon' ? COLON : n === 'digit' ? DIGIT : n === 'jwt' ? JWT : KEY;
}

const NONE: DetectorMatch[] = [];
