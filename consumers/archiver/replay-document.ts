import { CONFLICTING_STATUS, type StoredExecutionRecord } from '../hotstore/queries.js';
import { unwrapPayload, type AuditEvent, type DecisionRecorded, type ExecutionFinished, type ExecutionStarted, type StepFinished } from '../../schemas/index.js';
import { isoFromClickhouseTime } from '../../core/clients/clickhouse-time.js';

/** Format tag of `auditline replay` output (docs/archiver.md, "Replay"). */
export const REPLAY_FORMAT = 'auditline-replay/1';

/**
 * An execution rebuilt for a re-run: what came in, every step attempt with
 * input, output and error, the decisions, and how it ended. JSON-bearing
 * fields hold JSON text as stored (PII tokenized), parsed when printed.
 */
export interface ReplayDocument {
  format: typeof REPLAY_FORMAT;
  execution_id: string;
  source: 'hotstore' | 'archive';
  workflow: { id: string; name: string; version: string };
  trigger: string;
  triggered_by: { kind: string; id: string };
  correlation_id: string | null;
  parent_execution_id: string | null;
  start_time: string | null;
  input: string | null;
  input_truncated: boolean;
  steps: {
    step_id: number;
    step_name: string;
    attempt: number;
    status: string;
    start_time: string;
    end_time: string;
    duration_ms: number;
    input: string | null;
    output: string | null;
    truncated: boolean;
    error: { type: string; message: string } | null;
  }[];
  decisions: { step_id: number | null; branch_condition: string; branch_taken: string; branch_reason: string; condition_values: string | null; decided_at: string }[];
  result: { status: string; end_time: string; duration_ms: number; output: string | null; error: { type: string; message: string } | null } | null;
  /** Status the reveal rules look at: the result's, or `running`. */
  status: string;
  pii: 'tokenized' | 'revealed';
  /** Archive objects read (source `archive`). */
  archive_objects?: string[];
}

const iso = (ms: number) => new Date(ms).toISOString();
const orNull = (text: string | null | undefined) => (text === undefined || text === null || text === '' ? null : text);

/** Rebuilds an execution from its archived events (redelivered copies collapse on event_id). */
export function replayFromEvents(executionId: string, events: readonly AuditEvent[], objects: string[]): ReplayDocument {
  const mine = events.filter((e) => e.execution_id === executionId);
  const unique = [...new Map(mine.map((e) => [e.event_id, e])).values()].sort((a, b) => a.sequence - b.sequence);
  const doc = emptyDocument(executionId, 'archive');
  doc.archive_objects = objects;
  // Outcomes of every copy, not only of the one kept per event_id: an ExecutionFinished forged under the genuine one's
  // event id with another status must still make the execution 'conflicting' (as the hot store, which keeps both rows).
  const outcomes = new Set<string>();
  for (const e of mine) {
    const { kind, value } = unwrapPayload(e.payload);
    if (kind === 'ExecutionFinished') outcomes.add((value as ExecutionFinished).status);
  }
  for (const e of unique) {
    doc.workflow.id = e.workflow_id;
    doc.correlation_id ??= e.correlation_id;
    const { kind, value } = unwrapPayload(e.payload);
    if (kind === 'ExecutionStarted') {
      const v = value as ExecutionStarted;
      Object.assign(doc, {
        workflow: { id: e.workflow_id, name: v.workflow_name, version: v.workflow_version },
        trigger: v.trigger,
        triggered_by: { kind: v.triggered_by.kind, id: v.triggered_by.id },
        parent_execution_id: v.parent_execution_id,
        start_time: iso(v.start_time),
        input: v.input,
        input_truncated: v.input_truncation !== null,
      });
    } else if (kind === 'StepFinished') {
      const v = value as StepFinished;
      doc.steps.push({
        step_id: v.step_id,
        step_name: v.step_name,
        attempt: v.attempt,
        status: v.status,
        start_time: iso(v.start_time),
        end_time: iso(v.end_time),
        duration_ms: v.duration_ms,
        input: v.input_data,
        output: v.output_data,
        truncated: v.data_truncation !== null,
        error: v.error,
      });
    } else if (kind === 'DecisionRecorded') {
      const v = value as DecisionRecorded;
      doc.decisions.push({ step_id: v.step_id, branch_condition: v.branch_condition, branch_taken: v.branch_taken, branch_reason: v.branch_reason, condition_values: v.condition_values, decided_at: iso(e.event_time) });
    } else {
      const v = value as ExecutionFinished;
      doc.result = { status: v.status, end_time: iso(v.end_time), duration_ms: v.duration_ms, output: v.output, error: v.error };
    }
  }
  doc.steps.sort((a, b) => a.step_id - b.step_id || a.attempt - b.attempt);
  // Outcomes that disagree (a second ExecutionFinished with another status) make it 'conflicting': no status-bound reveal rule allows it.
  doc.status = outcomes.size > 1 ? CONFLICTING_STATUS : (doc.result?.status ?? 'running');
  return doc;
}

