import { invalidInput } from './producer-errors.js';

/** Called for every key of the value being serialized; may replace the value (PII handling). */
export type JsonReplacer = (key: string, value: unknown) => unknown;

/**
 * JSON text of a caller's value, as JSON.stringify writes it (toJSON
 * honoured, undefined members dropped). `undefined` becomes `null`.
 * Values JSON cannot hold (BigInt, circular references, a bare function or
 * symbol) throw PRODUCER_INVALID_INPUT naming where they sit, never what
 * they hold.
 */
export function toJsonText(value: unknown, where: string, replacer?: JsonReplacer): string {
  if (value === undefined) return 'null';
  let text: string | undefined;
  try {
    text = replacer ? JSON.stringify(value, function (this: unknown, key: string, v: unknown) {
      // Array members arrive with their index as key; only object members can be named fields.
      return Array.isArray(this) ? v : replacer(key, v);
    }) : JSON.stringify(value);
  } catch (err) {
    const problem = findProblem(value);
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
      const entries: [string, unknown][] = Array.isArray(value) ? value.map((v, i) => [`[${i}]`, v]) : Object.entries(value).map(([k, v]) => [segment(k), v]);
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

function segment(key: string): string {
  return /^[A-Za-z_$][A-Za-z0-9_$]{0,63}$/.test(key) ? `.${key}` : '[*]';
}
