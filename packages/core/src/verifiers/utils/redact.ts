/** The text secrets are replaced with. */
export const REDACTED = '[REDACTED]';

/** Returns a function that replaces every occurrence of each secret (of 4+ characters) in a text. */
export function redactor(secrets: ReadonlyArray<string | undefined>): (text: string) => string {
  const list = secrets.filter((s): s is string => typeof s === 'string' && s.length >= 4);
  if (list.length === 0) return (text) => text;
  return (text) => {
    let out = text;
    for (const s of list) out = out.split(s).join(REDACTED);
    return out;
  };
}
