// FrameScanner: forwarded bytes equal the input minus dropped frames, for any chunking, watch table and decisions.
import fc from 'fast-check';
import { serialize } from 'pg-protocol';
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../../src/protocol/errors.js';
import { FrameScanner, type WatchTable, WATCH_ALL, watchTable } from '../../../src/protocol/framer.js';

// ---------- independent message builder and oracle ----------

/** A typed message built by hand: type byte, int32 length (counting itself), body. */
function msg(type: string | number, body: Uint8Array | string = new Uint8Array(0)): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body, 'utf8') : Buffer.from(body);
  const out = Buffer.alloc(5 + b.length);
  out[0] = typeof type === 'string' ? type.charCodeAt(0) : type;
  out.writeUInt32BE(4 + b.length, 1);
  b.copy(out, 5);
  return out;
}

interface Decision {
  keep: boolean;
  /** Bytes the sink writes itself (after scanner.flush()) before answering. */
  inject?: Buffer;
}

interface RunResult {
  out: Buffer;
  frames: { type: number; frame: Buffer }[];
  passthroughCalls: Buffer[];
}

/**
 * Feed `chunks` through a scanner. Buffers handed to the sink are stored by reference and only read at the
 * end, so a scanner that reused an internal buffer after handing it out would be caught.
 */
function run(
  chunks: Buffer[],
  watch: WatchTable,
  decide: (index: number, type: number, frame: Buffer) => Decision,
  maxFrame = 1 << 20,
): RunResult {
  const scanner = new FrameScanner(watch, maxFrame);
  const written: Buffer[] = [];
  const passthroughCalls: Buffer[] = [];
  const frames: { type: number; frame: Buffer }[] = [];
  const sink = {
    passthrough(b: Buffer) {
      written.push(b);
      passthroughCalls.push(b);
    },
    frame(type: number, frame: Buffer): boolean {
      const d = decide(frames.length, type, frame);
      frames.push({ type, frame });
      if (d.inject) {
        scanner.flush();
        written.push(d.inject);
      }
      return d.keep;
    },
  };
  for (const c of chunks) scanner.push(c, sink);
  if (!scanner.atBoundary()) expect.fail('scanner not at a message boundary after a complete stream');
  return { out: Buffer.concat(written), frames, passthroughCalls };
}

/** What the run must produce, computed from the message list alone. */
function expected(
  messages: Buffer[],
  watch: WatchTable,
  decide: (index: number, type: number, frame: Buffer) => Decision,
) {
  const out: Buffer[] = [];
  const frames: { type: number; frame: Buffer }[] = [];
  for (const m of messages) {
    if (watch[m[0]]) {
      const d = decide(frames.length, m[0], m);
      frames.push({ type: m[0], frame: m });
      if (d.inject) out.push(d.inject);
      if (d.keep) out.push(m);
    } else {
      out.push(m);
    }
  }
  return { out: Buffer.concat(out), frames };
}

