import { test } from 'node:test';
import assert from 'node:assert/strict';
import { archiveRollNote } from '../../cli/commands/pipeline.js';
import { isAuditlineError } from '../../core/errors.js';

test("pipeline's archive note takes the archiver's validated roll interval: an invalid AUDITLINE_ARCHIVER_ROLL_MS is CONFIG_INVALID, not `NaN s`", () => {
  assert.match(archiveRollNote({}), /objects roll every 300 s \(AUDITLINE_ARCHIVER_ROLL_MS\)/);
  assert.match(archiveRollNote({ AUDITLINE_ARCHIVER_ROLL_MS: ' 60000 ' }), /objects roll every 60 s /);
  for (const bad of ['5min', '50', '-1']) {
    assert.throws(
      () => archiveRollNote({ AUDITLINE_ARCHIVER_ROLL_MS: bad }),
      (e) => isAuditlineError(e, 'CONFIG_INVALID') && e.details.setting === 'AUDITLINE_ARCHIVER_ROLL_MS' && /^invalid setting AUDITLINE_ARCHIVER_ROLL_MS: /.test(e.message),
      bad,
    );
  }
});

test('pipeline --services: an empty list, an empty entry or a service named twice is wrong usage, never "all services"', async () => {
  const { pipelineServices } = await import('../../cli/commands/pipeline.js');
  const { UsageError } = await import('../../cli/exit.js');
  // The default (no --services) is every service; a named subset is that subset.
  assert.deepEqual((await pipelineServices(undefined, {})).map((s) => s.name), ['tokenizer', 'hotstore', 'archiver', 'alerts']);
  assert.deepEqual(await pipelineServices(' hotstore , archiver', {}), [{ name: 'hotstore', metricsPort: 9464 }, { name: 'archiver', metricsPort: 9466 }]);
  for (const [list, message] of [
    ['', /--services "": expected a comma-separated list of tokenizer, hotstore, archiver, alerts without empty entries/],
    [' , ', /without empty entries/],
    ['hotstore,', /without empty entries/],
    ['hotstore,hotstore', /--services: hotstore named more than once/],
  ] as const) {
    await assert.rejects(pipelineServices(list, {}), (e) => e instanceof UsageError && message.test(e.message), JSON.stringify(list));
  }
});
