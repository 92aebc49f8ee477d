// The scenario registry. To add one: a file here, a line below.
import { bigResult } from './big-result.js';
import { connectStorm } from './connect-storm.js';
import { idle10k } from './idle-10k.js';
import { idleClients } from './idle-clients.js';
import { pooling } from './pooling.js';
import { readHeavy } from './read-heavy.js';
import { routing } from './routing.js';
import { selectOnly } from './select-only.js';
import { tpcb } from './tpcb.js';
import type { Scenario } from './types.js';

export type { Scenario } from './types.js';

export const SCENARIOS: Record<string, Scenario> = {
  [selectOnly.name]: selectOnly,
  [idleClients.name]: idleClients,
  [pooling.name]: pooling,
  [idle10k.name]: idle10k,
  [routing.name]: routing,
  [tpcb.name]: tpcb,
  [connectStorm.name]: connectStorm,
  [bigResult.name]: bigResult,
  [readHeavy.name]: readHeavy,
};
