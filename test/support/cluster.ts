// Test helpers around the dev cluster: a one-off start (withCluster) and a per-file vitest fixture (useCluster).
import { afterAll, beforeAll } from 'vitest';
import { type ClusterOptions, type LocalCluster, startCluster } from '../../src/devcluster/cluster.js';

/** Set PGNEAR_CLUSTER_LOG=1 to see cluster start-up progress on stderr. */
function defaultLog(): ((msg: string) => void) | undefined {
  return process.env.PGNEAR_CLUSTER_LOG ? (msg) => process.stderr.write(`[devcluster] ${msg}\n`) : undefined;
}

export async function withCluster(opts: ClusterOptions = {}): Promise<LocalCluster> {
  return startCluster({ log: defaultLog(), ...opts });
}

/**
 * Starts one cluster in beforeAll and stops it in afterAll (also when tests or the start itself failed).
 * Returns a getter, valid inside tests and later hooks.
 */
export function useCluster(opts: ClusterOptions = {}): () => LocalCluster {
  let cluster: LocalCluster | undefined;
  beforeAll(async () => {
    cluster = await withCluster(opts);
  });
  afterAll(async () => {
    await cluster?.stop();
  });
  return () => {
    if (!cluster) throw new Error('useCluster: the cluster is not running (did beforeAll fail?)');
    return cluster;
  };
}
