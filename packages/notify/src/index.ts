export { type ConsoleOptions, consoleNotifier } from './console.js';
export { type DiscordOptions, discord } from './discord.js';
export { type FanOutFailure, type FanOutOptions, fanOut } from './fanout.js';
export { type PagerDutyOptions, type PagerDutySeverity, pagerDuty } from './pagerduty.js';
export { type SlackOptions, slack } from './slack.js';
export { type TeamsOptions, teams } from './teams.js';
export {
  type Notice,
  type NoticeField,
  type NoticeKind,
  noticeKinds,
  type RenderOptions,
  type RunbookWording,
  renderNotice,
  type Template,
  type Templates,
} from './templates.js';
export type { DestinationOptions } from './utils/destination.js';
export {
  signatureHeader,
  signWebhook,
  type VerifyWebhookOptions,
  verifyWebhookSignature,
  type WebhookOptions,
  type WebhookPayload,
  webhook,
} from './webhook.js';
