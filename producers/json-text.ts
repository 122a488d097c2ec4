import { invalidInput } from './producer-errors.js';

/** Called for every key of the value being serialized; may replace the value (PII handling). */
export type JsonReplacer = (key: string, value: unknown) => unknown;

/**
 * JSON text of a caller's value, as JSON.stringify writes it (toJSON
 * honoured, undefined members dropped). `undefined` becomes `null`.
 * Values JSON cannot hold (BigInt, circular references, a bare function or
 * symbol), a Map or a Set (JSON would write {}), and a getter that throws
 * are refused with PRODUCER_INVALID_INPUT naming where they sit, never what
 * they hold.
 */
export function toJsonText(value: unknown, where: string, replacer?: JsonReplacer): string {
  if (value === undefined) return 'null';
  let text: string | undefined;
  try {
    text = JSON.stringify(value, function (this: unknown, key: string, v: unknown) {
      // JSON.stringify writes a Map or a Set as {}: the audit would say the data was empty.
      if (v instanceof Map || v instanceof Set) throw new TypeError('Map or Set');
      // Array members arrive with their index as key; only object members can be named fields.
      return !replacer || Array.isArray(this) ? v : replacer(key, v);
    });
  } catch {
    let problem: { path: string; reason: string } | undefined;
    try {
      problem = findProblem(value);
    } catch {
      problem = { path: '', reason: 'a getter or a proxy threw while it was read' };
    }
    throw invalidInput(where, problem ? `${problem.reason} at ${where}${problem.path}` : 'cannot be serialized to JSON', {
      path: problem ? `${where}${problem.path}` : undefined,
    });
  }
  if (text === undefined) throw invalidInput(where, `a ${typeof value} cannot be serialized to JSON`);
  return text;
}

/**
 * Locates the first member JSON.stringify refuses. Keys that look like data
 * rather than field names (not identifiers) are shown as [*], because a map
 * keyed by e-mail addresses must not leak them into an error message.
 */
export function findProblem(root: unknown): { path: string; reason: string } | undefined {
  const ancestors: object[] = [];
  const visit = (value: unknown, path: string): { path: string; reason: string } | undefined => {
    if (typeof value === 'bigint') return { path, reason: 'a BigInt cannot be serialized to JSON' };
    if (typeof value !== 'object' || value === null) return undefined;
    if (value instanceof Map || value instanceof Set) return { path, reason: `a ${value instanceof Map ? 'Map' : 'Set'} would be written as {} (convert it first: Object.fromEntries(map), [...set])` };
    const toJSON = (value as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') {
      let replaced: unknown;
      try {
        replaced = toJSON.call(value);
      } catch {
        return { path, reason: 'toJSON() threw' };
      }
      if (replaced !== value) return visit(replaced, path);
    }
    if (ancestors.includes(value)) return { path, reason: 'circular reference' };
    ancestors.push(value);
    try {
      const entries: [string, unknown][] = Array.isArray(value) ? value.map((v, i) => [`[${i}]`, v]) : Object.entries(value).map(([k, v]) => [pathSegment(k), v]);
      for (const [seg, child] of entries) {
        const found = visit(child, `${path}${seg}`);
        if (found) return found;
      }
    } finally {
      ancestors.pop();
    }
    return undefined;
  };
  return visit(root, '');
}

/**
 * One member of a path in an error message: `.key` for a field name, `[*]`
 * for a key that looks like data (not an identifier), which must not leak.
 */
export function pathSegment(key: string): string {
  return /^[A-Za-z_$][A-Za-z0-9_$]{0,63}$/.test(key) ? `.${key}` : '[*]';
}
