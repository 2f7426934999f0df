/** What the incidents pillar shows: incidents, their timeline entries and links. */

export const INCIDENT_STATUSES = ['open', 'acknowledged', 'resolved'] as const;
export type IncidentStatus = (typeof INCIDENT_STATUSES)[number];

export interface IncidentAlert {
  id: string;
  rule: string;
  state: 'firing' | 'resolved';
  firedAt: string;
  resolvedAt: string | null;
}

export interface Incident {
  id: string;
  title: string;
  service: string;
  environment: string;
  status: IncidentStatus;
  signal: string;
  openedAt: string;
  /** The first alert fired or failed verdict: when the loop noticed. */
  detectedAt: string;
  /**
   * The earliest bad evidence (a one-second rollup bucket's start): `deploy` — the first failed
   * (or slow) request of the suspect deploy's version; `signal` — the change point of the
   * service's rollups; `alert` — neither found, the alert's start.
   */
  firstBadAt: string | null;
  firstBadSource: 'deploy' | 'signal' | 'alert' | null;
  /** Where the signal came back to its baseline (set when resolved). */
  recoveredAt: string | null;
  acknowledgedAt: string | null;
  acknowledgedBy: string | null;
  assignee: string | null;
  resolvedAt: string | null;
  resolvedBy: string | null;
  resolution: 'auto' | 'manual' | null;
  suspectDeployId: string | null;
  /**
   * `true` while the alerts have resolved but the latest fix deploy's verification was
   * inconclusive: recovered, not verified healthy. Only a passed fix resolves by itself; this one
   * waits for a person (or a fix that passes).
   */
  recoveredUnverified: boolean;
  alerts: IncidentAlert[];
}

export interface DeployLink {
  id: string;
  service: string;
  version: string;
  environment: string;
  commit: string | null;
  commitTime: string | null;
  url: string | null;
  status: string;
}

export interface TimelineLinks {
  /** Example trace ids (errors in the window), and the query that finds more. */
  traceIds?: string[];
  traces?: string;
  logs?: string;
  errorGroups?: string[];
  alert?: string;
  deploy?: DeployLink;
  /** The suspect deploy (the most recent deploy of an affected service before the first bad signal). */
  suspectDeploy?: DeployLink;
  auditSeq?: number;
}

export const TIMELINE_KINDS = [
  'deploy', 'first_bad_signal', 'alert.fired', 'notified', 'acknowledged', 'assigned', 'error_group',
  'access.requested', 'access.approved', 'statement', 'action', 'rollback', 'verdict', 'signal_recovered',
  'alert.resolved', 'fix_unverified', 'note', 'resolved',
] as const;
export type TimelineKind = (typeof TIMELINE_KINDS)[number];

export interface TimelineEntry {
  at: string;
  kind: TimelineKind;
  title: string;
  actor: string | null;
  service: string | null;
  links: TimelineLinks;
  data: Record<string, unknown>;
}
