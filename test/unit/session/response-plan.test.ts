// ResponsePlan: which server replies reach the client, where pgnear's own replies go, and which tagged slots fail.
import { describe, expect, it } from 'vitest';
import { BE } from '../../../src/protocol/codes.js';
import { PLAN_WATCH, ResponsePlan, Slot, Verdict } from '../../../src/session/response-plan.js';

const NAMES: Record<number, string> = Object.fromEntries(Object.entries(BE).map(([k, v]) => [v, k]));

/**
 * A plan driven the way the relay drives it: every event (forwarded frame, dropped frame, emitted synthetic
 * reply, settled tag) goes to one log, so ordering is visible.
 */
function harness() {
  const log: string[] = [];
  const settled: [number, boolean][] = [];
  const plan = new ResponsePlan({
    emit: (b) => log.push(`emit ${b.toString()}`),
    settled: (tag, ok) => {
      settled.push([tag, ok]);
      log.push(`settled ${tag} ${ok}`);
    },
  });
  /** One watched server frame, handled as TxRelay.onServerFrame does. */
  const server = (type: number): Verdict => {
    const v = plan.onServerFrame(type);
    if (v === Verdict.Drop) {
      log.push(`drop ${NAMES[type]}`);
      plan.drainSynthetic();
      return v;
    }
    log.push(`fwd ${NAMES[type]}`);
    if (plan.syntheticDue) plan.drainSynthetic();
    return v;
  };
  const synth = (label: string, tag = 0) => plan.push(Slot.Synthetic, tag, Buffer.from(label));
  return { plan, log, settled, server, synth };
}

const TERMINALS = [
  BE.ParseComplete,
  BE.BindComplete,
  BE.CloseComplete,
  BE.NoData,
  BE.RowDescription,
  BE.CommandComplete,
  BE.EmptyQueryResponse,
  BE.PortalSuspended,
];

describe('PLAN_WATCH', () => {
  it('is exactly the terminal replies, ErrorResponse and ReadyForQuery', () => {
    expect([...PLAN_WATCH].sort((a, b) => a - b)).toEqual(
      [...TERMINALS, BE.ErrorResponse, BE.ReadyForQuery].sort((a, b) => a - b),
    );
  });
});

describe('Ext slots', () => {
  it.each(TERMINALS.map((t) => [NAMES[t], t]))('%s ends an extended slot and settles its tag ok', (_n, type) => {
    const h = harness();
    h.plan.push(Slot.Ext, 7);
    h.plan.push(Slot.Ext, 8);
    expect(h.server(type)).toBe(Verdict.Forward);
    expect(h.plan.pending).toBe(1);
    expect(h.settled).toEqual([[7, true]]);
  });

  it('non-terminal replies (DataRow, ParameterDescription, notices) do not end a slot', () => {
    const h = harness();
    h.plan.push(Slot.Ext, 1); // Describe statement
    h.plan.push(Slot.Ext, 2); // Execute
    for (const t of [BE.ParameterDescription, BE.NoticeResponse, BE.ParameterStatus, BE.NotificationResponse]) {
      expect(h.server(t)).toBe(Verdict.Forward);
    }
    expect(h.plan.pending).toBe(2);
    h.server(BE.RowDescription);
    expect(h.settled).toEqual([[1, true]]);
    for (let i = 0; i < 3; i++) h.server(BE.DataRow);
    expect(h.plan.pending).toBe(1);
    h.server(BE.PortalSuspended);
    expect(h.plan.pending).toBe(0);
    expect(h.settled).toEqual([
      [1, true],
      [2, true],
    ]);
  });

  it('untagged slots settle nothing', () => {
    const h = harness();
    h.plan.push(Slot.Ext);
    h.plan.push(Slot.Sync);
    h.server(BE.ParseComplete);
    h.server(BE.ReadyForQuery);
    expect(h.settled).toEqual([]);
    expect(h.plan.pending).toBe(0);
  });

  it('frames while nothing is pending are forwarded (async errors, notices)', () => {
    const h = harness();
    expect(h.server(BE.ErrorResponse)).toBe(Verdict.Forward);
    expect(h.server(BE.ParseComplete)).toBe(Verdict.Forward);
    expect(h.plan.pending).toBe(0);
  });
});

