import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AuditlineError } from '../../core/errors.js';
import { runDemo } from '../../demo/driver.js';
import type { AuditProducer } from '../../producers/index.js';

test('executions the client could not record are counted with the reason that stopped them, never hidden', async () => {
  // A client whose every call fails, as with Kafka and the spool both unavailable.
  const failing = {
    startExecution: async () => {
      throw new AuditlineError('KAFKA_UNAVAILABLE', 'brokers 127.0.0.1:1 unreachable', { retriable: true });
    },
  } as unknown as AuditProducer;
  const summary = await runDemo(failing, { executions: 4, rate: 1_000, concurrency: 2, seed: 1 });
  assert.equal(summary.errors, 4);
  assert.deepEqual(summary.outcomes, []);
  assert.deepEqual(summary.errorMessages, [{ message: 'KAFKA_UNAVAILABLE: brokers 127.0.0.1:1 unreachable', count: 4 }]);
});
