// Independent checkers of each service's documented payload format (required fields and limits).
// They do not import the package's limits: the numbers come from the services' documentation.
type Json = Record<string, unknown>;

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown) => (typeof v === 'string' ? v : undefined);

function len(out: string[], where: string, v: unknown, max: number, required = true): void {
  if (typeof v !== 'string') {
    if (required || v !== undefined) out.push(`${where} must be a string`);
    return;
  }
  if (required && v.length === 0) out.push(`${where} must not be empty`);
  if (v.length > max) out.push(`${where} is ${v.length} characters, over ${max}`);
}

/** Slack incoming webhook with Block Kit (docs.slack.dev/reference/block-kit/blocks). */
export function checkSlack(json: unknown): string[] {
  const out: string[] = [];
  if (!isObj(json)) return ['payload is not an object'];
  if (typeof json.text !== 'string') out.push('text (notification fallback) is missing');
  const blocks = json.blocks;
  if (!Array.isArray(blocks)) return [...out, 'blocks is not an array'];
  if (blocks.length > 50) out.push(`${blocks.length} blocks, over 50`);
  for (const [i, b] of blocks.entries()) {
    if (!isObj(b)) {
      out.push(`blocks[${i}] is not an object`);
      continue;
    }
    const text = b.text;
    switch (b.type) {
      case 'header':
        if (!isObj(text) || text.type !== 'plain_text') out.push(`blocks[${i}].text must be plain_text`);
        else len(out, `blocks[${i}].text.text`, text.text, 150);
        break;
      case 'section': {
        if (text === undefined && b.fields === undefined) out.push(`blocks[${i}] needs text or fields`);
        if (text !== undefined) {
          if (!isObj(text) || (text.type !== 'mrkdwn' && text.type !== 'plain_text')) {
            out.push(`blocks[${i}].text must be a text object`);
          } else len(out, `blocks[${i}].text.text`, text.text, 3000);
        }
        if (b.fields !== undefined) {
          if (!Array.isArray(b.fields) || b.fields.length > 10) out.push(`blocks[${i}].fields: at most 10`);
          else {
            for (const [j, f] of b.fields.entries()) {
              len(out, `blocks[${i}].fields[${j}].text`, isObj(f) ? f.text : undefined, 2000);
            }
          }
        }
        break;
      }
      case 'context':
        if (!Array.isArray(b.elements) || b.elements.length === 0 || b.elements.length > 10) {
          out.push(`blocks[${i}].elements: 1 to 10`);
        }
        break;
      case 'divider':
        break;
      default:
        out.push(`blocks[${i}] has an unexpected type ${String(b.type)}`);
    }
    if (b.block_id !== undefined) len(out, `blocks[${i}].block_id`, b.block_id, 255);
  }
  return out;
}

/** Teams Workflows webhook: a message with Adaptive Card attachments, under Teams' ~28 KB limit. */
export function checkTeams(json: unknown, req: { body: string }): string[] {
  const out: string[] = [];
  if (Buffer.byteLength(req.body) > 28 * 1024)
    out.push(`message is ${Buffer.byteLength(req.body)} bytes, over 28 KB`);
  if (!isObj(json) || json.type !== 'message') return [...out, 'type must be "message"'];
  if (!Array.isArray(json.attachments) || json.attachments.length === 0)
    return [...out, 'attachments missing'];
  for (const [i, a] of json.attachments.entries()) {
    if (!isObj(a)) return [...out, `attachments[${i}] is not an object`];
    if (a.contentType !== 'application/vnd.microsoft.card.adaptive')
      out.push(`attachments[${i}].contentType is wrong`);
    const card = a.content;
    if (!isObj(card) || card.type !== 'AdaptiveCard') {
      out.push(`attachments[${i}].content.type must be AdaptiveCard`);
      continue;
    }
    if (typeof card.version !== 'string' || !/^1\.[0-5]$/.test(card.version))
      out.push('card version must be 1.0-1.5');
    if (!Array.isArray(card.body) || card.body.length === 0) out.push('card body must be a non-empty array');
    for (const el of (card.body as unknown[]) ?? []) {
      if (!isObj(el)) out.push('a body element is not an object');
      else if (el.type === 'TextBlock') len(out, 'TextBlock.text', el.text, 28 * 1024);
      else if (el.type === 'FactSet') {
        if (!Array.isArray(el.facts)) out.push('FactSet.facts must be an array');
        else
          for (const f of el.facts)
            if (!isObj(f) || !str(f.title) || typeof f.value !== 'string')
              out.push('fact needs title and value');
      } else out.push(`unexpected element type ${String(el.type)}`);
    }
  }
  return out;
}