describe('Sync slots', () => {
  it('a Sync ends at ReadyForQuery; awaitingReady reports it', () => {
    const h = harness();
    h.plan.push(Slot.Ext);
    expect(h.plan.awaitingReady).toBe(false);
    h.plan.push(Slot.Sync);
    expect(h.plan.awaitingReady).toBe(true);
    h.server(BE.BindComplete);
    expect(h.plan.awaitingReady).toBe(true);
    h.server(BE.ReadyForQuery);
    expect(h.plan.awaitingReady).toBe(false);
    expect(h.plan.pending).toBe(0);
  });

  it('a simple query with several result sets and an error stays one slot until ReadyForQuery', () => {
    const h = harness();
    h.plan.push(Slot.Sync); // Query 'SELECT 1; SELECT 2; SELECT x'
    h.synth('after-query');
    h.plan.push(Slot.Ext, 9); // a Parse sent after the Query
    for (const t of [
      BE.RowDescription,
      BE.DataRow,
      BE.CommandComplete,
      BE.RowDescription,
      BE.DataRow,
      BE.CommandComplete,
      BE.EmptyQueryResponse,
      BE.ErrorResponse,
    ]) {
      expect(h.server(t)).toBe(Verdict.Forward);
      expect(h.plan.pending).toBe(3);
      expect(h.plan.syntheticDue).toBe(false);
    }
    expect(h.settled).toEqual([]);
    h.server(BE.ReadyForQuery);
    expect(h.log.slice(-2)).toEqual(['fwd ReadyForQuery', 'emit after-query']);
    expect(h.plan.pending).toBe(1);
    // The error inside the simple query did not put the plan into skip mode.
    h.server(BE.ParseComplete);
    expect(h.settled).toEqual([[9, true]]);
  });

  it('ReadyForQuery without an error drops nothing but the Sync', () => {
    const h = harness();
    h.plan.push(Slot.Sync);
    h.plan.push(Slot.Sync);
    h.server(BE.ReadyForQuery);
    expect(h.plan.pending).toBe(1);
    expect(h.plan.awaitingReady).toBe(true);
  });
});

describe('errors in an extended batch', () => {
  it('drops the queued extended slots up to the Sync, settling their tags not ok in order', () => {
    const h = harness();
    h.plan.push(Slot.Ext, 1); // Parse
    h.plan.push(Slot.Ext, 2); // Parse
    h.plan.push(Slot.Ext); // Bind
    h.plan.push(Slot.Ext, 3); // Execute
    h.plan.push(Slot.Sync);
    h.plan.push(Slot.Ext, 4); // next batch
    h.server(BE.ParseComplete);
    expect(h.server(BE.ErrorResponse)).toBe(Verdict.Forward);
    expect(h.settled).toEqual([
      [1, true],
      [2, false],
      [3, false],
    ]);
    expect(h.plan.pending).toBe(2);
    expect(h.plan.awaitingReady).toBe(true);
    h.server(BE.ReadyForQuery);
    expect(h.plan.pending).toBe(1);
    // The slot after the Sync is live again.
    h.server(BE.ParseComplete);
    expect(h.settled.at(-1)).toEqual([4, true]);
  });

  it('drops synthetic replies queued behind the failed message (the server skipped those messages)', () => {
    const h = harness();
    h.plan.push(Slot.Ext, 1);
    h.synth('skipped', 2);
    h.plan.push(Slot.Sync);
    h.synth('after-sync');
    h.server(BE.ErrorResponse);
    expect(h.log).not.toContain('emit skipped');
    h.server(BE.ReadyForQuery);
    expect(h.log).toEqual([
      'settled 1 false',
      'settled 2 false',
      'fwd ErrorResponse',
      'fwd ReadyForQuery',
      'emit after-sync',
    ]);
  });

  it('after an error empties the plan, extended pushes are ignored (settled not ok) until a Sync is pushed', () => {
    const h = harness();
    h.plan.push(Slot.Ext, 1);
    h.server(BE.ErrorResponse);
    expect(h.plan.pending).toBe(0);
    expect(h.settled).toEqual([[1, false]]);

    h.plan.push(Slot.Ext, 2);
    h.plan.push(Slot.Hidden, 3);
    h.plan.push(Slot.Ext);
    h.synth('ignored', 4);
    expect(h.plan.pending).toBe(0);
    expect(h.settled).toEqual([
      [1, false],
      [2, false],
      [3, false],
      [4, false],
    ]);
    expect(h.log).not.toContain('emit ignored');

    h.plan.push(Slot.Sync);
    expect(h.plan.pending).toBe(1);
    h.plan.push(Slot.Ext, 5);
    expect(h.plan.pending).toBe(2);
    h.server(BE.ReadyForQuery);
    h.server(BE.ParseComplete);
    expect(h.settled.at(-1)).toEqual([5, true]);
    expect(h.plan.pending).toBe(0);
  });

  it('an error while a Sync is queued does not ignore later pushes', () => {
    const h = harness();
    h.plan.push(Slot.Ext, 1);
    h.plan.push(Slot.Sync);
    h.server(BE.ErrorResponse);
    h.plan.push(Slot.Ext, 2);
    expect(h.plan.pending).toBe(2);
    expect(h.settled).toEqual([[1, false]]);
  });

  it('an error while idle (nothing queued before it) is async and does not start skipping', () => {
    const h = harness();
    h.server(BE.ErrorResponse);
    h.plan.push(Slot.Ext, 1);
    expect(h.plan.pending).toBe(1);
    expect(h.settled).toEqual([]);
  });
});

