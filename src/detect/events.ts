/**
 * DetectEvents: the typed events other pillars (incidents) subscribe to. Emitted on lifecycle
 * edges, whether or not a notification goes out (silences mute people, not the record).
 */
import { EventEmitter } from 'node:events';
import type { NotifiedAlert } from './notifier.js';

export interface AlertEvent {
  alert: Omit<NotifiedAlert, 'repeat'>;
  at: string;
}

/** A notification went out (or finally failed) to one receiver, naming the alerts it carried. */
export interface NotifiedEvent {
  receiver: string;
  status: 'firing' | 'resolved';
  alertIds: string[];
  ok: boolean;
  at: string;
}

export interface DetectEventMap {
  'alert.fired': [AlertEvent];
  'alert.resolved': [AlertEvent];
  'alert.notified': [NotifiedEvent];
}

export class DetectEvents extends EventEmitter<DetectEventMap> {}