function splitAt(buf: Buffer, cuts: number[]): Buffer[] {
  const pts = [...new Set(cuts.map((c) => Math.min(Math.max(c, 0), buf.length)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let prev = 0;
  for (const p of pts) {
    if (p > prev) chunks.push(buf.subarray(prev, p));
    prev = p;
  }
  if (prev < buf.length) chunks.push(buf.subarray(prev));
  return chunks;
}

function check(
  messages: Buffer[],
  chunks: Buffer[],
  watch: WatchTable,
  decide: (i: number, t: number, f: Buffer) => Decision,
) {
  const got = run(chunks, watch, decide);
  const want = expected(messages, watch, decide);
  const same =
    got.out.equals(want.out) &&
    got.frames.length === want.frames.length &&
    want.frames.every(
      (w, i) =>
        got.frames[i].type === w.type && got.frames[i].frame[0] === w.type && got.frames[i].frame.equals(w.frame),
    );
  if (!same) {
    // Cheap path above; readable diff only on failure.
    const hexes = (fs: { type: number; frame: Buffer }[]) => fs.map((f) => `${f.type}:${f.frame.toString('hex')}`);
    expect(hexes(got.frames)).toEqual(hexes(want.frames));
    expect(got.out.toString('hex')).toBe(want.out.toString('hex'));
  }
  return got;
}

// ---------- a fixed mixed stream ----------

const big = Buffer.alloc(700, 0x61);
const MESSAGES: Buffer[] = [
  serialize.query('SELECT 1'),
  serialize.parse({ name: 's1', text: 'SELECT $1::int', types: [23] }),
  serialize.bind({ statement: 's1', values: ['42'] }),
  serialize.describe({ type: 'P', name: '' }),
  serialize.execute({ portal: '', rows: 0 }),
  serialize.sync(),
  serialize.flush(),
  msg('D', Buffer.concat([Buffer.from([0, 1, 0, 0, 0, 3]), Buffer.from('abc')])),
  serialize.copyData(big),
  serialize.copyDone(),
  msg('Z', 'I'),
  serialize.password('secret'),
  msg('S'),
  msg(0, 'zero type byte'),
  msg(0xff, Buffer.alloc(17, 0xff)),
  serialize.copyFail('nope'),
  serialize.query(''),
  serialize.close({ type: 'S', name: 's1' }),
  serialize.end(),
];
const STREAM = Buffer.concat(MESSAGES);
const Q = 'Q'.charCodeAt(0);
const WATCH_SOME = watchTable(['Q', 'S', 'X', 'p', 'd', 'Z'].map((c) => c.charCodeAt(0)));
/** Keep two of every three watched frames, starting with a keep. */
const someDropped = (i: number): Decision => ({ keep: i % 3 !== 1 });

describe('FrameScanner on a fixed mixed stream', () => {
  it('the oracle builder agrees with pg-protocol on the frame layout', () => {
    expect(msg('Q', 'SELECT 1\0').equals(serialize.query('SELECT 1'))).toBe(true);
    expect(msg('S').equals(serialize.sync())).toBe(true);
  });

  it('(a) whole stream in one chunk, various watch tables', () => {
    for (const watch of [new Uint8Array(256), WATCH_SOME, WATCH_ALL]) {
      check(MESSAGES, [STREAM], watch, someDropped);
      check(MESSAGES, [STREAM], watch, () => ({ keep: true }));
      check(MESSAGES, [STREAM], watch, () => ({ keep: false }));
    }
  });

  it('drops exactly the frames the sink rejects', () => {
    const got = run([STREAM], WATCH_ALL, (_i, t) => ({ keep: t !== Q }));
    const noQueries = Buffer.concat(MESSAGES.filter((m) => m[0] !== Q));
    expect(got.out.equals(noQueries)).toBe(true);
    expect(got.frames.map((f) => f.type)).toEqual(MESSAGES.map((m) => m[0]));
  });

  it('(b) split into two chunks at every byte position', () => {
    for (let cut = 0; cut <= STREAM.length; cut++) {
      const chunks = splitAt(STREAM, [cut]);
      check(MESSAGES, chunks, WATCH_SOME, someDropped);
      check(MESSAGES, chunks, WATCH_ALL, someDropped);
    }
  });

  it('(c) one byte per chunk', () => {
    const chunks = [...STREAM].map((_, i) => STREAM.subarray(i, i + 1));
    for (const watch of [new Uint8Array(256), WATCH_SOME, WATCH_ALL]) {
      check(MESSAGES, chunks, watch, someDropped);
      check(MESSAGES, chunks, watch, (i) => ({ keep: i % 2 === 0, inject: Buffer.from(`<${i}>`) }));
    }
  });

  it('an unwatched stream in one chunk is forwarded as one zero-copy write', () => {
    const got = run([STREAM], new Uint8Array(256), () => ({ keep: true }));
    expect(got.passthroughCalls.length).toBe(1);
    expect(got.passthroughCalls[0].buffer).toBe(STREAM.buffer);
    expect(got.passthroughCalls[0].equals(STREAM)).toBe(true);
  });

  it('kept frames join the surrounding pass-through run (no extra write)', () => {
    const got = run([STREAM], WATCH_SOME, () => ({ keep: true }));
    expect(got.passthroughCalls.length).toBe(1);
    expect(got.out.equals(STREAM)).toBe(true);
  });

  it('a sink that flushes inside frame() and writes its own bytes keeps the order', () => {
    const a = serialize.query('A');
    const b = msg('D', 'row');
    const c = serialize.sync();
    const d = msg('D', 'tail');
    const stream = Buffer.concat([a, b, c, d]);
    const S = 'S'.charCodeAt(0);
    const watch = watchTable([S]);
    for (const keep of [true, false]) {
      for (let cut = 0; cut <= stream.length; cut++) {
        const scanner = new FrameScanner(watch, 1 << 20);
        const out: Buffer[] = [];
        const sink = {
          passthrough: (x: Buffer) => out.push(x),
          frame: (type: number) => {
            expect(type).toBe(S);
            scanner.flush();
            // Everything before the Sync must already be out, nothing after it.
            expect(Buffer.concat(out).equals(Buffer.concat([a, b]))).toBe(true);
            out.push(Buffer.from('MINE'));
            return keep;
          },
        };
        for (const ch of splitAt(stream, [cut])) scanner.push(ch, sink);
        const want = Buffer.concat(keep ? [a, b, Buffer.from('MINE'), c, d] : [a, b, Buffer.from('MINE'), d]);
        expect(Buffer.concat(out).toString('latin1')).toBe(want.toString('latin1'));
      }
    }
  });

  it('flush() outside push() is harmless', () => {
    const scanner = new FrameScanner(WATCH_ALL, 1024);
    expect(() => scanner.flush()).not.toThrow();
  });
});

describe('FrameScanner.atBoundary', () => {
  const sink = { passthrough: () => {}, frame: () => true };

  it('is true initially and after complete messages', () => {
    const s = new FrameScanner(WATCH_SOME, 1 << 20);
    expect(s.atBoundary()).toBe(true);
    s.push(STREAM, sink);
    expect(s.atBoundary()).toBe(true);
  });

  it('is false inside a partial header, a partial unwatched body and a partial watched body', () => {
    const unwatched = msg('D', 'some row data');
    const watched = serialize.query('SELECT 42');
    for (const [m, watch] of [
      [unwatched, WATCH_SOME],
      [watched, WATCH_SOME],
      [watched, WATCH_ALL],
    ] as const) {
      for (let cut = 1; cut < m.length; cut++) {
        const s = new FrameScanner(watch, 1 << 20);
        s.push(m.subarray(0, cut), sink);
        expect(s.atBoundary(), `cut ${cut}`).toBe(false);
        s.push(m.subarray(cut), sink);
        expect(s.atBoundary(), `cut ${cut} completed`).toBe(true);
      }
    }
  });

  it('is true right after a header-only (length 4) message split across chunks', () => {
    const s = new FrameScanner(new Uint8Array(256), 1024);
    s.push(Buffer.from([0x53, 0, 0]), sink);
    expect(s.atBoundary()).toBe(false);
    s.push(Buffer.from([0, 4]), sink);
    expect(s.atBoundary()).toBe(true);
  });
});

describe('FrameScanner length guard', () => {
  const sink = { passthrough: () => {}, frame: () => true };
  const header = (type: string, len: number) => {
    const b = Buffer.alloc(5);
    b[0] = type.charCodeAt(0);
    b.writeUInt32BE(len, 1);
    return b;
  };

  for (const watch of [new Uint8Array(256), WATCH_ALL]) {
    const label = watch[0] ? 'watched' : 'unwatched';

    it(`${label}: length above maxFrame → ProtocolError as soon as the header is in`, () => {
      for (const len of [1025, 0x7fffffff, 0xffffffff]) {
        const s = new FrameScanner(watch, 1024);
        let err: unknown;
        try {
          s.push(header('Q', len), sink);
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(ProtocolError);
        expect((err as ProtocolError).sqlstate).toBe('08P01');
      }
    });

    it(`${label}: oversized header split across chunks → ProtocolError`, () => {
      const s = new FrameScanner(watch, 1024);
      const h = header('D', 5000);
      s.push(h.subarray(0, 2), sink);
      expect(() => s.push(h.subarray(2), sink)).toThrow(ProtocolError);
    });

    it(`${label}: a length of exactly maxFrame is accepted`, () => {
      const m = msg('D', Buffer.alloc(1020));
      expect(m.readUInt32BE(1)).toBe(1024);
      const got = run([m], watch, () => ({ keep: true }), 1024);
      expect(got.out.equals(m)).toBe(true);
    });

    it(`${label}: length < 4 → ProtocolError (also after a valid message)`, () => {
      for (const len of [0, 1, 2, 3]) {
        const s = new FrameScanner(watch, 1024);
        expect(() => s.push(header('Q', len), sink)).toThrow(ProtocolError);
        const s2 = new FrameScanner(watch, 1024);
        expect(() => s2.push(Buffer.concat([serialize.sync(), header('Q', len)]), sink)).toThrow(ProtocolError);
      }
    });
  }
});

describe('FrameScanner type guard (valid)', () => {
  const sink = { passthrough: () => {}, frame: () => true };
  const valid = watchTable([0x51, 0x53]); // Q, S

  it('an unknown type is refused at its header, before a body it claims is buffered (whole and split headers)', () => {
    const bogus = Buffer.from([0x00, 0x00, 0x00, 0x27, 0x10]); // a StartupMessage after login: type 0, 10,000 bytes
    const s = new FrameScanner(new Uint8Array(256), 1 << 20, false, valid);
    expect(() => s.push(Buffer.concat([serialize.sync(), bogus]), sink)).toThrow('invalid frontend message type 0');
    const split = new FrameScanner(WATCH_ALL, 1 << 20, false, valid);
    split.push(bogus.subarray(0, 3), sink);
    expect(() => split.push(bogus.subarray(3), sink)).toThrow(ProtocolError);
  });

  it('allowed types pass, watched or not', () => {
    const s = new FrameScanner(watchTable([0x51]), 1024, false, valid);
    expect(() => s.push(Buffer.concat([serialize.query('select 1'), serialize.sync()]), sink)).not.toThrow();
  });
});

// ---------- properties ----------

const TYPES = [0x00, 0x44, 0x51, 0x53, 0x5a, 0x64, 0x70, 0xff];
const bodyArb = fc.oneof(
  { weight: 6, arbitrary: fc.uint8Array({ maxLength: 40 }) },
  { weight: 2, arbitrary: fc.constant(new Uint8Array(0)) },
  { weight: 1, arbitrary: fc.integer({ min: 100, max: 3000 }).map((n) => new Uint8Array(n).fill(7)) },
);
const messageArb = fc.tuple(fc.constantFrom(...TYPES), bodyArb).map(([t, b]) => msg(t, b));
const decisionArb: fc.Arbitrary<Decision> = fc.record({
  keep: fc.boolean(),
  inject: fc.option(
    fc.uint8Array({ minLength: 1, maxLength: 6 }).map((u) => Buffer.from(u)),
    { nil: undefined },
  ),
});
const watchArb = fc.tuple(fc.subarray(TYPES), fc.boolean()).map(([ts, all]) => (all ? WATCH_ALL : watchTable(ts)));

describe('FrameScanner properties', () => {
  it('random messages, watch tables, decisions and chunk splits: output = input minus dropped frames', () => {
    fc.assert(
      fc.property(
        fc.array(messageArb, { maxLength: 40 }),
        watchArb,
        fc.array(decisionArb, { minLength: 1, maxLength: 10 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        (messages, watch, decisions, cutSeeds) => {
          const stream = Buffer.concat(messages);
          const cuts = cutSeeds.map((c) => c % (stream.length + 1));
          const decide = (i: number): Decision => decisions[i % decisions.length];
          check(messages, splitAt(stream, cuts), watch, decide);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('random garbage with random splits only ever throws ProtocolError', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 300 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        watchArb,
        fc.integer({ min: 0, max: 1 << 16 }),
        fc.boolean(),
        (bytes, cutSeeds, watch, maxFrame, keep) => {
          const buf = Buffer.from(bytes);
          const s = new FrameScanner(watch, maxFrame);
          const sink = { passthrough: () => {}, frame: () => keep };
          for (const ch of splitAt(
            buf,
            cutSeeds.map((c) => c % (buf.length + 1)),
          )) {
            try {
              s.push(ch, sink);
            } catch (e) {
              if (!(e instanceof ProtocolError)) throw e;
              return;
            }
          }
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('garbage that parses forwards exactly its own bytes when everything is kept', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 200 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        watchArb,
        (bytes, seeds, watch) => {
          const buf = Buffer.from(bytes);
          const s = new FrameScanner(watch, 1 << 16);
          const out: Buffer[] = [];
          const sink = { passthrough: (b: Buffer) => out.push(b), frame: () => true };
          try {
            for (const ch of splitAt(
              buf,
              seeds.map((c) => c % (buf.length + 1)),
            ))
              s.push(ch, sink);
          } catch (e) {
            if (!(e instanceof ProtocolError)) throw e;
            return;
          }
          const fwd = Buffer.concat(out);
          // Without an error, everything forwarded is a prefix of the input (a pending partial message may be held).
          expect(fwd.equals(buf.subarray(0, fwd.length))).toBe(true);
          if (s.atBoundary()) expect(fwd.length).toBe(buf.length);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('FrameScanner over a reused read buffer (reusedInput)', () => {
  // A server read into one buffer that the next read overwrites: watched messages that straddle reads must not
  // keep views of it. The same stream is fed through one 7-byte buffer, overwritten with 0xEE after every push.
  const stream = Buffer.concat([
    msg('T', 'x'.repeat(40)),
    msg('D', 'row'),
    msg('E', 'SERROR\0C42P01\0\0'),
    msg('Z', 'I'),
  ]);
  const run = (reusedInput: boolean) => {
    const scanner = new FrameScanner(WATCH_ALL, 1 << 20, reusedInput);
    const frames: Buffer[] = [];
    const sink = { passthrough: () => {}, frame: (_t: number, f: Buffer) => (frames.push(Buffer.from(f)), false) };
    const buf = Buffer.alloc(7);
    for (let at = 0; at < stream.length; at += 7) {
      const n = stream.copy(buf, 0, at, Math.min(at + 7, stream.length));
      scanner.push(buf.subarray(0, n), sink);
      buf.fill(0xee);
    }
    return Buffer.concat(frames);
  };

  it('delivers every watched message intact', () => {
    expect(run(true).equals(stream)).toBe(true);
  });

  it('(control) without it, views of the overwritten buffer corrupt the collected messages', () => {
    expect(run(false).equals(stream)).toBe(false);
  });
});
