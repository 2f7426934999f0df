import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from 'pino';

/**
 * The audit chain's anchor: its head, witnessed outside the state database. Someone who can
 * write the database can rewrite the whole hash chain (it is unkeyed SHA-256) or cut records off
 * its end; the chain alone cannot show either. So after every commit the gateway appends the new
 * head — sequence number, hash, time — to an anchor file, each line sealed with an HMAC under a
 * key that lives in a file, not in the database, and fsyncs it. `verify` then requires every
 * anchored record to be in the chain with the anchored hash: deleting the last records, deleting
 * everything, editing any anchored record (even with every later hash recomputed), deleting and
 * renumbering all fail, and a forged anchor line fails its MAC.
 *
 * The anchor is written after the database commit, never before, so a crash leaves it at most
 * behind the chain (never a false alarm). Each start compares the chain with the last anchor; a
 * chain that does not reach it is logged as an error, and that anchor line is kept (marked
 * `broken`) when the file is compacted, so `verify` keeps failing until the records are
 * restored — restarting does not launder a tampered chain. Only the newest line (plus broken
 * ones) is needed: a hash commits to every record before it. The file is compacted at 1 MiB.
 *
 * Key and anchor default to the data directory (mode 0600); put them elsewhere (another volume,
 * another owner) with TIGHTLOOP_AUDIT_KEY_FILE / TIGHTLOOP_AUDIT_ANCHOR_FILE, so that one who
 * can change the database and the data directory cannot also forge the anchor.
 */

export interface Anchor {
  seq: number;
  hash: string;
  at: string;
  /** Found not matching the chain at a start (kept for good). */
  broken?: boolean;
}

export interface AnchorProblem {
  seq: number;
  reason: string;
}

const COMPACT_AT = 1024 * 1024;

/**
 * Lines that record what was wrong with the anchor itself when a start found it (their "hash"
 * never matches a record), so the finding survives compaction and restarts.
 */
export const SENTINELS: Readonly<Record<string, string>> = {
  'anchor-file-removed': 'the anchor file was removed (found missing at a start)',
  'audit-key-removed': 'the audit key was removed (found missing at a start)',
  'anchor-line-forged': 'an anchor line failed its MAC or did not parse (found at a start)',
};

/**
 * The key file: the key in hex, then `keyed-from <seq>`, the first record hashed with it (a
 * chain older than the key keeps its plain SHA-256 records, covered by the first anchor).
 */
function readKey(file: string): { key: Buffer; keyedFrom: number } {
  const [hex = '', from = ''] = readFileSync(file, 'utf8').split('\n');
  const key = Buffer.from(hex.trim(), 'hex');
  if (key.length < 32) throw new Error(`audit key ${file} is not 32+ bytes of hex`);
  const m = /^keyed-from (\d+)$/.exec(from.trim());
  return { key, keyedFrom: m === null ? 1 : Number(m[1]) };
}

export class AuditAnchor {
  private key: Buffer | undefined;
  /** Records from this sequence number on are HMACs under the key; earlier ones plain SHA-256. */
  keyedFrom = 1;
  private anchors: Anchor[] = [];
  /** Lines that failed their MAC or did not parse (other than a torn last line). */
  private readonly forged: AnchorProblem[] = [];
  /** What a start found wrong with the file or key (a SENTINELS key). */
  private readonly damage: string[] = [];
  private fh: FileHandle | undefined;
  private size = 0;
  private writing: Promise<void> | undefined;
  private next: Anchor | undefined;

  constructor(
    private readonly file: string,
    private readonly keyFile: string,
    private readonly log: Logger,
  ) {
    const fresh = !existsSync(keyFile);
    if (!fresh) ({ key: this.key, keyedFrom: this.keyedFrom } = readKey(keyFile));
    if (!existsSync(file)) {
      // A key without its anchor: the anchor was removed. (A new key comes with a new anchor.)
      if (!fresh) this.damage.push('anchor-file-removed');
      return;
    }
    if (fresh) {
      // An anchor without its key cannot be checked: the key was removed.
      this.damage.push('audit-key-removed');
      return;
    }
    const text = readFileSync(file, 'utf8');
    this.size = Buffer.byteLength(text);
    const lines = text.split('\n');
    lines.forEach((line, i) => {
      if (line === '') return;
      let a: Anchor & { mac?: string };
      try {
        a = JSON.parse(line) as Anchor & { mac?: string };
      } catch {
        // A crash while appending leaves a torn last line: ignore it. Anywhere else: edited.
        if (i !== lines.length - 1 && !(i === lines.length - 2 && lines[lines.length - 1] === '')) this.forged.push({ seq: -1, reason: `anchor line ${i + 1} does not parse` });
        return;
      }
      if (typeof a.seq !== 'number' || typeof a.hash !== 'string' || typeof a.at !== 'string' || typeof a.mac !== 'string' || !this.macOk(a, a.mac)) {
        this.forged.push({ seq: Number(a.seq), reason: `anchor line ${i + 1} fails its MAC (anchor file edited)` });
        return;
      }
      this.anchors.push({ seq: a.seq, hash: a.hash, at: a.at, ...(a.broken === true ? { broken: true } : {}) });
    });
  }

  /** Whether a key file existed (`open` creates one otherwise). */
  get hasKey(): boolean {
    return this.key !== undefined;
  }

