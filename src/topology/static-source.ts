// Topology from static config + periodic probing: one probe per node per tick, a snapshot per round, replay waits.
import { derive, describeUrl, ewma, type NodeRecord, type PrimaryIdentity, roleOf } from './derive.js';
import { lsnCaughtUp } from './lsn.js';
import { PgProber } from './pg-prober.js';
import { TIMEOUT, Timers } from './timers.js';
import type { NodeSpec, NodeState, Prober, TopologyLog, TopologySnapshot, TopologySource } from './types.js';

export interface StaticProbeOptions {
  /** Tick period. Default 250. */
  intervalMs?: number;
  /** Client-side bound on a probe / refresh (and connect). Default 2000. */
  timeoutMs?: number;
  /** Consecutive failed probes before a node is unhealthy. Default 3. */
  failThreshold?: number;
  log?: TopologyLog;
  /** Default: a PgProber (application_name 'pgnear-monitor'). */
  prober?: Prober;
  /** For the default prober. */
  applicationName?: string;
}

/** A replay wait, in flight or queued; one runs per node at a time. */
interface Wait {
  target: bigint;
  deadline: number;
  promise: Promise<bigint | null>;
  resolve: (lsn: bigint | null) => void;
}

interface Runtime extends NodeRecord {
  probing: boolean;
  /** The previous tick probe's LSN and time, for replayRate. */
  rateLsn: bigint | null;
  rateAt: number;
  refreshing: Promise<bigint | null> | null;
  waits: Wait[];
  waitRunning: boolean;
  /** Bumped by #advance: a tick probe sent before a newer refresh/wait value must not move the LSN back. */
  advances: number;
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

export class StaticProbeSource implements TopologySource {
  readonly #nodes: Runtime[];
  readonly #byName = new Map<string, Runtime>();
  readonly #intervalMs: number;
  readonly #timeoutMs: number;
  readonly #failThreshold: number;
  readonly #log: TopologyLog;
  readonly #prober: Prober;
  readonly #listeners = new Set<(s: TopologySnapshot) => void>();
  readonly #timers = new Timers();
  #snapshot: TopologySnapshot = { version: 0, at: 0, primary: null, replicas: [] };
  #identity: PrimaryIdentity | null = null;
  #starting: Promise<void> | null = null;
  #stopping: Promise<void> | null = null;

  constructor(nodes: NodeSpec[], opts: StaticProbeOptions = {}) {
    if (nodes.length === 0) throw new Error('topology: no nodes configured');
    this.#intervalMs = opts.intervalMs ?? 250;
    this.#timeoutMs = opts.timeoutMs ?? 2000;
    this.#failThreshold = Math.max(1, opts.failThreshold ?? 3);
    this.#log = opts.log ?? (() => {});
    this.#prober = opts.prober ?? new PgProber({ timeoutMs: this.#timeoutMs, applicationName: opts.applicationName });
    this.#nodes = nodes.map((spec, index) => {
      if (this.#byName.has(spec.name)) throw new Error(`topology: duplicate node name "${spec.name}"`);
      const rt: Runtime = {
        spec,
        index,
        ...describeUrl(spec.url),
        last: null,
        lsn: null,
        failures: 0,
        everOk: false,
        lastProbeAt: 0,
        rttMs: null,
        replayRate: null,
        probing: false,
        rateLsn: null,
        rateAt: 0,
        refreshing: null,
        waits: [],
        waitRunning: false,
        advances: 0,
      };
      this.#byName.set(spec.name, rt);
      return rt;
    });
  }

