export { ConfigSchema, type ConfigInput, type ConfigKey, type ServeConfig } from './schema.js';
export { FIELDS, CONFIG_KEYS, flagName, envName, coerce, type FieldSpec, type FieldKind } from './fields.js';
export { loadConfig, resolveConfig, CONFIG_FILE_NAME, type LoadOptions } from './load.js';
export { durationSeconds, formatDuration } from './duration.js';
