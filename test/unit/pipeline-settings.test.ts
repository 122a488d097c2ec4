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