  /** Where the key is kept (for messages). */
  get keyPath(): string {
    return this.keyFile;
  }

  /** The MAC key (created by `open` on first start). */
  get secret(): Buffer {
    if (this.key === undefined) throw new Error('audit anchor not opened');
    return this.key;
  }

  private mac(a: Anchor): string {
    return createHmac('sha256', this.secret).update(`tightloop-audit-anchor\n${a.seq}\n${a.hash}\n${a.at}`).digest('hex');
  }

  private macOk(a: Anchor, mac: string): boolean {
    const want = Buffer.from(this.mac(a), 'hex');
    const got = Buffer.from(mac, 'hex');
    return got.length === want.length && timingSafeEqual(got, want);
  }

  private line(a: Anchor): string {
    return JSON.stringify({ seq: a.seq, hash: a.hash, at: a.at, mac: this.mac(a), ...(a.broken === true ? { broken: true } : {}) }) + '\n';
  }

  /** The newest anchor not already known broken. */
  get last(): Anchor | undefined {
    for (let i = this.anchors.length - 1; i >= 0; i--) if (this.anchors[i].broken !== true) return this.anchors[i];
    return undefined;
  }

  /** Every anchored head the chain must contain, and what is wrong with the file itself. */
  expectations(): { anchors: readonly Anchor[]; problems: readonly AnchorProblem[] } {
    const problems = [...this.forged];
    for (const a of this.anchors) if (SENTINELS[a.hash] !== undefined) problems.push({ seq: a.seq, reason: SENTINELS[a.hash] });
    return { anchors: this.anchors, problems };
  }

  /**
   * Called once at start with a lookup of stored hashes. Logs and keeps what does not match;
   * witnesses the current head (so a fresh or upgraded installation is anchored at once).
   */
  async open(storedHash: (seq: number) => Promise<string | undefined>, head: { seq: number; hash: string }): Promise<AnchorProblem[]> {
    if (this.key === undefined) {
      this.key = randomBytes(32);
      this.keyedFrom = head.seq + 1;
      writeFileSync(this.keyFile, `${this.key.toString('hex')}\nkeyed-from ${this.keyedFrom}\n`, { mode: 0o600, flag: 'wx' });
    }
    let changed = false;
    // Remember damage to the file in the file, or the next start would find a tidy anchor.
    if (this.forged.length > 0) this.damage.push('anchor-line-forged');
    for (const d of this.damage) this.anchors.push({ seq: 0, hash: d, at: new Date().toISOString(), broken: true });
    changed = this.damage.length > 0;
    const found: AnchorProblem[] = [...this.expectations().problems];
    const last = this.last;
    for (const a of this.anchors) {
      if (a.broken !== true && a !== last) continue;
      if (SENTINELS[a.hash] !== undefined) continue;
      const stored = a.seq === 0 ? a.hash : await storedHash(a.seq);
      if (stored === a.hash) continue;
      found.push({ seq: a.seq, reason: stored === undefined ? `record ${a.seq} is missing (the chain ends at ${head.seq})` : `record ${a.seq} differs from its anchored hash` });
      if (a.broken !== true) {
        a.broken = true;
        changed = true;
      }
    }
    for (const p of found) this.log.error({ anchor: this.file, seq: p.seq }, `audit chain does not match its anchor: ${p.reason}; \`tightloop audit verify\` fails until the records are restored`);
    this.fh = await open(this.file, 'a', 0o600);
    if (changed) await this.compact();
    if (this.last?.seq !== head.seq || this.last.hash !== head.hash) await this.witness(head);
    return found;
  }

  /** Appends the head (coalesced: while one write runs, only the newest head waits). */
  witness(head: { seq: number; hash: string }): Promise<void> {
    this.next = { seq: head.seq, hash: head.hash, at: new Date().toISOString() };
    if (this.writing === undefined) {
      this.writing = this.drain().finally(() => {
        this.writing = undefined;
      });
    }
    return this.writing;
  }

  private async drain(): Promise<void> {
    while (this.next !== undefined && this.fh !== undefined) {
      const a = this.next;
      this.next = undefined;
      try {
        const line = this.line(a);
        await this.fh.appendFile(line);
        await this.fh.datasync();
        this.size += Buffer.byteLength(line);
        this.anchors.push(a);
        if (this.size > COMPACT_AT) await this.compact();
      } catch (err) {
        this.log.error({ err, anchor: this.file }, 'audit anchor could not be written');
      }
    }
  }

  /** Waits for the anchor to catch up with what was committed so far. */
  async settled(): Promise<void> {
    while (this.writing !== undefined) await this.writing;
  }

  /** Rewrites the file with the broken lines and the newest one (atomically: temp, fsync, rename). */
  private async compact(): Promise<void> {
    const last = this.last;
    this.anchors = this.anchors.filter((a) => a.broken === true || a === last);
    const text = this.anchors.map((a) => this.line(a)).join('');
    const tmp = `${this.file}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeFileSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.file);
    const dir = openSync(dirname(this.file), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
    await this.fh?.close();
    this.fh = await open(this.file, 'a', 0o600);
    this.size = Buffer.byteLength(text);
  }

  async close(): Promise<void> {
    await this.settled();
    await this.fh?.close();
    this.fh = undefined;
  }
}
