// WAL positions for the topology monitor: the shared util/lsn.ts, with a parse that throws (a probe row that is not
// an LSN is a bug, not a value to route on).
import { formatLsn, lsnCaughtUp, parseLsn as parseLsnOrNull } from '../util/lsn.js';

export { formatLsn, lsnCaughtUp };

/** "16/B374D848" → bigint; throws on anything else. */
export function parseLsn(text: string): bigint {
  const lsn = parseLsnOrNull(text);
  if (lsn === null) throw new Error(`invalid LSN "${text}"`);
  return lsn;
}
