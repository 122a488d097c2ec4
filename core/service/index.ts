/**
 * The runtime every consumer service shares: settings, the batch consumer
 * that commits only settled batches, the dead-letter publisher, retries
 * with backoff, metrics and the /metrics, /healthz, /readyz endpoints, and
 * graceful shutdown (docs/hotstore.md shows it in use).
 */
export { BatchAbandonedError, BatchConsumer, heartbeatOrAbandon, type BatchConsumerOptions, type BatchContext, type BatchHandler, type BatchResult, type CommitMode } from './batch-consumer.js';
export { ConsumerMetrics, consumerMetricDefinitions, type RetryStage } from './consumer-metrics.js';
export { DLQ_HEADERS, DlqPublisher, deadLetterMessage, MAX_REASON_LENGTH, readDeadLetter, REDRIVE_HEADERS, redriveMessage, type StoredDeadLetter } from './dlq.js';
export { startServiceHttpServer, type ServiceHttpOptions, type ServiceHttpServer } from './http-server.js';
export { backoffDelay, retryRetriable, sleep, StoppedError, type BackoffOptions, type RetryOptions } from './retry.js';
export { runService, SERVICE_EXIT, type ManagedService, type RunServiceOptions } from './runtime.js';
export { loadServiceRuntimeSettings, settingsPrefix, type ServiceDefaults, type ServiceRuntimeSettings } from './settings.js';
export type { DeadLetter, ReadinessReport, SourceRecord } from './types.js';
export { decodeFailureReason, decodeOrDeadLetter } from './decode.js';
export { consumerReadiness, requireTopics, requireTopicsOnce, startupWait } from './checks.js';
export { pauseOnce } from './test-hooks.js';
export { SerialByKey } from './serial.js';
