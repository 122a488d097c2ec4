// Makes the compiled CLI executable: tsc writes dist/cli/main.js without the
// execute bit, and `npx auditline` runs the package's bin file directly, so a
// fresh clone failed with "auditline: Permission denied".
import { chmodSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const cliBin = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'cli', 'main.js');

export function markBin() {
  chmodSync(cliBin, 0o755);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) markBin();
