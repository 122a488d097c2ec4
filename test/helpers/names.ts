import { randomBytes } from 'node:crypto';

/** A name unique to one test run, so tests never share topics, tables or buckets. */
export function uniqueName(prefix: string, separator = '-'): string {
  return `${prefix}${separator}${Date.now().toString(36)}${separator}${randomBytes(3).toString('hex')}`;
}
