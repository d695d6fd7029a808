// @codegraph/release-core/kit: what plugin authors need again and again, in one place. Our own packages
// use these instead of copies.

export {
  checkAction,
  checkIdentifier,
  checkPoolName,
  checkReplicas,
  checkText,
  checkVersion,
  checkWeights,
  hasControl,
  type RuleContext,
  rules,
} from '../rules.js';
export { createRedactor, REDACTED, type Redactor } from '../util/redact.js';
export { anySignal, sleep } from '../util/time.js';
export { type DeadlineOptions, withDeadline } from './deadline.js';
export { type AtomicWriteOptions, fsyncDir, writeFileAtomic } from './fs.js';
export { createMutex, type Mutex } from './mutex.js';
export { currentProcess, isProcessAlive, type ProcessIdentity, processStartTime } from './process.js';
export { escapeMarkdown, escapePromQLString, type MarkdownEscapeOptions } from './text.js';
