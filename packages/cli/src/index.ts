// @codegraph/release-cli: the `codegraph-release` command's config API and entry point.
export { type ExitCode, exitCodes } from './cli/exit.js';
export { commandNames, type RunCliOptions, runCli } from './cli/main.js';
export {
  type BackupFileProgress,
  type ConfigContext,
  configDefaults,
  defineConfig,
  type EnvironmentConfig,
  type EnvironmentFactory,
  type ReleaseConfig,
} from './config/define.js';
export { configFileNames, type LoadedConfig, loadConfig } from './config/load.js';
export type { PipelineConfig, PipelineStageConfig } from './config/pipeline.js';
export * from './report/index.js';
export {
  type PipelineReportInput,
  pipelineReportInput,
  renderPipelineReport,
  writePipelineReport,
} from './report/pipeline.js';