describe('Hidden slots', () => {
  it('the success reply of an injected message is dropped, its tag settled ok', () => {
    const h = harness();
    h.plan.push(Slot.Hidden, 1); // injected Parse
    h.plan.push(Slot.Ext, 2); // client's Bind
    expect(h.server(BE.ParseComplete)).toBe(Verdict.Drop);
    expect(h.server(BE.BindComplete)).toBe(Verdict.Forward);
    expect(h.log).toEqual(['settled 1 true', 'drop ParseComplete', 'settled 2 true', 'fwd BindComplete']);
  });

  it('an injected CloseComplete is dropped too', () => {
    const h = harness();
    h.plan.push(Slot.Hidden);
    h.plan.push(Slot.Sync);
    expect(h.server(BE.CloseComplete)).toBe(Verdict.Drop);
    expect(h.server(BE.ReadyForQuery)).toBe(Verdict.Forward);
  });

  it('an error of an injected message is forwarded (it is the client statement failing)', () => {
    const h = harness();
    h.plan.push(Slot.Hidden, 1);
    h.plan.push(Slot.Ext, 2);
    h.plan.push(Slot.Sync);
    expect(h.server(BE.ErrorResponse)).toBe(Verdict.Forward);
    expect(h.settled).toEqual([
      [1, false],
      [2, false],
    ]);
    expect(h.server(BE.ReadyForQuery)).toBe(Verdict.Forward);
    expect(h.plan.pending).toBe(0);
  });

  it('a synthetic reply queued behind a hidden slot is emitted when the hidden reply is dropped', () => {
    const h = harness();
    h.plan.push(Slot.Hidden);
    h.synth('S');
    h.server(BE.ParseComplete);
    expect(h.log).toEqual(['drop ParseComplete', 'emit S']);
  });
});

