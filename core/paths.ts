import { fileURLToPath } from 'node:url';
import path from 'node:path';

/**
 * Root of the installed package (the folder holding package.json).
 * Compiled files live in dist/<dir>/file.js, so the root is two levels up;
 * non-code assets (Avro schemas, SQL migrations, retention settings) are
 * read from there so that they are never duplicated into dist/.
 */
export const packageRoot: string = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Absolute path of an asset below the package root. */
export function assetPath(...segments: string[]): string {
  return path.join(packageRoot, ...segments);
}
