// `npm run test:kafka4 [-- <version>]`: runs the Kafka, registry and schema
// integration tests against a Kafka 4.x broker (default 4.1.1) in a private
// stack on other ports, then stops it. CI runs the default 3.9.x broker; this
// is how docs/compatibility.md was checked.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { build, cli, run } from './lib.mjs';

const version = process.argv[2] ?? '4.1.1';
build();
const stackDir = mkdtempSync(path.join(os.tmpdir(), 'auditline-kafka4-'));
const stackEnv = {
  ...process.env,
  AUDITLINE_STACK_DIR: stackDir,
  AUDITLINE_STACK_KAFKA_VERSION: version,
  AUDITLINE_STACK_KAFKA_PORT: '19092',
  AUDITLINE_STACK_KAFKA_CONTROLLER_PORT: '19093',
  AUDITLINE_STACK_REGISTRY_PORT: '18081',
};
let code = run(process.execPath, [cli, 'stack', 'up', '--only', 'registry'], { env: stackEnv });
if (code === 0) {
  const testEnv = {
    ...process.env,
    AUDITLINE_KAFKA_BROKERS: '127.0.0.1:19092',
    AUDITLINE_SCHEMA_REGISTRY_URL: 'http://127.0.0.1:18081/apis/ccompat/v7',
  };
  const files = ['kafka', 'registry', 'schemas'].map((f) => path.join('dist', 'test', 'integration', `${f}.test.js`));
  code = run(process.execPath, ['--test', '--test-reporter=spec', ...files], { env: testEnv });
}
run(process.execPath, [cli, 'stack', 'down'], { env: stackEnv });
rmSync(stackDir, { recursive: true, force: true });
console.log(`Kafka ${version}: ${code === 0 ? 'all Kafka, registry and schema tests passed' : 'FAILED'}`);
process.exit(code);
