/** Public entry of the alerts service: the service, its configuration, the rule and channel files, and the webhook contract. */
export { runAlerts } from './main.js';
export { AlertsService, alertGroups } from './service.js';
export { loadAlertsConfig, loadAlertsTopics, ALERTS_DEFAULTS, type AlertsConfig } from './config.js';
export { loadRulesFile, parseRules, SEVERITIES, type Rule, type RuleKind } from './rules.js';
export { loadChannelsFile, parseChannels, type Channel } from './channels.js';
export { signature, webhookBody, WEBHOOK_HEADERS } from './webhook.js';
export { TargetPolicy } from './ssrf.js';
export { ALERTS_METRICS } from './metrics.js';
export { ALERT_TABLES } from './store.js';
export type { Alert, Evidence } from './alert.js';
