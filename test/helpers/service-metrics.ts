import { parser } from '@prometheus-io/lezer-promql';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { ConsumerMetrics, type ServiceDefaults } from '../../core/service/index.js';

/** A module of a consumer service (`consumers/<service>/<file>.js`); a missing one fails the import. */
async function serviceModule(service: string, file: string): Promise<Record<string, unknown>> {
  return (await import(`../../consumers/${service}/${file}.js`)) as Record<string, unknown>;
}

/** The ServiceDefaults a service's config module exports (its metrics port among them). */
export async function serviceDefaults(service: string): Promise<ServiceDefaults> {
  const mod = await serviceModule(service, 'config');
  const found = Object.values(mod).find((v): v is ServiceDefaults => typeof v === 'object' && v !== null && 'metricsPort' in v && 'groupId' in v);
  if (!found) throw new Error(`consumers/${service}/config.ts exports no ServiceDefaults`);
  return found;
}

/** The service's `load<Service>Config(env)`, which validates every setting it reads. */
export async function serviceConfigLoader(service: string): Promise<(env: NodeJS.ProcessEnv) => unknown> {
  const mod = await serviceModule(service, 'config');
  const name = `load${service[0]!.toUpperCase()}${service.slice(1)}Config`;
  const loader = mod[name];
  if (typeof loader !== 'function') throw new Error(`consumers/${service}/config.ts exports no ${name}`);
  return loader as (env: NodeJS.ProcessEnv) => unknown;
}

/**
 * The series names a service exposes at /metrics, read from a registry built
 * the way its main builds one: prom-client's default metrics with the
 * service prefix, the batch consumer's metrics, and every `*Metrics` class of
 * consumers/<service>/metrics.ts. Registering a name twice throws, as it
 * would at the service's start.
 */
export async function exposedMetricNames(service: string): Promise<Set<string>> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: `auditline_${service}_` });
  new ConsumerMetrics(registry, service);
  const mod = await serviceModule(service, 'metrics');
  const classes = Object.entries(mod).filter(([key, value]) => typeof value === 'function' && /Metrics$/.test(key));
  if (classes.length === 0) throw new Error(`consumers/${service}/metrics.ts exports no *Metrics class`);
  for (const [, value] of classes) new (value as new (registry: Registry) => unknown)(registry);
  const names = new Set<string>();
  for (const metric of await registry.getMetricsAsJSON()) {
    const type = String(metric.type);
    const suffixes = type === 'histogram' ? ['_bucket', '_sum', '_count'] : type === 'summary' ? ['', '_sum', '_count'] : [''];
    for (const s of suffixes) names.add(`${metric.name}${s}`);
  }
  return names;
}

/** Grafana's range variables, replaced by a duration so that the expression parses as PromQL. */
const GRAFANA_RANGE_VARIABLES = /\$__(rate_interval|interval|range)\b/g;

/**
 * Parses a PromQL expression (Prometheus's own grammar) and returns the
 * metric names it selects: bare names, `__name__="x"` and `__name__=~"a_(b|c)_d"`
 * (expanded; a regex other than plain alternations is an error). Throws on a
 * syntax error, naming where.
 */
export function promqlMetricNames(expr: string): string[] {
  const text = expr.replace(GRAFANA_RANGE_VARIABLES, '1m');
  const names: string[] = [];
  const cursor = parser.parse(text).cursor();
  do {
    if (cursor.type.isError) throw new Error(`PromQL syntax error at ${cursor.from} in: ${expr}`);
    const node = cursor.node;
    if (node.name === 'Identifier' && node.parent?.name === 'VectorSelector') names.push(text.slice(node.from, node.to));
    if (/LabelMatcher$/.test(node.name) && node.name !== 'LabelMatchers') {
      const label = node.getChild('LabelName');
      const op = node.getChild('MatchOp');
      const value = node.getChild('StringLiteral');
      if (label && op && value && text.slice(label.from, label.to) === '__name__') {
        const literal = unquote(text.slice(value.from, value.to));
        const operator = text.slice(op.from, op.to);
        if (operator === '=') names.push(literal);
        else if (operator === '=~') names.push(...expandAlternations(literal));
        else throw new Error(`__name__${operator} selects names the test cannot list: ${expr}`);
      }
    }
  } while (cursor.next());
  return names;
}

function unquote(literal: string): string {
  if (literal.startsWith('"')) return JSON.parse(literal) as string;
  return literal.slice(1, -1);
}

/** `a_(b|c)_d` -> [a_b_d, a_c_d]; groups may repeat; anything else regex-like is refused. */
export function expandAlternations(pattern: string): string[] {
  const group = /\(([A-Za-z0-9_:|]+)\)/.exec(pattern);
  if (!group) {
    if (!/^[A-Za-z_:][A-Za-z0-9_:]*$/.test(pattern)) throw new Error(`not a plain alternation of metric names: ${pattern}`);
    return [pattern];
  }
  const before = pattern.slice(0, group.index);
  const after = pattern.slice(group.index + group[0].length);
  return group[1]!.split('|').flatMap((alt) => expandAlternations(`${before}${alt}${after}`));
}
