// WAL positions ("X/Y" text ↔ bigint) for the topology monitor; deliberately tiny and separate from routing's.

const LSN_TEXT = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;
const MAX_LSN = (1n << 64n) - 1n;
const XLOG_BLCKSZ = 8192n;
/** SizeOfXLogLongPHD: the larger of the two WAL page header sizes. */
const MAX_PAGE_HEADER = 40n;

/** "16/B374D848" → bigint; throws on anything else. */
export function parseLsn(text: string): bigint {
  const m = LSN_TEXT.exec(text);
  if (!m) throw new Error(`invalid LSN "${text}"`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

/** bigint → "16/B374D848" (upper-case hex, as Postgres prints it). */
export function formatLsn(lsn: bigint): string {
  if (lsn < 0n || lsn > MAX_LSN) throw new Error(`LSN out of range: ${lsn}`);
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

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