/** Rebuilds an execution from the hot store's rows. */
export function replayFromHotstore(executionId: string, r: StoredExecutionRecord): ReplayDocument {
  const doc = emptyDocument(executionId, 'hotstore');
  if (r.started) {
    const s = r.started;
    Object.assign(doc, {
      workflow: { id: s.workflow_id, name: s.workflow_name, version: s.workflow_version },
      trigger: s.trigger,
      triggered_by: { kind: s.triggered_by_kind, id: s.triggered_by_id },
      correlation_id: orNull(s.correlation_id),
      parent_execution_id: orNull(s.parent_execution_id),
      start_time: isoFromClickhouseTime(s.start_time),
      input: orNull(s.input),
      input_truncated: s.input_truncated,
    });
  }
  doc.steps = r.steps.map((s) => ({
    step_id: s.step_id,
    step_name: s.step_name,
    attempt: s.attempt,
    status: s.status,
    start_time: isoFromClickhouseTime(s.start_time),
    end_time: isoFromClickhouseTime(s.end_time),
    duration_ms: s.duration_ms,
    input: orNull(s.input_data),
    output: orNull(s.output_data),
    truncated: s.data_truncated,
    error: s.error_type || s.error_message ? { type: s.error_type, message: s.error_message } : null,
  }));
  doc.decisions = r.decisions.map((d) => ({
    step_id: d.step_id,
    branch_condition: d.branch_condition,
    branch_taken: d.branch_taken,
    branch_reason: d.branch_reason,
    condition_values: orNull(d.condition_values),
    decided_at: isoFromClickhouseTime(d.decided_at),
  }));
  if (r.result) {
    const x = r.result;
    doc.result = { status: x.status, end_time: isoFromClickhouseTime(x.end_time), duration_ms: x.duration_ms, output: orNull(x.output), error: x.error_type || x.error_message ? { type: x.error_type, message: x.error_message } : null };
  }
  doc.status = r.result && Number(r.result.statuses) > 1 ? CONFLICTING_STATUS : (doc.result?.status ?? 'running');
  return doc;
}

function emptyDocument(executionId: string, source: ReplayDocument['source']): ReplayDocument {
  return {
    format: REPLAY_FORMAT,
    execution_id: executionId,
    source,
    workflow: { id: '', name: '', version: '' },
    trigger: 'unknown',
    triggered_by: { kind: 'unknown', id: '' },
    correlation_id: null,
    parent_execution_id: null,
    start_time: null,
    input: null,
    input_truncated: false,
    steps: [],
    decisions: [],
    result: null,
    status: 'running',
    pii: 'tokenized',
  };
}

/** The PII-bearing texts of a document, named as the reveal access log records them. */
export function piiFields(doc: ReplayDocument): { name: string; text: string }[] {
  const out: { name: string; text: string }[] = [];
  const add = (name: string, text: string | null | undefined) => {
    if (text) out.push({ name, text });
  };
  add('execution.input', doc.input);
  for (const s of doc.steps) {
    const at = `step[${s.step_id}].attempt[${s.attempt}]`;
    add(`${at}.input_data`, s.input);
    add(`${at}.output_data`, s.output);
    add(`${at}.error_message`, s.error?.message);
  }
  doc.decisions.forEach((d, i) => {
    add(`decision[${i}].branch_reason`, d.branch_reason);
    add(`decision[${i}].condition_values`, d.condition_values);
  });
  add('execution.output', doc.result?.output);
  add('execution.error_message', doc.result?.error?.message);
  return out;
}

/** Puts revealed texts back into the document (same names as piiFields). */
export function applyRevealed(doc: ReplayDocument, revealed: ReadonlyMap<string, string>): ReplayDocument {
  const out = structuredClone(doc);
  const pick = (name: string, text: string | null) => (text ? (revealed.get(name) ?? text) : text);
  out.input = pick('execution.input', out.input);
  for (const s of out.steps) {
    const at = `step[${s.step_id}].attempt[${s.attempt}]`;
    s.input = pick(`${at}.input_data`, s.input);
    s.output = pick(`${at}.output_data`, s.output);
    if (s.error) s.error.message = pick(`${at}.error_message`, s.error.message) ?? '';
  }
  out.decisions.forEach((d, i) => {
    d.branch_reason = pick(`decision[${i}].branch_reason`, d.branch_reason) ?? '';
    d.condition_values = pick(`decision[${i}].condition_values`, d.condition_values);
  });
  if (out.result) {
    out.result.output = pick('execution.output', out.result.output);
    if (out.result.error) out.result.error.message = pick('execution.error_message', out.result.error.message) ?? '';
  }
  out.pii = 'revealed';
  return out;
}

/** The document as printed: JSON texts become JSON values where they parse (a re-run takes `input` as is). */
export function renderReplay(doc: ReplayDocument): Record<string, unknown> {
  const parse = (text: string | null) => {
    if (text === null) return null;
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return text;
    }
  };
  return {
    ...doc,
    input: parse(doc.input),
    steps: doc.steps.map((s) => ({ ...s, input: parse(s.input), output: parse(s.output) })),
    decisions: doc.decisions.map((d) => ({ ...d, condition_values: parse(d.condition_values) })),
    result: doc.result ? { ...doc.result, output: parse(doc.result.output) } : null,
  };
}
