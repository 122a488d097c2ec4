/** Public argument and result types of the producer API. */

export type StartTrigger = 'webhook' | 'schedule' | 'manual' | 'api';
export type ActorKindInput = 'user' | 'system' | 'service';
export type StepStatusInput = 'success' | 'failed' | 'skipped';
export type FinishStatus = 'success' | 'failed' | 'partial';

/** Argument of startExecution(). */
export interface StartExecutionInput {
  /** Workflow definition id, e.g. WF-003. */
  workflowId: string;
  /** @default workflowId */
  workflowName?: string;
  /** @default '0' */
  workflowVersion?: string;
  trigger: StartTrigger;
  /** Who or what triggered it: an employee, system or service id, never a customer identifier. */
  triggeredBy: { kind: ActorKindInput; id: string };
  /** The execution input (any JSON value); PII fields are handled per piiMode. */
  input?: unknown;
  /** Correlation / trace id of the surrounding request. */
  correlationId?: string;
  /** Execution that started this one. */
  parentExecutionId?: string;
  /** A UUID chosen by the caller; random by default. */
  executionId?: string;
}

/** Argument of startChild(): the parent and, unless given, the correlation id come from the parent. */
export type StartChildInput = Omit<StartExecutionInput, 'parentExecutionId'>;

/** Options of step(). */
export interface StepOptions {
  /** The step input (any JSON value), captured before the step runs. */
  input?: unknown;
  /** Attempt number, 1 for the first try; a retry (> 1) of a step name keeps that step's id. @default 1 */
  attempt?: number;
  /** Explicit position of the step in the workflow; by default steps are numbered 1, 2, ... as they start. */
  stepId?: number;
}

/** Argument of recordStep(): a step that ran without step(). */
export interface RecordStepInput extends StepOptions {
  name: string;
  status: StepStatusInput;
  /** Epoch milliseconds or a Date. */
  startTime: number | Date;
  /** Epoch milliseconds or a Date, not before startTime. */
  endTime: number | Date;
  output?: unknown;
  /** An Error, an `{type, message}` object or any thrown value. */
  error?: unknown;
}

/** Argument of decision(). */
export interface DecisionInput {
  /** The condition evaluated, e.g. `amount > 10000`. */
  condition: string;
  /** Name of the branch taken. */
  taken: string;
  /** Why, as free text. @default '' */
  reason?: string;
  /** The values the condition read (a JSON object). @default {} */
  values?: Record<string, unknown>;
  /** Step the decision belongs to; null for none. @default the step started last, if any */
  stepId?: number | null;
}

/** Second argument of finish(). */
export interface FinishOptions {
  output?: unknown;
  /** An Error, an `{type, message}` object or any thrown value. */
  error?: unknown;
}

/**
 * Where an event is when its call resolved: `delivered` (acknowledged by
 * Kafka with acks=all), `spooled` (fsync'ed to the local spool, Kafka
 * delivery pending) or `dropped` (lost; only with onAuditFailure 'continue').
 */
export type DeliveryOutcome = 'delivered' | 'spooled' | 'dropped';

export interface AuditReceipt {
  eventId: string;
  executionId: string;
  sequence: number;
  outcome: DeliveryOutcome;
}

/** Result of flush() and close(). */
export interface FlushResult {
  /** Events still in the spool, not yet acknowledged by Kafka (0 when everything reached Kafka). */
  spooledEvents: number;
}
