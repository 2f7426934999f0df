/**
 * Typed events other modules subscribe to (detect turns them into alerts). Emitted after the
 * commit that created / reopened the group, so a listener can read the group at once.
 * Listener errors are caught and reported to `onListenerError`: a broken subscriber must not
 * fail ingest, which has already acknowledged the events.
 */
import { EventEmitter } from 'node:events';
import type { ErrorGroup } from './groups.js';

/** How many events one commit added to a group × release × environment (latest event time). */
export interface GroupEventCount {
  groupId: string;
  projectId: number;
  service: string;
  release: string;
  environment: string;
  title: string;
  count: number;
  lastUs: number;
}

export interface ErrorEventMap {
  'error.new_group': { group: ErrorGroup };
  'error.regressed': { group: ErrorGroup };
  /** Every commit's events, counted per group × release × environment (rates, spikes). */
  'error.events': { counts: GroupEventCount[] };
}

export type ErrorEventName = keyof ErrorEventMap;

export class ErrorEvents {
  private readonly ee = new EventEmitter();

  constructor(private readonly onListenerError: (err: unknown) => void = () => undefined) {}

  on<K extends ErrorEventName>(name: K, listener: (payload: ErrorEventMap[K]) => void): () => void {
    const wrapped = (p: ErrorEventMap[K]): void => {
      try { listener(p); } catch (err) { this.onListenerError(err); }
    };
    this.ee.on(name, wrapped);
    return () => { this.ee.off(name, wrapped); };
  }

  emit<K extends ErrorEventName>(name: K, payload: ErrorEventMap[K]): void {
    this.ee.emit(name, payload);
  }
}
