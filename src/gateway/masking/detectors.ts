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
  need: Need;
  pattern: string;
  validate(match: string): boolean;
  /** A failed candidate may hold a valid one that ends earlier (a card run into an SSN's digits). */
  shrink?: boolean;
}

function digitsOf(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) out += s[i];
  }
  return out;
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

const ONE_DIGIT_REPEATED = /^(\d)\1+$/;

/** Issuer prefixes of the major card networks: most Luhn-valid order numbers are not cards. */
function plausibleCard(digits: string): boolean {
  if (digits.length < 13 || digits.length > 19 || !luhnValid(digits)) return false;
  if (ONE_DIGIT_REPEATED.test(digits)) return false;
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

/** SSA rules: no area 000, 666 or 9xx, no group 00, no serial 0000 (digits only, any separators). */
function ssnValid(s: string): boolean {
  const d = digitsOf(s);
  if (d.length !== 9) return false;
  const area = d.slice(0, 3);
  return area !== '000' && area !== '666' && area[0] !== '9' && d.slice(3, 5) !== '00' && d.slice(5) !== '0000';
}

function phoneValid(s: string): boolean {
  const d = digitsOf(s);
  const t = s.trimStart();
  if (t.startsWith('+')) return d.length >= 8 && d.length <= 15;
  if (d.startsWith('00')) return d.length >= 10 && d.length <= 15;
  if (d.startsWith('0')) return d.length >= 10 && d.length <= 11;
  const national = d.length === 11 && d[0] === '1' ? d.slice(1) : d;
  return national.length === 10 && national[0] >= '2' && national[3] >= '2';
}

function jwtValid(s: string): boolean {
  try {
    const header = JSON.parse(Buffer.from(s.slice(0, s.indexOf('.')), 'base64url').toString('utf8')) as unknown;
    return typeof header === 'object' && header !== null && 'alg' in header;
  } catch { // a header that is not base64url JSON is no JWT
    return false;
  }
}

/** Top-level domains an obfuscated address must end in (a plain `a@b.c` needs no list). */
const TLDS = new Set(`com net org edu gov mil int info biz name pro mobi io co me us uk de fr es it nl be ch at se no dk fi
  pl cz pt ie ca au nz jp cn in br mx ru za kr sg hk tw ar cl eu app dev ai xyz online site tech email mail tv cc ly gr hu ro
  sk si hr bg lt lv ee is lu tr il ae sa ua kz vn th my id ph pk ng ke eg ma`.split(/\s+/));

/**
 * An e-mail address with its `@` (and maybe dots) spelt otherwise: `jane(at)example.com`,
 * `jane [at] example [dot] com`, `jane%40example.com`, `jane&#64;example.com`, a full-width `＠`,
 * or one other character put in its place (`jane#example.com`, `jane.doe example.org`).
 */
function obfuscatedEmailValid(s: string): boolean {
  if (s.length > 300 || s.startsWith('.')) return false;
  const tld = /[A-Za-z]{2,24}$/.exec(s)?.[0];
  if (tld === undefined || !TLDS.has(tld.toLowerCase())) return false;
  // Only a space in the @'s place: "visit example.com" is prose, "jane.doe example.org" is not.
  const spaced = /^([A-Za-z0-9._%+-]+)\s+(?!(?:at|AT)\s)(?=[A-Za-z0-9])/.exec(s);
  if (spaced !== null) {
    const local = spaced[1];
    if (!/[._+\d]/.test(local) || local.endsWith('.') || /^www\./i.test(s.slice(spaced[0].length))) return false;
  }
  return true;
}

const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
const AT_SPELT = '(?:\\s?[\\(\\[\\{<]\\s?(?:at|AT|At)\\s?[\\)\\]\\}>]\\s?|\\s(?:at|AT)\\s|%40|&#0*64;|&#[xX]0*40;|&commat;|\\uFF20|\\uFE6B|[#!|~^*=$]|\\s)';
const DOT_SPELT = '(?:\\.|\\s?[\\(\\[\\{<]\\s?(?:dot|DOT|Dot)\\s?[\\)\\]\\}>]\\s?|\\s(?:dot|DOT)\\s)';
const PHONE_WORD = '(?:[Tt]el|TEL|[Pp]hone|PHONE|[Mm]obile|MOBILE|[Cc]ell|CELL|[Ff]ax|FAX|[Cc]all)';
const SSN_WORD = '(?:[Ss][Ss][Nn]|SS#|[Ss]ocial [Ss]ecurity(?: [Nn](?:o|umber))?|SOCIAL SECURITY|[Tt][Ii][Nn])';

/** What a text must contain for a detector to have a chance; checked before any regex runs. */
type Need = 'at' | 'colon' | 'digit' | 'jwt' | 'key' | 'dot' | 'word';

const DETECTORS: readonly Detector[] = [
  // Starts only where a run of base64url characters starts: each run is scanned once as a
  // first segment, so the work is linear (starting inside a run, `eyJeyJeyJ…` cost O(n²)).
  { id: 'jwt', need: 'jwt', pattern: '(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{5,}\\.eyJ[A-Za-z0-9_-]{5,}\\.[A-Za-z0-9_-]*', validate: jwtValid },
  {
    id: 'api-key',
    need: 'key',
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
    need: 'at',
    // Bounded repetitions keep the scan linear on long strings without an '@'.
    pattern: `[A-Za-z0-9._%+-]{1,64}@${LABEL}(?:\\.${LABEL}){0,8}\\.[A-Za-z]{2,24}`,
    validate: (s) => s.length <= 254,
  },
  {
    id: 'email',
    need: 'dot',
    pattern: `(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}${AT_SPELT}${LABEL}(?:${DOT_SPELT}${LABEL}){0,8}${DOT_SPELT}[A-Za-z]{2,24}(?![A-Za-z0-9-])`,
    validate: obfuscatedEmailValid,
  },
  { id: 'iban', need: 'digit', pattern: '\\b[A-Z]{2}\\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\\b', validate: ibanValid },
  { id: 'credit-card', need: 'digit', pattern: '\\b\\d(?:[ -]?\\d){12,18}\\b', validate: (s) => plausibleCard(digitsOf(s)), shrink: true },
  {
    id: 'us-ssn',
    need: 'digit',
    // 078-05-1120, 078 05 1120; nine bare digits only as the whole value or after "SSN".
    pattern: '\\b\\d{3}-\\d{2}-\\d{4}\\b|\\b\\d{3} \\d{2} \\d{4}\\b|^\\s*\\d{9}\\s*$',
    validate: ssnValid,
  },
  { id: 'us-ssn', need: 'word', pattern: `(?<=${SSN_WORD}[^A-Za-z0-9\\n]{0,4})\\d{9}\\b`, validate: ssnValid },
  {
    id: 'phone',
    need: 'digit',
    pattern: [
      // International: +44 20 7946 0958, +1-415-555-2671, +14155552671, 0044 20 7946 0958.
      '(?:\\+|\\b00)\\d{1,3}[ .-]?(?:\\(\\d{1,4}\\)[ .-]?)?\\d{1,4}(?:[ .-]?\\d{1,4}){1,5}\\b',
      // North American: (415) 555-2671, 415-555-2671, 415.555.2671, 415 555 2671, 1-800-555-0199.
      '(?:\\b1[ .-])?(?:\\(\\d{3}\\) ?|\\b\\d{3}[ .-])\\d{3}[ .-]\\d{4}\\b',
      // National with a trunk 0: 07911 123456, 030 1234 5678.
      '\\b0\\d{2,4}[ -]\\d{3,4}[ -]?\\d{3,4}\\b',
      // Bare digits: the whole value, or after a word that says it is a number to call.
      '^\\s*1?[2-9]\\d{2}[2-9]\\d{6}\\s*$',
    ].join('|'),
    validate: phoneValid,
    shrink: true,
  },
  { id: 'phone', need: 'word', pattern: `(?<=${PHONE_WORD}[^A-Za-z0-9\\n]{0,4})1?[2-9]\\d{2}[2-9]\\d{6}\\b`, validate: phoneValid },
  { id: 'ipv4', need: 'digit', pattern: `(?<![\\d.])${OCTET}(?:\\.${OCTET}){3}(?![\\d.]*\\d)`, validate: () => true },
  {
    id: 'ipv6',
    need: 'colon',
    pattern: '(?<![0-9A-Fa-f:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:%[0-9A-Za-z]+)?(?![0-9A-Fa-f:])',
    validate: (s) => s.length >= 6 && isIPv6(s.split('%')[0]),
  },
];

export interface DetectorMatch {
  /** `over-long`: the value is longer than MAX_DETECT_CHARS and is masked as a whole. */
  id: DetectorId | typeof OVER_LONG;
  start: number;
  end: number;
}

/**
 * Detection work is bounded per value: a value longer than this is not scanned but masked as a
 * whole (one `over-long` match), fail closed. The patterns are linear, but with a constant of a
 * few microseconds per character for digit runs; this keeps one value's detection well under a
 * tenth of a second on the gateway's thread (attack round 4 #4).
 */
export const MAX_DETECT_CHARS = 16 * 1024;
export const OVER_LONG = 'over-long';

/** Values shorter than this cannot hold anything worth masking (the shortest, an e-mail, is 6). */
export const MIN_DETECTABLE_LENGTH = 6;

const KEY_HINT = /sk_|pk_|rk_|gh[pousr]_|github_pat_|AKIA|xox|AIza|sk-|tl_|-----BEGIN/;
/** A known top-level domain after a spelt-out dot. */
const SPELT_TLD = new RegExp(`dot\\W{0,2}(?:${[...TLDS].join('|')})(?![A-Za-z0-9-])`, 'i');

/** A known top-level domain after a dot (or a spelt-out one): the only texts an obfuscated address can be in. */
function tldHint(text: string): boolean {
  for (let dot = text.indexOf('.'); dot !== -1; dot = text.indexOf('.', dot + 1)) {
    let end = dot + 1;
    while (end < text.length && end - dot <= 25 && isLetter(text.charCodeAt(end))) end++;
    if (end - dot < 3) continue;
    const after = end < text.length ? text.charCodeAt(end) : 32;
    if (isLetter(after) || isDigit(after) || after === 45) continue;
    if (TLDS.has(text.slice(dot + 1, end).toLowerCase())) return true;
  }
  return (text.includes('dot') || text.includes('DOT')) && SPELT_TLD.test(text);
}

function isLetter(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}
/** Words that make nine or ten bare digits an SSN or a phone number. */
const NUMBER_WORD = new RegExp(`${PHONE_WORD}|${SSN_WORD}`);

interface Compiled {
  re: RegExp;
  members: readonly Detector[];
  /** Each member's pattern on its own, sticky: to try it where another member's candidate failed. */
  sticky: readonly RegExp[];
}

/**
 * A compiled set of enabled detectors. Most values hold nothing (names, ids, text): a cheap
 * pass for '@', ':', '.', digits and key prefixes picks the detectors that could match, and
 * only their combined expression runs (compiled once per combination). Without it, the e-mail
 * pattern alone costs ~64 steps per character of every string that has no '@'.
 *
 * Overlapping candidates are judged one by one: when the candidate the combined expression
 * found fails its validator, the other detectors are tried at the same place, a card candidate
 * is tried shorter (`4111 1111 1111 1111 078-05-1120`: the card pattern first takes the SSN's
 * first digits), and the scan resumes one character later, so a valid match that starts inside
 * the failed candidate is still found.
 */
export class DetectorSet {
  private readonly detectors: readonly Detector[];
  private readonly compiled = new Map<number, Compiled>();
  private readonly needMask: number;

  constructor(enabled: readonly DetectorId[] = DETECTOR_IDS) {
    this.detectors = DETECTORS.filter((d) => enabled.includes(d.id));
    this.needMask = this.detectors.reduce((m, d) => m | bit(d.need), 0);
  }

  get empty(): boolean {
    return this.detectors.length === 0;
  }

  private regexFor(present: number): Compiled {
    let c = this.compiled.get(present);
    if (c === undefined) {
      const members = this.detectors.filter((d) => (present & bit(d.need)) !== 0);
      // Plain groups (the patterns capture nothing themselves): cheaper than named ones.
      const source = members.map((d) => `(${d.pattern})`).join('|');
      c = { re: new RegExp(source, 'g'), members, sticky: members.map((d) => new RegExp(`(?:${d.pattern})`, 'y')) };
      this.compiled.set(present, c);
    }
    return c;
  }

  /** Validated matches, left to right, non-overlapping. */
  find(text: string): DetectorMatch[] {
    if (text.length < MIN_DETECTABLE_LENGTH || this.detectors.length === 0) return NONE;
    if (text.length > MAX_DETECT_CHARS) return [{ id: OVER_LONG, start: 0, end: text.length }];
    const need = this.needMask;
    let present = 0;
    let run = 0;
    let longest = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c >= 48 && c <= 57) {
        present |= DIGIT;
        if (++run > longest) longest = run;
        continue;
      }
      run = 0;
      if (c === 64) present |= AT;
      else if (c === 58) present |= COLON;
    }
    if ((need & DOT) !== 0 && tldHint(text)) present |= DOT;
    // The keyword patterns need a run of nine or more bare digits.
    if ((need & WORD) !== 0 && longest >= 9 && NUMBER_WORD.test(text)) present |= WORD;
    if (text.includes('eyJ')) present |= JWT;
    if ((need & KEY) !== 0 && KEY_HINT.test(text)) present |= KEY;
    present &= need;
    if (present === 0) return NONE;
    const c = this.regexFor(present);
    const { re, members } = c;
    re.lastIndex = 0;
    let out: DetectorMatch[] | undefined;
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      if (m[0].length === 0) {
        re.lastIndex++;
        continue;
      }
      let first = 0;
      while (first < members.length && m[first + 1] === undefined) first++;
      const d = members[first];
      if (d !== undefined && d.validate(m[0])) {
        const end = m.index + m[0].length;
        const split = d.shrink === true && end < text.length && SEPARATORS.includes(text[end]) ? this.split(text, m.index, m[0], first, c) : undefined;
        if (split !== undefined) {
          (out ??= []).push(...split);
          re.lastIndex = split[1].end;
        } else (out ??= []).push({ id: d.id, start: m.index, end });
        continue;
      }
      const other = this.retry(text, m.index, m[0], first, c);
      if (other !== undefined) {
        (out ??= []).push(other);
        re.lastIndex = other.end;
      } else re.lastIndex = m.index + 1;
    }
    return out ?? NONE;
  }

  /**
   * A valid digit run followed by more digits, e.g. `4111 1111 1111 1111 078-05-1120` where the
   * card pattern took the SSN's first group and still passed Luhn: when a shorter cut is valid
   * too and another detector's valid match starts at the next group and reaches further, both.
   */
  private split(text: string, at: number, candidate: string, idx: number, c: Compiled): DetectorMatch[] | undefined {
    const d = c.members[idx];
    for (let end = candidate.length - 1; end > 0; end--) {
      if (isDigit(candidate.charCodeAt(end)) || !isDigit(candidate.charCodeAt(end - 1))) continue;
      let next = end;
      while (next < candidate.length && !isDigit(candidate.charCodeAt(next))) next++;
      const other = this.bestAt(text, at + next, idx, c);
      if (other === undefined || other.end <= at + candidate.length) continue;
      if (d.validate(candidate.slice(0, end))) return [{ id: d.id, start: at, end: at + end }, other];
    }
    return undefined;
  }

  /** The longest valid match of any member but `skip` that starts exactly at `at`. */
  private bestAt(text: string, at: number, skip: number, c: Compiled): DetectorMatch | undefined {
    let best: DetectorMatch | undefined;
    for (let i = 0; i < c.members.length; i++) {
      if (i === skip) continue;
      const sticky = c.sticky[i];
      sticky.lastIndex = at;
      const m = sticky.exec(text);
      if (m === null || m[0].length === 0 || !c.members[i].validate(m[0])) continue;
      if (best === undefined || m[0].length > best.end - best.start) best = { id: c.members[i].id, start: at, end: at + m[0].length };
    }
    return best;
  }

  /** A failed candidate at `at`: a shorter card, or another detector's valid match there. */
  private retry(text: string, at: number, candidate: string, failed: number, c: Compiled): DetectorMatch | undefined {
    const d = c.members[failed];
    if (d?.shrink === true) {
      // Cut after a digit that a separator follows, longest first.
      for (let end = candidate.length - 1; end > 0; end--) {
        if (isDigit(candidate.charCodeAt(end)) || !isDigit(candidate.charCodeAt(end - 1))) continue;
        if (d.validate(candidate.slice(0, end))) return { id: d.id, start: at, end: at + end };
      }
    }
    return this.bestAt(text, at, failed, c);
  }
}

const SEPARATORS = ' -.';
function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

const AT = 1;
const COLON = 2;
const DIGIT = 4;
const JWT = 8;
const KEY = 16;
const DOT = 32;
const WORD = 64;
function bit(n: Need): number {
  return n === 'at' ? AT : n === 'colon' ? COLON : n === 'digit' ? DIGIT : n === 'jwt' ? JWT : n === 'key' ? KEY : n === 'dot' ? DOT : WORD;
}

const NONE: DetectorMatch[] = [];
