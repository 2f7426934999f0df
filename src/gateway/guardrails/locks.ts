import type { Visitor } from './walk.js';

/**
 * Table locks that stop other sessions (attack round 4 #9). `LOCK TABLE t IN ACCESS EXCLUSIVE
 * MODE`, held in an open transaction, stops every reader of `t` — other users, the application,
 * and the gateway's own catalog refresh — for as long as the session likes. Modes up to ROW
 * EXCLUSIVE are the ones an UPDATE or DELETE takes anyway; stronger ones (SHARE UPDATE
 * EXCLUSIVE and up, mode numbers from PostgreSQL's lockdefs.h) block writers or readers, so they
 * are a schema-level act: `ddl` (approval by default under a write grant; `read-only` already
 * refuses every LOCK under a read grant).
 */

const ROW_EXCLUSIVE = 3;
const MODES = ['', 'ACCESS SHARE', 'ROW SHARE', 'ROW EXCLUSIVE', 'SHARE UPDATE EXCLUSIVE', 'SHARE', 'SHARE ROW EXCLUSIVE', 'EXCLUSIVE', 'ACCESS EXCLUSIVE'];

export const tableLocks: Visitor = {
  LockStmt(node, ctx) {
    const mode = typeof node.mode === 'number' ? node.mode : 8;
    if (mode <= ROW_EXCLUSIVE) return;
    ctx.report('ddl', `LOCK TABLE IN ${MODES[mode] ?? 'ACCESS EXCLUSIVE'} MODE (blocks other sessions' ${mode >= 8 ? 'reads and writes' : 'writes'})`);
  },
};
