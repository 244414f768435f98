/** Settings files in (YAML, partial), fully defaulted frozen Settings out; and back to YAML. */
import { stringify } from 'yaml';
import {
  issuesToProblems,
  type LocatedDocument,
  PARSE_OPTIONS,
  parseYaml,
  problemAt,
  throwIfProblems,
} from '../document.js';
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
  const file = source.file;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throwIfProblems(ErrorCode.SETTINGS_INVALID, file ?? 'settings', [
      problemAt(doc, file, [], 'settings are a mapping of keys to values'),
    ]);
  }
  const result = settingsSchema.safeParse(value, PARSE_OPTIONS);
  if (!result.success) {
    throwIfProblems(
      ErrorCode.SETTINGS_INVALID,
      file ?? 'settings',
      issuesToProblems(result.error.issues, doc, file, () => undefined),
    );
  }
  return deepFreeze(result.data!);
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
