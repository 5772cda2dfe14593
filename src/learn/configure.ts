// The learners a site has: `[learn] learners` names them, or `auto` (the default) takes each learner
// whose plugin is named in a routing file of the control directory — a site that scans with spamd
// learns with spamd. Each learner is reached where its plugin's settings say (spamd: [spamassassin]
// host/socket, and its user setting says whose database; dspam: [dspam] bin) and rspamd at its
// controller ([learn] rspamd_controller, password). PARAMS of single routing lines are not looked at:
// learning is per user, not per line.

import { readdirSync } from 'node:fs';
import { join } from 'node:path';

import { readCfb } from '../config/routing.js';
import { serviceSettings } from '../config/service-sections.js';
import type { Settings } from '../config/settings.js';
import { DEFAULT_BIN as DSPAM_BIN } from '../plugins/dspam.js';
import { parseUser, DEFAULT_HOST as SPAMD_HOST } from '../plugins/spamassassin.js';
import { dspamLearner } from './dspam.js';
import type { Learner } from './learner.js';
import { rspamdLearner } from './rspamd.js';
import { spamdLearner } from './spamd.js';
import { LEARNER_NAMES, type LearnerName } from './verdict.js';

/** The learners whose plugins a routing file (*.cfb) of the control directory names. */
export function routedLearners(controlDir: string): LearnerName[] {
  const found = new Set<string>();
  let names: string[] = [];
  try {
    names = readdirSync(controlDir).filter((n) => n.endsWith('.cfb'));
  } catch {
    return [];
  }
  for (const n of names) {
    const f = readCfb(join(controlDir, n));
    for (const line of f?.lines ?? []) for (const p of line.plugins) found.add(p.name);
  }
  return LEARNER_NAMES.filter((l) => found.has(l));
}

export function configuredLearners(settings: Settings, controlDir: string): Learner[] {
  const learn = serviceSettings(settings, 'learn');
  const names = learn.learners === 'auto' || learn.learners === undefined ? routedLearners(controlDir) : (learn.learners as LearnerName[]);
  const timeoutMs = learn.timeout ?? 30_000;
  return names.map((name) => {
    if (name === 'spamassassin') {
      const sec = settings.section('spamassassin');
      const addresses = [...sec.all('host'), ...sec.all('socket').map((s) => (s.startsWith('unix:') ? s.slice(5) : s))];
      return spamdLearner(addresses.length > 0 ? addresses : [SPAMD_HOST], timeoutMs, parseUser(sec.get('user')));
    }
    if (name === 'rspamd') return rspamdLearner(learn.rspamd_controller ?? 'http://127.0.0.1:11334/', learn.rspamd_password, timeoutMs);
    return dspamLearner(settings.section('dspam').get('bin') ?? DSPAM_BIN, timeoutMs);
  });
}
