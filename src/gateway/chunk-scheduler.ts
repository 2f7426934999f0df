/**
 * Per-user fair shares of the gateway's thread for the work on server data (finding F5).
 *
 * What the server sends a session is framed, attributed and masked one chunk (one socket read,
 * up to 64 KiB) at a time. Done as each chunk arrives, that work follows the event loop, which
 * reads every readable socket once per turn: a user with 8 sessions got 8 chunks' worth of the
 * thread per turn where a user with 1 session got one (measured at load 23–26: another user's
 * p95 latency rose 7.3× beside 8 heavy masked sessions, 1.12× beside one doing as much work).
 *
 * So a session's chunk is not worked on when it arrives: the session stops reading from its
 * server (the socket is paused, backpressure as for a full client buffer) and its chunk waits
 * here. Each round, run once per turn of the event loop (setImmediate, after the turn's reads),
 * serves one chunk per user with one waiting — that user's sessions taking turns — so a user's
 * share of the turns is one whatever their number of sessions, and a session alone is served
 * once per turn as before. A user who had nothing waiting goes first in the next round (a short
 * answer does not wait behind a busy user's chunk; a user who keeps chunks waiting never is
 * new, so the shares stay one each). Nothing is forwarded before its chunk is served (masked
 * and judged like any other): a waiting chunk is held, never passed on.
 */

/** One session's waiting chunks (the relay): serves them in order. */
export interface ChunkQueue {
  /** Works on the oldest waiting chunk; returns whether another one is waiting. */
  serveOne(): boolean;
}

interface Lane {
  user: string;
  /** This user's sessions with a chunk waiting, in turn order (each at most once). */
  queues: ChunkQueue[];
}

export interface ChunkSchedulerOptions {
  /**
   * How a round is run later (default setImmediate: after the event loop's next reads). Tests
   * pass one that lets them run rounds themselves.
   */
  defer?: (round: () => void) => void;
  /**
   * `user` (default): one chunk per user per round. `session`: one chunk per waiting session per
   * round, which is what serving chunks as they arrive amounted to (for comparison only).
   */
  share?: 'user' | 'session';
  /** Called for each turn given, with its user and session (tests count them). */
  onServe?: (user: string, queue: ChunkQueue) => void;
}

export class ChunkScheduler {
  /**
   * Work on each chunk as it arrives, without this scheduler (the behaviour before F5). For
   * `npm run bench -- gateway-fairness`, which measures both in one run; no setting sets it.
   */
  direct = false;
  private readonly lanes = new Map<string, Lane>();
  /** Lanes with a chunk waiting, in turn order; `fresh` had none at the last round and go first. */
  private active: Lane[] = [];
  private fresh: Lane[] = [];
  private scheduled = false;
  private readonly defer: (round: () => void) => void;
  private readonly share: 'user' | 'session';
  private readonly onServe: ((user: string, queue: ChunkQueue) => void) | undefined;
  private readonly runRound = (): void => this.round();

  constructor(opts: ChunkSchedulerOptions = {}) {
    this.defer = opts.defer ?? ((round) => setImmediate(round));
    this.share = opts.share ?? 'user';
    this.onServe = opts.onServe;
  }

  /**
   * `queue` of `user`'s session has a chunk waiting and was not waiting before (the relay calls
   * it once, then serves its chunks until serveOne says none is left).
   */
  ready(user: string, queue: ChunkQueue): void {
    let lane = this.lanes.get(user);
    if (lane === undefined) {
      lane = { user, queues: [] };
      this.lanes.set(user, lane);
      this.fresh.push(lane);
    }
    lane.queues.push(queue);
    if (!this.scheduled) {
      this.scheduled = true;
      this.defer(this.runRound);
    }
  }

  /** Sessions with a chunk waiting, by user (tests). */
  waiting(): Map<string, number> {
    const out = new Map<string, number>();
    for (const lane of this.lanes.values()) out.set(lane.user, lane.queues.length);
    return out;
  }

  /** One turn for every user with a chunk waiting, in turn order. */
  private round(): void {
    this.scheduled = false;
    const lanes = this.fresh.length === 0 ? this.active : [...this.fresh, ...this.active];
    this.fresh = [];
    this.active = [];
    for (const lane of lanes) {
      const turns = this.share === 'user' ? 1 : lane.queues.length;
      for (let i = 0; i < turns && lane.queues.length > 0; i++) {
        const queue = lane.queues.shift() as ChunkQueue;
        this.onServe?.(lane.user, queue);
        if (queue.serveOne()) lane.queues.push(queue);
      }
      if (lane.queues.length > 0) this.active.push(lane);
      else if (this.lanes.get(lane.user) === lane) this.lanes.delete(lane.user);
    }
    if (this.active.length + this.fresh.length > 0 && !this.scheduled) {
      this.scheduled = true;
      this.defer(this.runRound);
    }
  }
}

/** The gateway process's scheduler: every gateway in it shares the one thread. */
export const chunkScheduler = new ChunkScheduler();
