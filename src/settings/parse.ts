/** Settings files in (YAML, partial), fully defaulted frozen Settings out; and back to YAML. */
import { stringify } from 'yaml';
import { type LocatedDocument, parseYaml, validateDocument } from '../document.js';
import { ErrorCode } from '../errors.js';
import { type Settings, settingsSchema } from './schema.js';

/** Parses a settings file; keys left out take their defaults. Throws WARDEN_E_YAML_SYNTAX or WARDEN_E_SETTINGS_INVALID. */
export function parseSettingsText(text: string, source: { file?: string } = {}): Settings {
  const doc = parseYaml(text, source.file);
  return validateSettings(doc.value ?? {}, source, doc);
}

/** Validates settings given as a plain value; returns them fully defaulted and frozen. */
export function validateSettings(
  value: unknown,
  source: { file?: string } = {},
  doc?: LocatedDocument,
): Settings {
  const kind = {
    code: ErrorCode.SETTINGS_INVALID,
    what: 'settings',
    notAMapping: 'settings are a mapping of keys to values',
  };
  return deepFreeze(validateDocument(settingsSchema, value, kind, source.file, doc));
}

/** The settings with every default applied. */
export function defaultSettings(): Settings {
  return validateSettings({});
}

/** Writes settings as YAML (every key, so the file documents the current state). */
export function serializeSettings(settings: Settings): string {
  return `# Warden engine settings. Reference: docs/settings.md\n${stringify(settings, { lineWidth: 0 })}`;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
