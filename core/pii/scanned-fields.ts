import { auditEventSchema, dataClassIndex, type EventKind } from '../../schemas/index.js';

/**
 * sox and internal string fields that people write (names, branch
 * conditions, error types). Their tag says they hold no personal data, but a
 * workflow author can still put a customer's value in a step name or a
 * condition (`customer_email == "ann@example.com"`), so they are scanned like
 * the pii fields; a field without PII is written back unchanged. Ids,
 * versions, timestamps and the actor (`triggered_by`, an employee or a
 * system for SOX) are not.
 */
export const FREE_TEXT_FIELDS: readonly string[] = [
  'payload.ExecutionStarted.workflow_name',
  'payload.StepFinished.step_name',
  'payload.StepFinished.error.type',
  'payload.DecisionRecorded.branch_condition',
  'payload.DecisionRecorded.branch_taken',
  'payload.ExecutionFinished.error.type',
];

/**
 * Dotted paths (below the payload) of the fields the tokenizer scans, by
 * event kind: those tagged `pii` in the schema (its dataClass tags), then
 * FREE_TEXT_FIELDS. Throws when a pii field sits outside the payloads or a
 * free-text field is missing from the schema or tagged pii.
 */
export function scannedFieldPaths(): Map<EventKind, string[][]> {
  const index = dataClassIndex(auditEventSchema().raw);
  const byKind = new Map<EventKind, string[][]>();
  const add = (path: string) => {
    const [root, kind, ...rest] = path.split('.');
    if (root !== 'payload' || !kind || rest.length === 0) throw new Error(`pii field ${path} is outside the event payloads; the tokenizer cannot handle it yet`);
    const list = byKind.get(kind as EventKind) ?? [];
    list.push(rest);
    byKind.set(kind as EventKind, list);
  };
  // Envelope fields are sox/internal today; a pii envelope field would need handling in add() first.
  for (const [path, cls] of index) if (cls === 'pii') add(path);
  for (const path of FREE_TEXT_FIELDS) {
    const cls = index.get(path);
    if (cls === undefined || cls === 'pii') throw new Error(`free-text field ${path} is ${cls === undefined ? 'not in the event schema' : 'tagged pii (scanned already)'}`);
    add(path);
  }
  return byKind;
}
