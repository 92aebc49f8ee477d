// Target "direct": pgbench straight to the primary — the reference every ratio is taken against.
import type { TargetFactory } from './types.js';

export const direct: TargetFactory = {
  name: 'direct',
  unavailable: () => null,
  async start(ctx) {
    const p = ctx.cluster.primary;
    return {
      name: 'direct',
      label: `direct (primary 127.0.0.1:${p.port})`,
      port: p.port,
      database: () => 'postgres',
      variant: () => 'primary',
      pids: () => [],
      stop: async () => {},
    };
  },
};
