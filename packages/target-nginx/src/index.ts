export type { NginxProcessOptions, NginxTargetOptions } from './options.js';
export { nginxTargetDefaults } from './options.js';
export type { NginxTarget } from './target.js';
export { nginxTarget } from './target.js';
