// The issue-5 target judge (ratios, p50 deltas, thresholds read from bench results) and how the bench launches pgnear.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { launcherNodeFlags } from '../../../bench/targets/pgnear.js';
import {
  judgeBigResult,
  judgeConnectStorm,
  judgeIdle,
  judgeSelectOnly,
  pairedRatio,
  targetsTable,
} from '../../../bench/targets.js';

const run = (target: string, mode: string, clients: number, rep: number, tps: number | null) => ({
  target,
  mode,
  clients,
  rep,
  tps,
});
const cell = (target: string, mode: string, clients: number, p50Ms: number, xPgbouncer: number | null) => ({
  target,
  mode,
  clients,
  p50Ms,
  xPgbouncer,
});

describe('pairedRatio', () => {
  it('divides within a rep and takes the median over reps', () => {
    const runs = [
      run('pgnear', 'simple', 16, 1, 90),
      run('haproxy', 'simple', 16, 1, 100),
      run('pgnear', 'simple', 16, 2, 50),
      run('haproxy', 'simple', 16, 2, 200),
      run('pgnear', 'simple', 16, 3, 120),
      run('haproxy', 'simple', 16, 3, 100),
    ];
    expect(pairedRatio(runs, 'pgnear', 'haproxy', 'simple', 16)).toBeCloseTo(0.9);
    expect(pairedRatio(runs, 'pgnear', 'haproxy', 'extended', 16)).toBeNull();
  });
});

describe('judgeSelectOnly', () => {
  const summary = (x: number) =>
    ['simple', 'extended'].flatMap((m) =>
      [1, 16, 64].flatMap((c) => [
        cell('direct', m, c, 1.0, null),
        cell('pgnear', m, c, 1.2, x),
        cell('pgbouncer', m, c, 1.1, 1),
      ]),
    );
  const runs = (hap: number) =>
    ['simple', 'extended'].flatMap((m) => [run('pgnear', m, 16, 1, 100), run('haproxy', m, 16, 1, hap)]);

  it('meets nothing when pgnear is slower than PgBouncer and HAProxy and adds more latency', () => {
    const [pgb, hap, p50] = judgeSelectOnly({ runs: runs(125), summary: summary(0.7) }, 'r');
    expect(pgb!.met).toBe(false);
    expect(pgb!.measured).toBe('simple 0.70 / 0.70, extended 0.70 / 0.70');
    expect(hap!.met).toBe(false);
    expect(hap!.measured).toBe('simple 0.80, extended 0.80');
    expect(p50!.met).toBe(false);
    expect(p50!.measured).toContain('c=1 simple +0.200 vs +0.100 ms');
  });

  it('meets the ratios at the thresholds', () => {
    const [pgb, hap] = judgeSelectOnly({ runs: runs(110), summary: summary(1.0) }, 'r');
    expect(pgb!.met).toBe(true);
    expect(hap!.met).toBe(true);
  });

  it('says "not measured" when a target is missing', () => {
    const [pgb, hap] = judgeSelectOnly({ runs: [], summary: summary(0.9).filter((s) => s.target !== 'pgnear') }, 'r');
    expect(pgb!.met).toBeNull();
    expect(hap!.met).toBeNull();
  });
});

describe('the other targets', () => {
  it('connect-storm compares with PgBouncer', () => {
    expect(judgeConnectStorm({ summary: [cell('pgnear', 'simple', 16, 1, 1.02)] }, 'r').met).toBe(true);
    expect(judgeConnectStorm({ summary: [cell('pgnear', 'simple', 16, 1, 0.73)] }, 'r').met).toBe(false);
  });

  it('idle RSS is judged in decimal megabytes and shown in both units', () => {
    const idle = (kib: number) => judgeIdle({ results: [{ target: 'pgnear', rssKiB: { idle: kib } }] }, 'r');
    const at = idle(148.8 * 1024); // 148.8 MiB = 156.0 MB
    expect(at.met).toBe(false);
    expect(at.measured).toBe('148.8 MiB = 156.0 MB');
    expect(idle(140 * 1024).met).toBe(true);
  });

  it('a 200 MB result needs both shapes at 0.9× direct', () => {
    const big = (sel: number, copy: number) =>
      judgeBigResult(
        {
          summary: [
            { shape: 'select', target: 'pgnear', xDirect: sel },
            { shape: 'copy', target: 'pgnear', xDirect: copy },
          ],
        },
        'r',
      );
    expect(big(0.95, 0.9).met).toBe(true);
    expect(big(0.83, 0.95).met).toBe(false);
  });

  it('prints a Markdown table', () => {
    const t = targetsTable([{ target: 'x', measured: 'y', met: null, from: 'd' }]);
    expect(t.split('\n')).toEqual([
      '| target | measured (same-run ratios) | met | results |',
      '| --- | --- | --- | --- |',
      '| x | y | not measured | d |',
    ]);
  });
});

describe('launcherNodeFlags', () => {
  it("reads the Node flags of pgnear's shebang, so the bench runs pgnear as its launcher does", () => {
    expect(launcherNodeFlags('#!/usr/bin/env -S node --max-semi-space-size=8\n// x')).toEqual([
      '--max-semi-space-size=8',
    ]);
    expect(launcherNodeFlags('#!/usr/bin/env -S node --a=1 --b\n')).toEqual(['--a=1', '--b']);
    expect(launcherNodeFlags('#!/usr/bin/env node\n')).toEqual([]);
    expect(launcherNodeFlags('// no shebang\n#!/usr/bin/env -S node --x\n')).toEqual([]);
  });

  it('finds the flag in the source of the CLI entry', () => {
    const main = readFileSync(resolve(import.meta.dirname, '../../../src/main.ts'), 'utf8');
    expect(launcherNodeFlags(main)).toContain('--max-semi-space-size=8');
  });
});
