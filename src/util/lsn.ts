// Postgres WAL positions (pg_lsn): parse 'X/Y' text to a bigint, format, compare, and the page-header gap.
//
// An LSN is a 64-bit byte position in the WAL. Postgres prints it as two upper-case hex numbers without leading
// zeros, 'high 32 bits/low 32 bits' (e.g. '16/B374D848'); its input accepts 1-8 hex digits of either case on each
// side and nothing else (no spaces). '0/0' is InvalidXLogRecPtr.

/** A WAL position as an unsigned 64-bit value. */
export type Lsn = bigint;

/** '0/0': InvalidXLogRecPtr, what pg_last_wal_replay_lsn() never returns on a replica that has replayed anything. */
export const INVALID_LSN: Lsn = 0n;
/** 'FFFFFFFF/FFFFFFFF'. */
export const MAX_LSN: Lsn = (1n << 64n) - 1n;

const LSN_TEXT = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;
const LOW = 0xffffffffn;

/** The LSN of a pg_lsn text ('16/B374D848'), or null when the text is not one (same rules as the pg_lsn type). */
export function parseLsn(text: string): Lsn | null {
  if (typeof text !== 'string') return null;
  const m = LSN_TEXT.exec(text);
  if (m === null) return null;
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

/** Whether a value is a bigint in the LSN range [0, 2^64-1]. */
export function isLsn(v: unknown): v is Lsn {
  return typeof v === 'bigint' && v >= 0n && v <= MAX_LSN;
}

/** Postgres's text form ('16/B374D848', upper-case hex); throws a RangeError outside [0, 2^64-1]. */
export function formatLsn(lsn: Lsn): string {
  if (!isLsn(lsn)) throw new RangeError(`not an LSN (0 .. 2^64-1): ${String(lsn)}`);
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & LOW).toString(16).toUpperCase()}`;
}

/** -1, 0 or 1 as a is before, at or after b. */
export function compareLsn(a: Lsn, b: Lsn): -1 | 0 | 1 {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The later of two positions, null meaning "none" (for tracking the newest LSN a session must observe). */
export function maxLsn(a: Lsn | null, b: Lsn | null): Lsn | null {
  if (a === null) return b;
  if (b === null) return a;
  return a >= b ? a : b;
}

/** Bytes from `from` to `to` as a number (negative when `to` is earlier), like pg_wal_lsn_diff(to, from). */
export function lsnDiff(to: Lsn, from: Lsn): number {
  return Number(to - from);
}

const XLOG_BLCKSZ = 8192n;
/** SizeOfXLogLongPHD: the larger of the two WAL page header sizes. */
const MAX_PAGE_HEADER = 40n;

/**
 * Whether a replica that replayed up to `replay` has everything before the primary's insert LSN `insert`.
 * When the last record ended on a page boundary, pg_current_wal_insert_lsn() points past the next page's
 * header while replay stops at the boundary: that gap (≤ 40 bytes, page-aligned replay) is not pending WAL.
 * No real record can end there: the next one starts after the header and is ≥ 24 bytes. Assumes 8 kB WAL pages.
 */
export function lsnCaughtUp(replay: bigint, insert: bigint): boolean {
  if (replay >= insert) return true;
  return replay % XLOG_BLCKSZ === 0n && insert - replay <= MAX_PAGE_HEADER;
}

/**
 * A target replay can actually reach for an insert position: just past a page header (page start + 24, or + 40
 * at a segment start) is where the next record will go, and replay stops at the page start when the last record
 * ended there; no record ends inside a header, so the page start is equivalent (see lsnCaughtUp).
 */
export function replayTarget(lsn: Lsn): Lsn {
  const off = lsn % XLOG_BLCKSZ;
  return off > 0n && off <= MAX_PAGE_HEADER ? lsn - off : lsn;
}
