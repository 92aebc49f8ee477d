// Public surface of src/topology: snapshot types, the static-config probing source, LSN helpers.
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
