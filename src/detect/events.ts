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

export interface DetectEventMap {
  'alert.fired': [AlertEvent];
  'alert.resolved': [AlertEvent];
}

export class DetectEvents extends EventEmitter<DetectEventMap> {}
