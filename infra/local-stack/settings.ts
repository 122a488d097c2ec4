import os from 'node:os';
import { resolveStackDir } from './active.js';
import path from 'node:path';
import { z } from 'zod';
import { parseEnv } from '../../core/env.js';
import { DEFAULT_STACK_PORTS, localStackPorts, stackPortShape, type StackPorts } from '../../core/endpoints.js';
import { packageRoot } from '../../core/paths.js';
import type { PrincipalName } from '../clickhouse/access.js';

export { DEFAULT_STACK_PORTS, type StackPorts };

/** Services of the local stack, in start order. */
export const SERVICE_NAMES = ['kafka', 'registry', 'clickhouse', 's3'] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

/**
 * Settings of the local stack launcher (docs/local-stack.md). Every value
 * has a fixed, documented default; docker-compose.yml publishes the same ports.
 */
export interface StackSettings {
  /** Pid files, logs and service data. */
  stackDir: string;
  /** Downloaded services (outside the work tree), shared by every clone on the machine. */
  cacheDir: string;
  java: string;
  python: string;
  startTimeoutMs: number;
  kafka: { version: string; port: number; controllerPort: number; heap: string };
  registry: { version: string; port: number; heap: string };
  clickhouse: {
    version: string;
    port: number;
    /** Database the users' grants name (the one AUDITLINE_CLICKHOUSE_DATABASE gives the services). */
    database: string;
    /** Passwords of the Auditline users of the local server (infra/clickhouse/access.ts); the `default` user keeps none. */
    passwords: Record<PrincipalName, string>;
  };
  s3: { motoVersion: string; port: number };
}

/** The ports of a stack's settings. */
export function stackPorts(s: StackSettings): StackPorts {
  return { kafka: s.kafka.port, kafkaController: s.kafka.controllerPort, registry: s.registry.port, clickhouse: s.clickhouse.port, s3: s.s3.port };
}

const shape = {
  AUDITLINE_STACK_DIR: z.string().optional(),
  AUDITLINE_CACHE_DIR: z.string().optional(),
  XDG_CACHE_HOME: z.string().optional(),
  JAVA_HOME: z.string().optional(),
  AUDITLINE_STACK_JAVA: z.string().optional(),
  AUDITLINE_STACK_PYTHON: z.string().default('python3'),
  AUDITLINE_STACK_START_TIMEOUT_S: z.coerce.number().int().min(5, 'must be at least 5 seconds').default(180),
  AUDITLINE_STACK_KAFKA_VERSION: z
    .string()
    .default('3.9.1')
    .refine((v) => /^[34]\.\d+\.\d+$/.test(v), 'must be a Kafka 3.x or 4.x version such as 3.9.1'),
  AUDITLINE_STACK_KAFKA_HEAP: z.string().regex(/^\d+[mg]$/, 'must look like 512m or 1g').default('512m'),
  AUDITLINE_STACK_REGISTRY_VERSION: z.string().default('3.0.9'),
  AUDITLINE_STACK_REGISTRY_HEAP: z.string().regex(/^\d+[mg]$/, 'must look like 384m or 1g').default('384m'),
  AUDITLINE_STACK_CLICKHOUSE_VERSION: z.string().default('26.7.3-stable.1'),
  AUDITLINE_CLICKHOUSE_DATABASE: z
    .string()
    .default('audit')
    .refine((v) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(v), 'must be a plain identifier'),
  AUDITLINE_STACK_CLICKHOUSE_WRITER_PASSWORD: z.string().default('auditline-writer-local'),
  AUDITLINE_STACK_CLICKHOUSE_OPERATIONAL_PASSWORD: z.string().default('auditline-operational-local'),
  AUDITLINE_STACK_CLICKHOUSE_COMPLIANCE_PASSWORD: z.string().default('auditline-compliance-local'),
  AUDITLINE_STACK_MOTO_VERSION: z.string().default('5.2.5'),
  ...stackPortShape,
};

/** Reads the launcher settings; a bad value fails with the variable's name. */
/** Names of the launcher's settings (cli/known-settings.ts). */
export const STACK_SETTINGS: readonly string[] = Object.keys(shape);

export function loadStackSettings(env: NodeJS.ProcessEnv = process.env): StackSettings {
  const c = parseEnv(shape, env);
  const cacheBase = c.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache');
  const cacheDir = path.resolve(c.AUDITLINE_CACHE_DIR ?? path.join(cacheBase, 'auditline'));
  const ownDir = path.resolve(path.join(packageRoot, '.auditline', 'stack'));
  const ports = localStackPorts(env);
  return {
    // Unset: this clone's, or the directory of the stack another clone runs on these ports on this machine (active.ts).
    stackDir: c.AUDITLINE_STACK_DIR !== undefined ? path.resolve(c.AUDITLINE_STACK_DIR) : resolveStackDir(ownDir, cacheDir, ports),
    cacheDir,
    java: c.AUDITLINE_STACK_JAVA ?? (c.JAVA_HOME ? path.join(c.JAVA_HOME, 'bin', 'java') : 'java'),
    python: c.AUDITLINE_STACK_PYTHON,
    startTimeoutMs: c.AUDITLINE_STACK_START_TIMEOUT_S * 1000,
    kafka: {
      version: c.AUDITLINE_STACK_KAFKA_VERSION,
      port: ports.kafka,
      controllerPort: ports.kafkaController,
      heap: c.AUDITLINE_STACK_KAFKA_HEAP,
    },
    registry: { version: c.AUDITLINE_STACK_REGISTRY_VERSION, port: ports.registry, heap: c.AUDITLINE_STACK_REGISTRY_HEAP },
    clickhouse: {
      version: c.AUDITLINE_STACK_CLICKHOUSE_VERSION,
      port: ports.clickhouse,
      database: c.AUDITLINE_CLICKHOUSE_DATABASE,
      passwords: {
        writer: c.AUDITLINE_STACK_CLICKHOUSE_WRITER_PASSWORD,
        operational: c.AUDITLINE_STACK_CLICKHOUSE_OPERATIONAL_PASSWORD,
        compliance: c.AUDITLINE_STACK_CLICKHOUSE_COMPLIANCE_PASSWORD,
      },
    },
    s3: { motoVersion: c.AUDITLINE_STACK_MOTO_VERSION, port: ports.s3 },
  };
}
