// The public API for plugin authors: `import { definePlugin } from 'nqqueue'`. The test kit is a module
// of its own (`nqqueue/testing`), so a plugin that is loaded does not load it.

export { definePlugin, BackendError, PluginConfigError } from './plugin-api/define.js';
export type { ConfigureInput, ParamItem, ParamKey, Params, ParamsSpec, PluginContext, PluginDefinition } from './plugin-api/define.js';
export type { Address, ClientInfo, Envelope, FailurePolicy, HeaderField, MessageView, Outcome, Result, Stage, Verdict } from './pipeline/types.js';
export type { Settings, SettingsSection } from './config/settings.js';
export { ERRORS, NqqError, type ErrorCode } from './errors.js';
export { VERSION } from './version.js';