describe('Synthetic slots', () => {
  it('are emitted at once when nothing is pending', () => {
    const h = harness();
    h.synth('now');
    expect(h.log).toEqual(['emit now']);
    expect(h.plan.pending).toBe(0);
    expect(h.plan.syntheticDue).toBe(false);
  });

  it('wait for the slot before them, then come out right after its reply, in order', () => {
    const h = harness();
    h.plan.push(Slot.Ext); // Parse
    h.synth('A');
    h.synth('B');
    h.plan.push(Slot.Ext); // Bind
    h.synth('C');
    h.plan.push(Slot.Sync);
    h.synth('D');
    expect(h.log).toEqual([]);
    expect(h.plan.syntheticDue).toBe(false);

    // Raw check of the contract the relay relies on: due right after the completing frame is judged.
    expect(h.plan.onServerFrame(BE.ParseComplete)).toBe(Verdict.Forward);
    expect(h.plan.syntheticDue).toBe(true);
    h.log.push('fwd ParseComplete');
    h.plan.drainSynthetic();
    expect(h.plan.syntheticDue).toBe(false);

    h.server(BE.BindComplete);
    h.server(BE.ReadyForQuery);
    expect(h.log).toEqual([
      'fwd ParseComplete',
      'emit A',
      'emit B',
      'fwd BindComplete',
      'emit C',
      'fwd ReadyForQuery',
      'emit D',
    ]);
    expect(h.plan.pending).toBe(0);
  });

  it('settle their tags ok when emitted (at once or when drained)', () => {
    const h = harness();
    h.synth('now', 1);
    expect(h.log).toEqual(['emit now', 'settled 1 true']);
    h.plan.push(Slot.Ext);
    h.synth('later', 2);
    expect(h.settled).toEqual([[1, true]]);
    h.server(BE.ParseComplete);
    expect(h.log.slice(2)).toEqual(['fwd ParseComplete', 'emit later', 'settled 2 true']);
  });

  it('drainSynthetic does nothing when the head is not synthetic', () => {
    const h = harness();
    h.plan.push(Slot.Ext);
    h.synth('X');
    h.plan.drainSynthetic();
    expect(h.log).toEqual([]);
    expect(h.plan.pending).toBe(2);
  });
});

describe('ring buffer', () => {
  it('keeps order across growth past 64 entries, including after wrap-around', () => {
    const h = harness();
    // Advance the head so the ring wraps before it grows.
    for (let i = 1; i <= 40; i++) h.plan.push(Slot.Ext, i);
    for (let i = 1; i <= 30; i++) h.server(BE.BindComplete);
    expect(h.plan.pending).toBe(10);
    // 10 queued + 300 more: grows 64 → 128 → 256 → 512 while wrapped.
    for (let i = 41; i <= 340; i++) {
      if (i % 7 === 0) h.synth(`s${i}`);
      else h.plan.push(Slot.Ext, i);
    }
    expect(h.plan.pending).toBe(310);
    h.log.length = 0;
    h.settled.length = 0;
    while (h.plan.pending > 0) h.server(BE.CommandComplete);

    const expected: string[] = [];
    for (let i = 31; i <= 340; i++) {
      if (i > 40 && i % 7 === 0) expected.push(`emit s${i}`);
      else expected.push(`settled ${i} true`, 'fwd CommandComplete');
    }
    expect(h.log).toEqual(expected);
  });

  it('error handling still finds the Sync after growth', () => {
    const h = harness();
    for (let i = 1; i <= 100; i++) h.plan.push(Slot.Ext, i);
    h.plan.push(Slot.Sync);
    h.server(BE.ErrorResponse);
    expect(h.settled.length).toBe(100);
    expect(h.settled.every(([, ok]) => !ok)).toBe(true);
    expect(h.settled.map(([t]) => t)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(h.plan.pending).toBe(1);
    expect(h.plan.awaitingReady).toBe(true);
  });
});

describe('clear', () => {
  it('fails every tagged slot, empties the plan and ends skip mode', () => {
    const h = harness();
    h.plan.push(Slot.Ext, 1);
    h.plan.push(Slot.Hidden, 2);
    h.synth('never', 3);
    h.plan.push(Slot.Sync);
    h.plan.clear();
    expect(h.settled).toEqual([
      [1, false],
      [2, false],
      [3, false],
    ]);
    expect(h.plan.pending).toBe(0);
    expect(h.log).not.toContain('emit never');

    // Skip mode is reset too.
    h.plan.push(Slot.Ext, 4);
    h.server(BE.ErrorResponse);
    h.plan.clear();
    h.plan.push(Slot.Ext, 5);
    expect(h.plan.pending).toBe(1);
  });
});
