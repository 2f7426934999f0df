/**
 * config/: the one place settings are read. `loadConfig` resolves each server setting (flag >
 * environment > tightloop.yaml > default) into a validated ServerConfig; `config show` prints it
 * with each value's source, secrets redacted. The settings are listed once in settings.ts and
 * documented in docs/configuration.md; test/config-env-scan.test.ts fails when code elsewhere
 * reads a setting from process.env.
 */
export { INGEST_DEFAULTS, serverConfigSchema, type ServerConfig } from './schema.js';
export { CLIENT_SETTINGS, CONFIG_FILE_NAME, DEFAULT_DATA_DIR, SETTINGS, type Setting } from './settings.js';
export { ConfigError, formatIssue, loadConfig, type ConfigInput, type ConfigIssue, type LoadedConfig, type SettingSource } from './load.js';
export { formatShown, redact, REDACTED, shownSettings, type ShownSetting } from './show.js';
export { clientToken, clientUrl, DEFAULT_CLIENT_URL } from './client.js';