/** Discord execute webhook (discord.com/developers/docs/resources/webhook, embed limits). */
export function checkDiscord(json: unknown): string[] {
  const out: string[] = [];
  if (!isObj(json)) return ['payload is not an object'];
  if (json.content === undefined && json.embeds === undefined) out.push('needs content or embeds');
  if (json.content !== undefined) len(out, 'content', json.content, 2000, false);
  if (json.username !== undefined) len(out, 'username', json.username, 80);
  const embeds = json.embeds ?? [];
  if (!Array.isArray(embeds) || embeds.length > 10) return [...out, 'embeds: at most 10'];
  let total = 0;
  const count = (v: unknown) => {
    total += typeof v === 'string' ? v.length : 0;
  };
  for (const [i, e] of embeds.entries()) {
    if (!isObj(e)) {
      out.push(`embeds[${i}] is not an object`);
      continue;
    }
    len(out, `embeds[${i}].title`, e.title, 256, false);
    len(out, `embeds[${i}].description`, e.description, 4096, false);
    count(e.title);
    count(e.description);
    if (
      e.color !== undefined &&
      (!Number.isInteger(e.color) || (e.color as number) < 0 || (e.color as number) > 0xffffff)
    ) {
      out.push(`embeds[${i}].color must be an integer RGB`);
    }
    const fields = e.fields ?? [];
    if (!Array.isArray(fields) || fields.length > 25) out.push(`embeds[${i}].fields: at most 25`);
    else
      for (const [j, f] of fields.entries()) {
        if (!isObj(f)) {
          out.push(`embeds[${i}].fields[${j}] is not an object`);
          continue;
        }
        len(out, `embeds[${i}].fields[${j}].name`, f.name, 256);
        len(out, `embeds[${i}].fields[${j}].value`, f.value, 1024);
        count(f.name);
        count(f.value);
      }
    if (e.footer !== undefined) {
      len(out, `embeds[${i}].footer.text`, isObj(e.footer) ? e.footer.text : undefined, 2048);
      count(isObj(e.footer) ? e.footer.text : undefined);
    }
    if (e.timestamp !== undefined && Number.isNaN(Date.parse(String(e.timestamp))))
      out.push('timestamp is not ISO8601');
  }
  if (total > 6000) out.push(`embeds hold ${total} characters, over 6000`);
  return out;
}

/** PagerDuty Events API v2 (developer.pagerduty.com, "Send an Alert Event"). */
export function checkPagerDuty(json: unknown): string[] {
  const out: string[] = [];
  if (!isObj(json)) return ['payload is not an object'];
  if (typeof json.routing_key !== 'string' || json.routing_key.length !== 32)
    out.push('routing_key must be 32 characters');
  const action = json.event_action;
  if (action !== 'trigger' && action !== 'acknowledge' && action !== 'resolve')
    out.push('event_action is invalid');
  if (json.dedup_key !== undefined) len(out, 'dedup_key', json.dedup_key, 255);
  if (action !== 'trigger' && typeof json.dedup_key !== 'string')
    out.push(`${String(action)} needs dedup_key`);
  if (action === 'trigger') {
    const p = json.payload;
    if (!isObj(p)) return [...out, 'payload is required for trigger'];
    len(out, 'payload.summary', p.summary, 1024);
    len(out, 'payload.source', p.source, 10_000);
    if (!['critical', 'error', 'warning', 'info'].includes(String(p.severity)))
      out.push('payload.severity is invalid');
    if (p.timestamp !== undefined && Number.isNaN(Date.parse(String(p.timestamp))))
      out.push('payload.timestamp invalid');
    if (p.custom_details !== undefined && !isObj(p.custom_details))
      out.push('payload.custom_details must be an object');
  }
  return out;
}
