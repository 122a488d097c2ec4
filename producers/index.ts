/**
 * Public entry of the producer library (`auditline/producer`): what a
 * workflow service needs to record its executions. docs/producer.md.
 */
export { createAuditProducer, AuditProducer, PII_MODE_HEADER, PII_FOUND_HEADER } from './audit-producer.js';
export { Execution } from './execution.js';
export { producerOptionsFromEnv, PRODUCER_ENV_VARS } from './env-options.js';
export { resolveProducerOptions, producerDefaults, DEFAULT_PII_FIELDS, MAX_PAYLOAD_BYTES } from './options.js';
export type { ProducerOptions, ResolvedProducerOptions, AckMode, AuditFailurePolicy, PiiMode, SaslOptions } from './options.js';
export type { ProducerLogger } from './logger.js';
export { PRODUCER_METRICS } from './metrics.js';
export type {
  StartExecutionInput,
  StartChildInput,
  StepOptions,
  RecordStepInput,
  DecisionInput,
  FinishOptions,
  FinishStatus,
  StartTrigger,
  ActorKindInput,
  StepStatusInput,
  AuditReceipt,
  DeliveryOutcome,
  FlushResult,
} from './types.js';
export { AuditlineError, isAuditlineError } from '../core/errors.js';
export type { ErrorCode } from '../core/errors.js';
