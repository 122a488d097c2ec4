import type { IHeaders } from 'kafkajs';
import type { ErrorCode } from '../errors.js';

/** One Kafka record as a consumer service received it. */
export interface SourceRecord {
  topic: string;
  partition: number;
  /** Kafka offset (a decimal string, as kafkajs gives it). */
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: IHeaders;
  /** Record timestamp in epoch ms (string). */
  timestamp: string;
}

/**
 * A record the service cannot process, on its way to the dead-letter topic.
 * `reason` is written by the service and must name fields, ids and offsets,
 * never payload values.
 */
export interface DeadLetter {
  record: SourceRecord;
  code: ErrorCode;
  reason: string;
}

/** What a readiness probe reports, per dependency. */
export interface ReadinessReport {
  ready: boolean;
  checks: Record<string, { ok: boolean; detail?: string }>;
}
