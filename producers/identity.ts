import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { assetPath } from '../core/paths.js';
import type { ProducerIdentity } from '../schemas/index.js';

/** Version of the installed Auditline package, read once from its package.json. */
export const CLIENT_VERSION: string = (JSON.parse(readFileSync(assetPath('package.json'), 'utf8')) as { version: string }).version;

/** Identity written into every event of one producer instance (instance_id is new per instance). */
export function producerIdentity(service: string): ProducerIdentity {
  return Object.freeze({ service, host: os.hostname(), client_version: CLIENT_VERSION, instance_id: randomUUID() });
}
