/** Engine settings: schema, defaults, files, and proxy resolution from the OS configuration. */
export { DEFAULT_SETTINGS } from './defaults.js';
export { defaultSettings, parseSettingsText, serializeSettings, validateSettings } from './parse.js';
export {
  matchesNoProxy,
  type ProxyEnvironment,
  type ProxyRoute,
  parseEtcEnvironment,
  parseProxyUrl,
  resolveProxy,
} from './proxy.js';
export { SETTING_PATHS, type SettingPath, type Settings, settingValue } from './schema.js';
