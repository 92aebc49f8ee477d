// Routing hints in SQL comments: /* pgnear:primary */, /* pgnear:replica */, /* pgnear:region=ams */, -- pgnear:….
//
// Where a hint is looked for: every comment before the first token (leading comments), and, when there is none, the
// first comment anywhere in the text (e.g. a trailing sqlcommenter-style comment). Comments inside string literals,
// quoted identifiers and dollar quotes are not comments. Several hints may share a comment or be spread over the
// leading comments ('/* pgnear:replica pgnear:region=ams */'); for each of route and region the first one wins.
// Words are case-insensitive ('PGNEAR:Primary'); a region is returned lower-case and must look like a config region
// (letters, digits, dashes). Recognised words: primary, replica, route=primary|replica, region=<name>; anything else
// after 'pgnear:' is ignored.
//
// Cost: texts without a comment opener ('/*' or '--') are rejected with two native indexOf scans, texts without
// 'pgnear:' (any case) by one regex test, neither allocating; only texts holding both are lexed, allocating only when a
// comment that is looked at holds the marker.

export interface RouteHint {
  route?: 'primary' | 'replica';
  /** Lower-case region name. */
  region?: string;
}

const isSpace = (c: number) => c === 32 || (c >= 9 && c <= 13);
const isIdentStart = (c: number) => (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c >= 128;
const isIdent = (c: number) => isIdentStart(c) || (c >= 48 && c <= 57) || c === 36;
/** Characters of a hint word: letters, digits, '_', '-', '=', '.'. */
const isWord = (c: number) => isIdent(c) || c === 45 || c === 61 || c === 46;
const REGION = /^[a-z0-9][a-z0-9-]*$/;
const MARKER = 'pgnear:';
const ANY_MARKER = /pgnear:/i; // not global: test() keeps no state

/** End of a '--' comment starting at i (index of the line break or the text's end). */
function lineEnd(sql: string, i: number): number {
  while (i < sql.length && sql.charCodeAt(i) !== 10 && sql.charCodeAt(i) !== 13) i++;
  return i;
}

/** Index just past the '*' + '/' closing a (nested) block comment opened at i; the text's length if unterminated. */
function blockEnd(sql: string, i: number): number {
  let depth = 1;
  i += 2;
  while (i < sql.length) {
    const c = sql.charCodeAt(i);
    if (c === 42 && sql.charCodeAt(i + 1) === 47) {
      i += 2;
      if (--depth === 0) return i;
    } else if (c === 47 && sql.charCodeAt(i + 1) === 42) {
      depth++;
      i += 2;
    } else i++;
  }
  return sql.length;
}

/** Case-insensitive 'pgnear:' at i (no allocation). */
function markerAt(sql: string, i: number): boolean {
  for (let j = 0; j < MARKER.length; j++) {
    const c = sql.charCodeAt(i + j);
    if ((j < 6 ? c | 0x20 : c) !== MARKER.charCodeAt(j)) return false;
  }
  return true;
}

/** Reads the hints in sql[from, to) into acc (allocated on the first marker); returns acc. */
function scanComment(sql: string, from: number, to: number, acc: RouteHint | null): RouteHint | null {
  for (let i = from; i + MARKER.length <= to; i++) {
    if ((sql.charCodeAt(i) | 0x20) !== 112 || !markerAt(sql, i)) continue;
    let end = i + MARKER.length;
    while (end < to && isWord(sql.charCodeAt(end))) end++;
    const word = sql.slice(i + MARKER.length, end).toLowerCase();
    acc ??= {};
    const eq = word.indexOf('=');
    const key = eq < 0 ? 'route' : word.slice(0, eq);
    const value = eq < 0 ? word : word.slice(eq + 1);
    if (key === 'route' && (value === 'primary' || value === 'replica')) acc.route ??= value;
    else if (key === 'region' && REGION.test(value)) acc.region ??= value;
    i = end - 1;
  }
  return acc;
}

const found = (h: RouteHint | null): RouteHint | null =>
  h !== null && (h.route !== undefined || h.region !== undefined) ? h : null;

/** Index just past a quoted run opened at i by `quote` (doubled quote escapes it; backslash too when `backslash`). */
function quotedEnd(sql: string, i: number, quote: number, backslash: boolean): number {
  i++;
  while (i < sql.length) {
    const c = sql.charCodeAt(i);
    if (backslash && c === 92) i += 2;
    else if (c === quote) {
      if (sql.charCodeAt(i + 1) !== quote) return i + 1;
      i += 2;
    } else i++;
  }
  return sql.length;
}

/** Index just past a dollar-quoted string opened at i ('$tag$…$tag$'), or -1 when '$' does not open one here. */
function dollarEnd(sql: string, i: number): number {
  let j = i + 1;
  if (j < sql.length && sql.charCodeAt(j) !== 36) {
    if (!isIdentStart(sql.charCodeAt(j))) return -1; // $1 parameter, or a lone '$'
    while (j < sql.length && isIdent(sql.charCodeAt(j)) && sql.charCodeAt(j) !== 36) j++;
    if (sql.charCodeAt(j) !== 36) return -1;
  }
  const close = sql.indexOf(sql.slice(i, j + 1), j + 1);
  return close < 0 ? sql.length : close + (j + 1 - i);
}

/** Hints of the leading comments, or else of the first comment of the text; null when there is none. */
export function parseHints(sql: string): RouteHint | null {
  if (sql.indexOf('/*') < 0 && sql.indexOf('--') < 0) return null;
  if (!ANY_MARKER.test(sql)) return null;
  const n = sql.length;
  let acc: RouteHint | null = null;
  let i = 0;
  let leading = false;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (isSpace(c)) i++;
    else if (c === 45 && sql.charCodeAt(i + 1) === 45) {
      const end = lineEnd(sql, i);
      acc = scanComment(sql, i + 2, end, acc);
      leading = true;
      i = end;
    } else if (c === 47 && sql.charCodeAt(i + 1) === 42) {
      const end = blockEnd(sql, i);
      acc = scanComment(sql, i + 2, end, acc);
      leading = true;
      i = end;
    } else break;
  }
  if (leading) return found(acc);
  // No leading comment: the first comment outside literals.
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (c === 45 && sql.charCodeAt(i + 1) === 45) return found(scanComment(sql, i + 2, lineEnd(sql, i), null));
    if (c === 47 && sql.charCodeAt(i + 1) === 42) return found(scanComment(sql, i + 2, blockEnd(sql, i), null));
    if (c === 39) {
      // E'…' strings take backslash escapes; 'e' must start a token (not end an identifier such as "name").
      const p = sql.charCodeAt(i - 1);
      i = quotedEnd(sql, i, 39, (p | 0x20) === 101 && !isIdent(sql.charCodeAt(i - 2)));
    } else if (c === 34) i = quotedEnd(sql, i, 34, false);
    else if (c === 36 && !isIdent(sql.charCodeAt(i - 1))) {
      const end = dollarEnd(sql, i);
      i = end < 0 ? i + 1 : end;
    } else if (isIdent(c)) {
      while (i < n && isIdent(sql.charCodeAt(i))) i++; // so '$' inside an identifier (a$b) is not a quote
    } else i++;
  }
  return null;
}
