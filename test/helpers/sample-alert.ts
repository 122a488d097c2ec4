import { alertId } from '../../consumers/alerts/alert.js';
import type { Alert } from '../../consumers/alerts/index.js';

/** An alert as the engine makes one, for tests of what is sent (payloads, signature, delivery). */
export const alert: Alert = {
  alert_id: alertId('r', 'WF-1', 'e1'),
  rule: 'r',
  kind: 'threshold',
  severity: 'high',
  key: 'WF-1',
  channels: ['c'],
  summary: 'r: 5 matching events',
  fired_at: Date.UTC(2026, 0, 1),
  execution_ids: ['x1', 'x2'],
  event_count: 5,
  evidence: { event_ids: ['e1'], workflow_ids: ['WF-1'], links: ['npx auditline query failed --workflow WF-1 --since 1h'] },
};
