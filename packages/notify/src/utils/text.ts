const ELLIPSIS = '…';

/**
 * Cuts a text to at most `max` UTF-16 code units (what the services count), ending with `…` when cut,
 * and never splitting a surrogate pair.
 */
export function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  if (max <= 0) return '';
  let end = max - ELLIPSIS.length;
  const code = text.charCodeAt(end - 1);
  if (code >= 0xd800 && code <= 0xdbff) end -= 1;
  return text.slice(0, Math.max(0, end)) + ELLIPSIS;
}

/**
 * Truncates `raw` so that `encode(result)` fits in `max` (for escaping that lengthens a text, like
 * Slack's `&lt;`), without cutting an escape sequence in half.
 */
export function fitEncoded(raw: string, max: number, encode: (text: string) => string): string {
  const whole = encode(raw);
  if (whole.length <= max) return whole;
  // Binary search for the longest cut whose encoded form fits.
  let lo = 0;
  let hi = Math.min(raw.length, max);
  let best = '';
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const encoded = encode(truncate(raw, mid));
    if (encoded.length <= max) {
      best = encoded;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return best;
}

/** `1h 2m 3s`, `4.2s` or `350 ms`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return 'unknown';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = s % 60;
  return [h ? `${h}h` : '', m ? `${m}m` : '', rest ? `${rest}s` : ''].filter(Boolean).join(' ');
}
