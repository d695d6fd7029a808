import { createRedactor, REDACTED } from '../../util/redact.js';

export { REDACTED };

/** Returns a function that hides each secret (of 4+ characters) and credentials by shape: core's one redactor. */
export function redactor(secrets: ReadonlyArray<string | undefined>): (text: string) => string {
  const r = createRedactor(secrets);
  return (text) => r.string(text);
}
