import { COMPLIANCE_SETTINGS } from '../compliance/config.js';
import { alertsSettingNames } from '../consumers/alerts/config.js';
import { ARCHIVER_SETTINGS } from '../consumers/archiver/config.js';
import { HOTSTORE_SETTINGS } from '../consumers/hotstore/config.js';
import { TOKENIZER_SETTINGS } from '../consumers/tokenizer/config.js';
import { ENDPOINT_SETTINGS, stackPortShape } from '../core/endpoints.js';
import { serviceSettingNames } from '../core/service/settings.js';
import { STACK_SETTINGS } from '../infra/local-stack/settings.js';
import { PRODUCER_ENV_VARS } from '../producers/env-options.js';
import { ACL_SETTINGS } from './commands/acls.js';
import { SETUP_SETTINGS } from './commands/setup.js';
import { SERVICES } from './commands/run.js';

/**
 * Settings read outside the config modules' schemas: the retention file every
 * command that applies the retention takes (`--retention` overrides it).
 */
const READ_ELSEWHERE = ['AUDITLINE_RETENTION_FILE'] as const;

/** Every AUDITLINE_ variable some part of Auditline reads, from the config modules' own declarations. */
export function knownSettings(env: NodeJS.ProcessEnv = process.env): Set<string> {
  return new Set(
    [
      ...ENDPOINT_SETTINGS,
      ...Object.keys(stackPortShape),
      ...STACK_SETTINGS,
      ...COMPLIANCE_SETTINGS,
      ...Object.keys(SETUP_SETTINGS),
      ...Object.keys(ACL_SETTINGS),
      ...Object.keys(SERVICES).flatMap(serviceSettingNames),
      ...TOKENIZER_SETTINGS,
      ...HOTSTORE_SETTINGS,
      ...ARCHIVER_SETTINGS,
      ...alertsSettingNames(env),
      // Read by services embedding the producer client, and (the hash key) by erase and legal-hold.
      ...Object.values(PRODUCER_ENV_VARS).map(([name]) => name),
      ...READ_ELSEWHERE,
    ].filter((name) => name.startsWith('AUDITLINE_')),
  );
}

/** The known settings with the default files (tests, docs). */
export const KNOWN_SETTINGS: ReadonlySet<string> = knownSettings({});

export interface UnknownSetting {
  name: string;
  /** The known setting nearest in spelling. */
  closest: string | undefined;
}

/**
 * AUDITLINE_ variables set in `env` that no part of Auditline reads, each
 * with the known name nearest in spelling (a misspelt setting is otherwise
 * ignored without a word). Names only: values are never looked at.
 */
export function unknownSettings(env: NodeJS.ProcessEnv = process.env): UnknownSetting[] {
  const known = knownSettings(env);
  return Object.keys(env)
    .filter((name) => name.startsWith('AUDITLINE_') && !known.has(name))
    .sort()
    .map((name) => ({ name, closest: closest(name, known) }));
}

export function unknownSettingWarning(u: UnknownSetting): string {
  return `unknown setting ${u.name} is ignored${u.closest ? ` (closest known: ${u.closest})` : ''}; docs/configuration.md lists the settings`;
}

function closest(name: string, known: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const d = editDistance(name, candidate);
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return best;
}

/** Levenshtein distance. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}
