// Micro-benchmarks of FrameScanner.push on the byte shapes the relays see: small responses, client batches, big streams.
import { RFQ_IDLE, encodeCommandComplete } from '../../src/protocol/backend.js';
import { BE, FE } from '../../src/protocol/codes.js';
import { KIND_PORTAL, encodeParse, encodeTarget } from '../../src/protocol/extended.js';
import { FrameScanner, type FrameSink, watchTable } from '../../src/protocol/framer.js';
import { CLIENT_WATCH, SYNC, encodeQuery } from '../../src/protocol/frontend.js';
import { Writer } from '../../src/protocol/writer.js';
import { PLAN_WATCH } from '../../src/session/response-plan.js';
import type { MicroCase } from './types.js';

// tx-relay.ts keeps its SERVER_WATCH private; this is the same expression, built from the exported PLAN_WATCH.
const SERVER_WATCH = watchTable([...PLAN_WATCH, BE.ParameterStatus]);
// The relays' limits: tx-relay's SERVER_MAX_FRAME and the default limits.max_message_size.
const SERVER_MAX_FRAME = 0x40000000;
const CLIENT_MAX_MESSAGE = 256 * 1024 * 1024;

// ---------------------------------------------------------------- real encoded messages

function rowDescription(cols: readonly { name: string; oid: number; len: number }[]): Buffer {
  const w = new Writer(64);
  w.begin(BE.RowDescription).int16(cols.length);
  // table oid, column attnum, type oid, type length, type modifier, format (text)
  for (const c of cols) w.cstr(c.name).int32(16_400).int16(3).int32(c.oid).int16(c.len).int32(-1).int16(0);
  return w.end().finish();
}

function dataRow(values: readonly (Buffer | null)[]): Buffer {
  const w = new Writer(16 + values.reduce((n, v) => n + (v?.length ?? 0) + 4, 0));
  w.begin(BE.DataRow).int16(values.length);
  for (const v of values) {
    if (v === null) w.int32(-1);
    else w.int32(v.length).bytes(v);
  }
  return w.end().finish();
}

function bind(params: readonly Buffer[]): Buffer {
  const w = new Writer(32 + params.reduce((n, p) => n + p.length + 4, 0));
  w.begin(FE.Bind).cstr('').cstr('').int16(0).int16(params.length); // unnamed portal + statement, text formats
  for (const p of params) w.int32(p.length).bytes(p);
  w.int16(0); // result formats: all text
  return w.end().finish();
}

function execute(): Buffer {
  const w = new Writer(16);
  w.begin(FE.Execute).cstr('').int32(0);
  return w.end().finish();
}

const PGBENCH_SQL = 'SELECT abalance FROM pgbench_accounts WHERE aid = $1';

/** What the server sends for one `pgbench -S -M simple` transaction: T, D, C, Z. */
const PGBENCH_RESPONSE_PARTS = [
  rowDescription([{ name: 'abalance', oid: 23, len: 4 }]),
  dataRow([Buffer.from('-4821')]),
  encodeCommandComplete('SELECT 1'),
  RFQ_IDLE,
];
const PGBENCH_RESPONSE = Buffer.concat(PGBENCH_RESPONSE_PARTS);
const CLIENT_QUERY = encodeQuery('SELECT abalance FROM pgbench_accounts WHERE aid = 73811;');
const noTypes = Buffer.from([0, 0]);
/** What `pgbench -S -M extended` sends per transaction. */
const EXTENDED_BATCH = Buffer.concat([
  encodeParse('', PGBENCH_SQL, noTypes),
  bind([Buffer.from('73811')]),
  encodeTarget(FE.Describe, KIND_PORTAL, ''),
  execute(),
  SYNC,
]);

/** ~1 MB of 1 kB DataRows (one 1000-byte text column) and the result's end, as the server streams a big SELECT. */
function bigResult(): Buffer {
  const row = dataRow([Buffer.alloc(1000, 0x78)]);
  const rows = Math.floor((1 << 20) / row.length);
  return Buffer.concat([
    rowDescription([{ name: 'repeat', oid: 25, len: -1 }]),
    ...Array<Buffer>(rows).fill(row),
    encodeCommandComplete(`SELECT ${rows}`),
    RFQ_IDLE,
  ]);
}

/** Fixed-size slices, as socket reads deliver them: boundaries land anywhere, headers included. */
function slices(b: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < b.length; i += size) out.push(b.subarray(i, Math.min(b.length, i + size)));
  return out;
}

