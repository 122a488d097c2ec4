import { loadEndpoints } from '../../core/endpoints.js';
import { registerEventSubjects } from '../../infra/setup.js';
import { RegistryClient } from '../../schemas/index.js';

/**
 * Registers the event schema under the value subject of each test topic,
 * as `auditline setup` does for audit.raw and audit.events: a consumer
 * service waits at start until the subject it reads exists.
 */
export async function registerTestSubjects(topics: readonly string[]): Promise<void> {
  await registerEventSubjects(new RegistryClient(loadEndpoints().registry), topics);
}