  start(): Promise<void> {
    this.#starting ??= this.#round(true);
    return this.#starting;
  }

  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#timers.cancelAll();
      for (const rt of this.#nodes) {
        for (const w of rt.waits) w.resolve(null);
        rt.waits = [];
      }
      await this.#prober.close();
    })();
    return this.#stopping;
  }

  current(): TopologySnapshot {
    return this.#snapshot;
  }

  onSnapshot(cb: (s: TopologySnapshot) => void): () => void {
    this.#listeners.add(cb);
    return () => this.#listeners.delete(cb);
  }

  refreshReplay(node: string): Promise<bigint | null> {
    const rt = this.#node(node);
    if (this.#stopping) return Promise.resolve(null);
    rt.refreshing ??= (async () => {
      try {
        const lsn = await this.#timers.bounded(this.#prober.replayLsn(rt.spec), this.#timeoutMs, () =>
          this.#prober.reset(rt.spec.name, 'probe'),
        );
        if (lsn !== null) this.#advance(rt, lsn);
        return lsn;
      } catch (err) {
        this.#log('debug', { node, err: message(err) }, 'replay refresh failed');
        return null;
      } finally {
        rt.refreshing = null;
      }
    })();
    return rt.refreshing;
  }

  async waitForReplay(node: string, lsn: bigint, timeoutMs: number): Promise<boolean> {
    const rt = this.#node(node);
    if (this.#stopping) return false;
    if (this.#reached(rt, lsn)) return true;
    const deadline = Date.now() + timeoutMs;
    for (let own = false; !own;) {
      const remaining = deadline - Date.now();
      if (remaining <= 0 || this.#stopping) return false;
      // Share a wait (running or queued) whose target covers ours; otherwise queue our own.
      let w = rt.waits.find((x) => x.target >= lsn);
      if (!w) {
        w = this.#enqueueWait(rt, lsn, deadline);
        own = true;
      }
      const reached = await this.#timers.within(w.promise, remaining);
      if (reached === TIMEOUT) return false;
      if (reached !== null && lsnCaughtUp(reached, lsn)) return true;
      // A shared wait ended short (earlier deadline or an error): try once more on our own if time is left.
    }
    return false;
  }

  #node(name: string): Runtime {
    const rt = this.#byName.get(name);
    if (!rt) throw new Error(`topology: unknown node "${name}"`);
    return rt;
  }

  /** The known replay position already covers lsn (see lsnCaughtUp). */
  #reached(rt: Runtime, lsn: bigint): boolean {
    return !!rt.last?.inRecovery && rt.lsn !== null && lsnCaughtUp(rt.lsn, lsn);
  }

  #enqueueWait(rt: Runtime, target: bigint, deadline: number): Wait {
    let resolve!: (lsn: bigint | null) => void;
    const promise = new Promise<bigint | null>((r) => {
      resolve = r;
    });
    const w: Wait = { target, deadline, promise, resolve };
    rt.waits.push(w);
    this.#pumpWaits(rt);
    return w;
  }

  /** Runs the first queued wait unless one is running; queued waits already satisfied resolve locally. */
  #pumpWaits(rt: Runtime): void {
    if (rt.waitRunning || this.#stopping) return;
    const w = rt.waits[0];
    if (!w) return;
    const remaining = w.deadline - Date.now();
    if (this.#reached(rt, w.target) || remaining <= 0) {
      rt.waits.shift();
      w.resolve(rt.last?.inRecovery ? rt.lsn : null);
      this.#pumpWaits(rt);
      return;
    }
    rt.waitRunning = true;
    const run = this.#timers.bounded(
      this.#prober.waitReplay(rt.spec, w.target, remaining),
      remaining + this.#timeoutMs,
      () => this.#prober.reset(rt.spec.name, 'wait'),
    );
    run
      .then(
        (lsn) => {
          if (lsn !== null) this.#advance(rt, lsn);
          return lsn;
        },
        (err: unknown) => {
          this.#log('debug', { node: rt.spec.name, err: message(err) }, 'replay wait failed');
          return null;
        },
      )
      .then((lsn) => {
        rt.waitRunning = false;
        rt.waits = rt.waits.filter((x) => x !== w);
        w.resolve(lsn);
        this.#pumpWaits(rt);
      });
  }

  /** A replay LSN from refreshReplay/waitForReplay: only moves forward, republished at once. */
  #advance(rt: Runtime, lsn: bigint): void {
    if (!rt.last?.inRecovery || (rt.lsn !== null && lsn <= rt.lsn)) return;
    rt.lsn = lsn;
    rt.advances++;
    if (!this.#stopping) this.#publish();
  }

  async #round(first: boolean): Promise<void> {
    const t0 = Date.now();
    const probes = this.#nodes.filter((rt) => !rt.probing).map((rt) => this.#probe(rt));
    // The first round waits for every node (each probe is bounded by timeoutMs); later ones publish at the
    // next tick at the latest, leaving a slow node's probe running.
    if (first) await Promise.all(probes);
    else await this.#timers.within(Promise.all(probes), this.#intervalMs);
    if (this.#stopping) return;
    this.#publish();
    this.#timers.after(() => void this.#round(false), Math.max(0, this.#intervalMs - (Date.now() - t0)));
  }

  async #probe(rt: Runtime): Promise<void> {
    rt.probing = true;
    const t0 = performance.now();
    const advances = rt.advances;
    try {
      const res = await this.#timers.bounded(this.#prober.probe(rt.spec), this.#timeoutMs, () =>
        this.#prober.reset(rt.spec.name, 'probe'),
      );
      const now = Date.now();
      rt.rttMs = ewma(rt.rttMs, performance.now() - t0);
      if (rt.last && rt.last.inRecovery !== res.inRecovery) {
        rt.rateLsn = null;
        rt.replayRate = null;
      }
      if (res.lsn !== null && rt.rateLsn !== null && res.lsn >= rt.rateLsn && now > rt.rateAt) {
        rt.replayRate = ewma(rt.replayRate, (Number(res.lsn - rt.rateLsn) * 1000) / (now - rt.rateAt));
      }
      rt.rateLsn = res.lsn;
      rt.rateAt = now;
      const keep = rt.advances !== advances && res.inRecovery && rt.last?.inRecovery && rt.lsn !== null;
      rt.lsn = keep && (res.lsn === null || rt.lsn! > res.lsn) ? rt.lsn : res.lsn;
      rt.last = res;
      rt.failures = 0;
      rt.everOk = true;
      rt.lastError = undefined;
      rt.lastProbeAt = now;
    } catch (err) {
      rt.failures++;
      rt.lastError = message(err);
      rt.lastProbeAt = Date.now();
    } finally {
      rt.probing = false;
    }
  }

  #publish(): void {
    const prev = this.#snapshot;
    const { snapshot, identity } = derive(
      this.#nodes,
      this.#failThreshold,
      prev.version + 1,
      Date.now(),
      this.#identity,
    );
    this.#identity = identity;
    this.#snapshot = snapshot;
    this.#logChanges(prev, snapshot);
    for (const cb of this.#listeners) {
      try {
        cb(snapshot);
      } catch (err) {
        this.#log('error', { err: message(err) }, 'topology listener threw');
      }
    }
  }

  #logChanges(prev: TopologySnapshot, next: TopologySnapshot): void {
    const before = new Map<string, NodeState>();
    if (prev.primary) before.set(prev.primary.name, prev.primary);
    for (const r of prev.replicas) before.set(r.name, r);
    if (next.primary?.name !== prev.primary?.name) {
      const configured = this.#nodes.find((rt) => rt.spec.configuredRole === 'primary')?.spec.name;
      const level = next.primary && next.primary.name === configured ? 'info' : 'warn';
      this.#log(
        level,
        { primary: next.primary?.name ?? null, previous: prev.primary?.name ?? null },
        'primary changed',
      );
    }
    for (const s of [...(next.primary ? [next.primary] : []), ...next.replicas]) {
      const old = before.get(s.name);
      const rt = this.#byName.get(s.name)!;
      if (old?.healthy !== s.healthy && (old || !s.healthy)) {
        this.#log(
          s.healthy ? 'info' : 'warn',
          { node: s.name, err: s.lastError },
          s.healthy ? 'node healthy' : 'node unhealthy',
        );
      }
      const role = roleOf(rt);
      if (role !== 'unknown' && role !== old?.role && role !== rt.spec.configuredRole) {
        this.#log(
          'warn',
          { node: s.name, role, configured: rt.spec.configuredRole },
          'node role differs from configuration',
        );
      }
    }
  }
}
