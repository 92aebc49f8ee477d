// Public surface of src/topology: snapshot types, the static-config probing source, LSN helpers.
import { describeUrl } from './derive.js';
import type { NodeSpec } from './types.js';

export type {
  NodeSpec,
  NodeState,
  ProbeResult,
  Prober,
  TopologyLog,
  TopologySnapshot,
  TopologySource,
} from './types.js';
export { StaticProbeSource, type StaticProbeOptions } from './static-source.js';
export { PgProber, type PgProberOptions } from './pg-prober.js';
export { formatLsn, lsnCaughtUp, parseLsn } from './lsn.js';

/** The shape of a configured node (structurally the config's node entry; topology does not import config). */
export interface ConfiguredNode {
  url: string;
  region?: string;
  name?: string;
}

/** NodeSpecs from a primary and replicas as configured; a missing name defaults to host:port. */
export function nodeSpecs(primary: ConfiguredNode | undefined, replicas: readonly ConfiguredNode[]): NodeSpec[] {
  const spec = (n: ConfiguredNode, configuredRole: NodeSpec['configuredRole']): NodeSpec => {
    const { host, port } = describeUrl(n.url);
    const s: NodeSpec = { name: n.name ?? `${host}:${port}`, url: n.url, configuredRole };
    if (n.region !== undefined) s.region = n.region;
    return s;
  };
  return [...(primary ? [spec(primary, 'primary')] : []), ...replicas.map((r) => spec(r, 'replica'))];
}
