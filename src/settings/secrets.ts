/**
 * The one redaction of secrets for everything that leaves the engine's own files: settings as
 * settings.get shows them, config.diff's texts, audit log items (and so syslog and every console),
 * internal rules' explanations. The secrets the settings can hold are the credentials of URLs
 * (`proxy.url: http://user:password@proxy:3128`, and any other URL setting): the password (or a
 * user-only token) is shown as `***`. The engine itself keeps and uses the real values.
 */

/** What a secret is shown as. */
export const REDACTED = '***';

/**
 * `scheme://user:password@` (or `scheme://token@`), and a scheme-less `user:password@host` as proxy
 * variables may hold it. Userinfo holds no `/` or white space; as URL parsers do, the last `@`
 * ends it (a password may hold an unencoded `@`).
 */
const CREDENTIALS =
  /([a-z][a-z0-9+.-]*:\/\/)([^\s/@:]*)(?::([^\s/]*))?@|(^|[\s'"=(,])([^\s/@:'"<>=]+):([^\s/'"<>]*)@/gi;

/** `text` with every URL credential's secret part replaced by `***`. */
export function redactText(text: string): string {
  if (!text.includes('@')) return text;
  return text.replace(
    CREDENTIALS,
    (_m, scheme?: string, user?: string, password?: string, lead?: string, bareUser?: string) => {
      if (scheme !== undefined) {
        // A user without a password is a token (`https://TOKEN@host`): it is the secret then.
        return password === undefined ? `${scheme}${REDACTED}@` : `${scheme}${user}:${REDACTED}@`;
      }
      return `${lead}${bareUser}:${REDACTED}@`;
    },
  );
}

/** A copy of `value` (a string, or plain data of objects and arrays) with every string redacted. */
export function redactSecrets<T>(value: T): T {
  if (typeof value === 'string') return redactText(value) as T;
  if (Array.isArray(value)) return value.map((v) => redactSecrets(v)) as T;
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = redactSecrets(v);
    return out as T;
  }
  return value;
}

/**
 * A console that shows redacted settings sends them back redacted: a string equal to the redacted
 * form of the current value (and not the current value itself) keeps the current value, so a
 * round trip never replaces a password by `***`.
 */
export function keepRedacted(current: unknown, sent: unknown): unknown {
  if (typeof sent === 'string' && typeof current === 'string')
    return sent !== current && sent.includes(REDACTED) && redactText(current) === sent ? current : sent;
  return sent;
}
