// A scriptable in-memory Prober for topology unit tests (no sockets; works with vi.useFakeTimers).
import { vi } from 'vitest';
import { parseLsn } from '../../../src/topology/lsn.js';
import type { NodeSpec, ProbeResult, Prober } from '../../../src/topology/types.js';

export const SYSID = '7300000000000000001';

export function primaryResult(lsn: string, over: Partial<ProbeResult> = {}): ProbeResult {
  return {
    inRecovery: false,
    lsn: parseLsn(lsn),
    replayAgeMs: null,
    senderHost: null,
    senderPort: null,
    serverPort: null,
    systemId: SYSID,
    timeline: 1,
    ...over,
  };
}

export function replicaResult(lsn: string, senderPort: number | null, over: Partial<ProbeResult> = {}): ProbeResult {
  return {
    inRecovery: true,
    lsn: parseLsn(lsn),
    replayAgeMs: 500,
    senderHost: senderPort === null ? null : '127.0.0.1',
    senderPort,
    serverPort: null,
    systemId: SYSID,
    timeline: null,
    ...over,
  };
}

export interface Deferred<T> {
  promise: Promise<T>;
  resolve(v: T): void;
  reject(e: Error): void;
}

export function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

type Answer = ProbeResult | Error | 'hang';

export class FakeProber implements Prober {
  /** What probe(node) answers next (the same answer until changed). */
  readonly answers = new Map<string, Answer>();
  /** Simulated probe duration per node (fake-timer ms). */
  readonly delays = new Map<string, number>();
  readonly probeCalls: string[] = [];
  replayLsn = vi.fn<(node: NodeSpec) => Promise<bigint | null>>(async () => null);
  waitReplay = vi.fn<(node: NodeSpec, lsn: bigint, timeoutMs: number) => Promise<bigint | null>>(async () => null);
  reset = vi.fn<(node: string, channel: 'probe' | 'wait') => void>();
  close = vi.fn(async () => {});

  set(node: string, answer: Answer): this {
    this.answers.set(node, answer);
    return this;
  }

  async probe(node: NodeSpec): Promise<ProbeResult> {
    this.probeCalls.push(node.name);
    const answer = this.answers.get(node.name) ?? new Error('no answer scripted');
    const delay = this.delays.get(node.name) ?? 0;
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    if (answer === 'hang') return new Promise<ProbeResult>(() => {});
    if (answer instanceof Error) throw answer;
    return { ...answer };
  }
}

export const NODES: NodeSpec[] = [
  { name: 'p', url: 'postgres://mon:secret@10.0.0.1:5432/postgres', region: 'iad', configuredRole: 'primary' },
  { name: 'r1', url: 'postgres://mon:secret@10.0.0.2:5433/postgres', region: 'ams', configuredRole: 'replica' },
  { name: 'r2', url: 'postgres://mon:secret@10.0.0.3:5434/postgres', region: 'syd', configuredRole: 'replica' },
];
