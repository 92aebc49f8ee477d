// All node pools, keyed by node and (user, database, startup parameters); creates pools on demand.
import { NodePool, type NodePoolOptions, type PoolKey } from './node-pool.js';
import type { ServerTarget } from './server-conn.js';

export type PoolSettings = Omit<NodePoolOptions, 'target' | 'key'>;

export class PoolSet {
  private readonly pools = new Map<string, NodePool>();
  private janitor: NodeJS.Timeout | null = null;

  constructor(private readonly settings: PoolSettings) {
    this.janitor = setInterval(() => {
      for (const p of this.pools.values()) p.expireIdle();
    }, 5_000);
    this.janitor.unref();
  }

  get(target: ServerTarget, key: PoolKey): NodePool {
    const id = `${target.node}\0${target.host}:${target.port}\0${key.startup.map(([k, v]) => `${k}=${v}`).join('\0')}`;
    let p = this.pools.get(id);
    if (!p) {
      p = new NodePool({ ...this.settings, target, key });
      this.pools.set(id, p);
    }
    return p;
  }

  all(): Iterable<NodePool> {
    return this.pools.values();
  }

  closeAll(reason: string): void {
    if (this.janitor) clearInterval(this.janitor);
    this.janitor = null;
    for (const p of this.pools.values()) p.closeAll(reason);
  }
}
