// Release reports: record a run's events and traffic, render them as HTML (with SVG charts) and Markdown.
export { renderReportHtml } from './html.js';
export { renderReportMarkdown } from './markdown.js';
export { recordRun } from './recorder.js';
export {
  type RecordRunOptions,
  type RunRecorder,
  type RunRecording,
  recordingFormat,
  recordRunDefaults,
  type TrafficSample,
} from './types.js';
export { type ReportFiles, type WriteReportOptions, writeReport } from './write.js';