/** Chunks that cut every message 2 bytes into its 5-byte header. */
function splitHeaders(parts: readonly Buffer[]): Buffer[] {
  const whole = Buffer.concat(parts);
  const cuts = [0];
  let at = 0;
  for (const p of parts) {
    cuts.push(at + 2);
    at += p.length;
  }
  cuts.push(whole.length);
  return cuts.slice(1).map((end, i) => whole.subarray(cuts[i], end));
}

// ---------------------------------------------------------------- sink and cases

/** Counts what comes out and keeps every watched frame, like a relay that forwards them untouched. */
class CountingSink implements FrameSink {
  bytes = 0;
  frames = 0;
  passthrough(b: Buffer): void {
    this.bytes += b.length;
  }
  // A kept frame rejoins the pass-through run (or is passed through by itself), so its bytes are counted there.
  frame(_type: number, _f: Buffer): boolean {
    this.frames++;
    return true;
  }
}

function streamCase(
  name: string,
  watch: Uint8Array,
  maxFrame: number,
  chunks: readonly Buffer[],
  extra: Partial<MicroCase> = {},
): MicroCase {
  const scanner = new FrameScanner(watch, maxFrame);
  const sink = new CountingSink();
  const total = chunks.reduce((n, c) => n + c.length, 0);
  let ops = 0;
  return {
    group: 'framer',
    name,
    bytes: total,
    fn: () => {
      for (let i = 0; i < chunks.length; i++) scanner.push(chunks[i], sink);
      ops++;
      return sink;
    },
    // Every byte must come out exactly once and the scanner must end each op at a message boundary.
    check: () => {
      if (!scanner.atBoundary()) throw new Error(`${name}: scanner not at a message boundary`);
      if (sink.bytes !== total * ops) throw new Error(`${name}: ${sink.bytes} bytes out, ${total * ops} in`);
    },
    ...extra,
  };
}

export function framerCases(): MicroCase[] {
  const big = bigResult();
  const bigBind = Buffer.concat([bind([Buffer.alloc(1 << 20, 0x61)]), execute(), SYNC]);
  return [
    streamCase('(a) pgbench -S response T+D+C+Z, one chunk, tx watch', SERVER_WATCH, SERVER_MAX_FRAME, [
      PGBENCH_RESPONSE,
    ]),
    streamCase('(b) client Query, one chunk, CLIENT_WATCH', CLIENT_WATCH, CLIENT_MAX_MESSAGE, [CLIENT_QUERY]),
    streamCase('(c) client P+B+D+E+S batch, one chunk, CLIENT_WATCH', CLIENT_WATCH, CLIENT_MAX_MESSAGE, [
      EXTENDED_BATCH,
    ]),
    streamCase(
      '(d) 1 MB of 1 kB DataRows in 64 KiB chunks, tx watch',
      SERVER_WATCH,
      SERVER_MAX_FRAME,
      slices(big, 65_536),
    ),
    // Reference for (d): the same bytes when the whole stream is one chunk (no straddling rows).
    streamCase('(d) 1 MB of 1 kB DataRows, one chunk, tx watch', SERVER_WATCH, SERVER_MAX_FRAME, [big]),
    // A watched message larger than a chunk: the collect + Buffer.concat path (client-side big Bind).
    streamCase(
      '(d) client 1 MB Bind+E+S in 64 KiB chunks, CLIENT_WATCH',
      CLIENT_WATCH,
      CLIENT_MAX_MESSAGE,
      slices(bigBind, 65_536),
    ),
    streamCase(
      '(e) pgbench -S response, every header split 2|3, tx watch',
      SERVER_WATCH,
      SERVER_MAX_FRAME,
      splitHeaders(PGBENCH_RESPONSE_PARTS),
      { units: PGBENCH_RESPONSE_PARTS.length + 1, unit: 'chunk' },
    ),
    streamCase(
      '(e) pgbench -S response in 7-byte chunks, tx watch',
      SERVER_WATCH,
      SERVER_MAX_FRAME,
      slices(PGBENCH_RESPONSE, 7),
      { units: Math.ceil(PGBENCH_RESPONSE.length / 7), unit: 'chunk' },
    ),
    streamCase(
      '(e) client P+B+D+E+S batch in 7-byte chunks, CLIENT_WATCH',
      CLIENT_WATCH,
      CLIENT_MAX_MESSAGE,
      slices(EXTENDED_BATCH, 7),
      { units: Math.ceil(EXTENDED_BATCH.length / 7), unit: 'chunk' },
    ),
  ];
}
