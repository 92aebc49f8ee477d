// Pure topology helpers: LSN text round trips, caught-up tolerance, EWMA, wait SQL and probe row mapping.
import { describe, expect, it } from 'vitest';
import { describeUrl, ewma } from '../../../src/topology/derive.js';
import { formatLsn, lsnCaughtUp, parseLsn } from '../../../src/topology/lsn.js';
import { probeResultFromRow, waitSql } from '../../../src/topology/pg-prober.js';

describe('LSN helpers', () => {
  it('parses and formats X/Y', () => {
    expect(parseLsn('0/0')).toBe(0n);
    expect(parseLsn('16/B374D848')).toBe((0x16n << 32n) | 0xb374d848n);
    expect(parseLsn('16/b374d848')).toBe(parseLsn('16/B374D848'));
    expect(formatLsn(parseLsn('16/B374D848'))).toBe('16/B374D848');
    expect(formatLsn(parseLsn('FFFFFFFF/FFFFFFFF'))).toBe('FFFFFFFF/FFFFFFFF');
    expect(formatLsn(0x3000028n)).toBe('0/3000028');
  });

  it('rejects garbage', () => {
    for (const bad of ['', '0', '0/', '/1', '1/2/3', 'G/0', '123456789/0', " 0/1'; drop"]) {
      expect(() => parseLsn(bad)).toThrow(/invalid LSN/);
    }
    expect(() => formatLsn(-1n)).toThrow();
    expect(() => formatLsn(1n << 64n)).toThrow();
  });

  it('caught up: at or past the insert LSN, or a page-header gap after a page-aligned replay position', () => {
    expect(lsnCaughtUp(100n, 100n)).toBe(true);
    expect(lsnCaughtUp(101n, 100n)).toBe(true);
    expect(lsnCaughtUp(99n, 100n)).toBe(false);
    const page = parseLsn('0/3002000');
    expect(lsnCaughtUp(page, page + 24n)).toBe(true); // short page header
    expect(lsnCaughtUp(page, page + 40n)).toBe(true); // long header at a segment start
    expect(lsnCaughtUp(page, page + 41n)).toBe(false);
    expect(lsnCaughtUp(page + 8n, page + 32n)).toBe(false);
  });
});

describe('derive helpers', () => {
  it('ewma with α 0.3 starts at the first sample', () => {
    expect(ewma(null, 10)).toBe(10);
    expect(ewma(10, 20)).toBeCloseTo(13);
  });

  it('describeUrl strips credentials and defaults the port', () => {
    expect(describeUrl('postgres://u:p%40ss@db.example:6000/app?sslmode=require')).toEqual({
      host: 'db.example',
      port: 6000,
      url: 'postgres://db.example:6000/app?sslmode=require',
    });
    expect(describeUrl('postgres://u@[::1]/x')).toMatchObject({ host: '::1', port: 5432 });
  });
});

describe('pg prober SQL', () => {
  it('inlines only a formatted LSN and an integer timeout into the wait block', () => {
    const sql = waitSql(parseLsn('1/ABC'), 49.2);
    expect(sql).toContain("target pg_lsn := '1/ABC';");
    expect(sql).toContain("interval '50 milliseconds'");
    expect(sql).toContain('COMMIT;');
    expect(sql).toContain('% 8192 = 0 AND target - r <= 40');
    expect(waitSql(1n, 10, false)).not.toContain('COMMIT');
  });

  it('maps a probe row', () => {
    expect(
      probeResultFromRow({
        in_recovery: true,
        lsn: '0/3000060',
        replay_age_ms: 12.5,
        sender_host: '127.0.0.1',
        sender_port: 5432,
        server_port: 5433,
        system_id: '7',
        timeline: null,
      }),
    ).toEqual({
      inRecovery: true,
      lsn: 0x3000060n,
      replayAgeMs: 12.5,
      senderHost: '127.0.0.1',
      senderPort: 5432,
      serverPort: 5433,
      systemId: '7',
      timeline: null,
    });
    expect(
      probeResultFromRow({
        in_recovery: false,
        lsn: null,
        replay_age_ms: null,
        sender_host: null,
        sender_port: null,
        server_port: null,
        system_id: null,
        timeline: '0000000A',
      }).timeline,
    ).toBe(10);
  });
});
