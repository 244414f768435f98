/** Engine settings: schema, defaults, files, and proxy resolution from the OS configuration. */
export { DEFAULT_SETTINGS } from './defaults.js';
export { SETTING_PATHS, type SettingPath, type Settings, settingValue } from './schema.js';
export { defaultSettings, parseSettingsText, serializeSettings, validateSettings } from './parse.js';
export { matchesNoProxy, parseEtcEnvironment, parseProxyUrl, type ProxyEnvironment, type ProxyRoute, resolveProxy } from './proxy.js';
