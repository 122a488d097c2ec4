/** Public entry of the event contract: schema, types, codec and registry helpers. */
export { auditEventSchema, enumSymbols, valueSubject, SCHEMA_VERSION, SUBJECT_COMPATIBILITY } from './catalog.js';
export type { RawSchema } from './catalog.js';
export { AuditEventCodec, invalidPaths } from './codec.js';
export { dataClassIndex, fieldsOfClass, DATA_CLASSES } from './data-classes.js';
export type { DataClass } from './data-classes.js';
export { RegistryClient, validateAvro } from './registry.js';
export type { Compatibility } from './registry.js';
export { UnknownSchemaIds } from './unknown-ids.js';
export { frame, unframe, MAGIC_BYTE, HEADER_SIZE } from './wire-format.js';
export * from './types.js';
export { sampleExecution } from './samples.js';
