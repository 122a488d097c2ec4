import type { Command } from 'commander';
import { createClickHouse } from '../../core/clients/clickhouse.js';
import { loadEndpoints } from '../../core/endpoints.js';
import { loadMasterKey, loadPreviousMasterKeys, LocalKeyWrapper, SubjectKeyStore } from '../../consumers/tokenizer/index.js';
import { UsageError } from '../exit.js';

/** Exit code of `auditline keys rotate-master` when some keys could not be rewrapped (docs/cli.md). */
export const KEYS_EXIT = { unreadable: 6 } as const;

export function registerKeys(program: Command): void {
  const keys = program.command('keys').description('manage the tokenizer\'s key hierarchy (docs/tokenizer.md)');
  keys
    .command('rotate-master')
    .description('rewrap every subject key under the current master key (AUDITLINE_TOKENIZER_MASTER_KEY), reading the old wrapping with AUDITLINE_TOKENIZER_PREVIOUS_MASTER_KEY')
    .addHelpText(
      'after',
      `\nSteps: 1. give every tokenizer and reveal caller the new key as AUDITLINE_TOKENIZER_MASTER_KEY and the old one as
AUDITLINE_TOKENIZER_PREVIOUS_MASTER_KEY (both readable during the rotation); 2. run this command (idempotent, resumable);
3. remove AUDITLINE_TOKENIZER_PREVIOUS_MASTER_KEY. Exit codes: 0 done, 1 failure, 2 wrong usage, ${KEYS_EXIT.unreadable} some keys are
wrapped by a master key that is not configured (left as they are).`,
    )
    .action(async () => {
      const previous = loadPreviousMasterKeys();
      if (previous.length === 0) throw new UsageError('set AUDITLINE_TOKENIZER_PREVIOUS_MASTER_KEY (or _FILE) to the master key being rotated out');
      const current = new LocalKeyWrapper(loadMasterKey());
      const endpoints = loadEndpoints();
      const client = createClickHouse(endpoints.clickhouse);
      try {
        const store = new SubjectKeyStore(client, endpoints.clickhouse.database, current, { cacheTtlMs: 0, rotationMs: 0, previousWrappers: previous.map((k) => new LocalKeyWrapper(k)) });
        let said = 0;
        const result = await store.rewrapAll(1_000, ({ rewrapped, unreadable }) => {
          // Progress on stderr every 10 s of a long rotation (millions of keys).
          if (Date.now() - said < 10_000) return;
          said = Date.now();
          process.stderr.write(`rotate-master: ${rewrapped} key(s) rewrapped so far${unreadable > 0 ? `, ${unreadable} unreadable` : ''}\n`);
        });
        process.stdout.write(`rewrapped ${result.rewrapped} subject key(s) under master key ${current.keyId}${result.from.length > 0 ? ` (from ${result.from.join(', ')})` : ''}\n`);
        if (result.unreadable > 0) {
          process.stderr.write(`${result.unreadable} subject key(s) are wrapped by a master key that is not configured; they were left as they are\n`);
          process.exitCode = KEYS_EXIT.unreadable;
        }
      } finally {
        await client.close();
      }
    });
}
