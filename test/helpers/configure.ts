// Configure a built-in plugin the way a routing line and the settings file would, for unit tests.

import { parseParams } from '../../src/config/cfb.js';
import { defaultSettings, parseSettings, type Settings } from '../../src/config/settings.js';
import type { PluginDefinition } from '../../src/plugin-api/define.js';
import { makeParams } from '../../src/plugin-api/load.js';
import type { Stage } from '../../src/pipeline/types.js';

/** `def.configure` with PARAMS as written on a line and an optional settings file text. */
export function configure<C>(def: PluginDefinition<C>, raw: string, settingsText?: string, stage: Stage = def.stages[0]!): C {
  const settings: Settings = settingsText === undefined ? defaultSettings() : parseSettings(settingsText, 'nqqueue.conf');
  const config = def.configure({ params: makeParams(raw, parseParams(raw), settings.section(def.name)), settings, stage });
  // The built-ins configure synchronously, so their unit tests can too.
  if (config instanceof Promise) throw new Error(`${def.name}: configure is async; use configurePlugin`);
  return config;
}
