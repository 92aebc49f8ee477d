// The target registry: name → factory, in the order results are reported.
import { direct } from './direct.js';
import { haproxy } from './haproxy.js';
import { pgbouncer } from './pgbouncer.js';
import { pgnear } from './pgnear.js';
import { pgpool } from './pgpool.js';
import type { TargetFactory } from './types.js';

export type { Target, TargetFactory, TargetStartOptions } from './types.js';

// pgpool is not in the scenarios' default target lists: ask for it with --targets (read-heavy includes it).
export const TARGETS: Record<string, TargetFactory> = { direct, pgnear, pgbouncer, pgpool, haproxy };

/** Known, available factories for the requested names; prints why the others are skipped. */
export function resolveTargets(names: string[], log: (m: string) => void): TargetFactory[] {
  const out: TargetFactory[] = [];
  for (const n of names) {
    const f = TARGETS[n];
    if (!f) throw new Error(`unknown target "${n}" (known: ${Object.keys(TARGETS).join(', ')})`);
    const why = f.unavailable();
    if (why) log(`SKIPPING target ${n}: ${why}`);
    else out.push(f);
  }
  return out;
}
