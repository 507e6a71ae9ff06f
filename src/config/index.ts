export { ConfigSchema, type ConfigInput, type ConfigKey, type ServeConfig } from './schema.js';
export { FIELDS, CONFIG_KEYS, RENAMED_KEYS, flagName, envName, coerce } from './fields.js';
export type { FieldSpec, FieldKind } from './field-spec.js';
export { loadConfig, resolveConfig, CONFIG_FILE_NAME, type LoadOptions } from './load.js';
export { durationSeconds, formatDuration } from './duration.js';
