// Shape of one micro-benchmark case, shared by the *.bench.ts files and run.ts.

export interface MicroCase {
  /** Group (file) name, e.g. "framer"; the filter matches "<group>/<name>". */
  group: string;
  name: string;
  /** One operation; an async one is awaited by mitata. Return values are kept alive (do_not_optimize). */
  fn: () => unknown;
  /** Bytes one operation processes: adds MB/s to the table. */
  bytes?: number;
  /** Items one operation covers (e.g. 16 checkouts): adds ns per item to the table. */
  units?: number;
  /** What a unit is, for the table ("checkout", "chunk"). */
  unit?: string;
  /** Set when the case cannot run in this revision: why (the table says "skipped"). */
  skip?: string;
  /** Run once after measuring; throws if the case went wrong (e.g. the pool leaked a server). */
  check?: () => void;
}
