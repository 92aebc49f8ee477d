// Lexical fast path of sql-analysis: proves "no session effect" without parsing or allocating.
//
// Accepts a single statement (';' only in the trailing run of whitespace/semicolons) whose first keyword, after
// whitespace and comments, is one that cannot change session state by itself, and whose text has none of the RISKY
// words. Anything else (including ';' inside literals, or a trailing comment after ';') falls back to the parser.

/** Statement keywords that by themselves never change session state (given the RISKY test below). */
const FAST_KEYWORDS: string[][] = [];
// prettier-ignore
for (const k of ['select', 'insert', 'update', 'delete', 'with', 'values', 'table', 'merge', 'copy', 'fetch', 'move',
  'close', 'explain', 'show', 'begin', 'start', 'commit', 'end', 'rollback', 'abort', 'savepoint', 'release',
  'truncate', 'call', 'lock', 'analyze', 'vacuum']) (FAST_KEYWORDS[k.length] ??= []).push(k);

/**
 * Words without which none of those statements can have a session effect: set_config, session advisory locks,
 * temporary objects (TEMP/TEMPORARY keyword or the pg_temp schema, also under EXPLAIN ANALYZE CREATE … AS), and U&""
 * identifiers, which could spell any of these in escapes. Over-matching (a column named "temp") only costs a parse.
 */
const RISKY = /set_config|advisory_|\btemp|pg_temp|u&/i;

export const isSpace = (c: number) => c === 32 || (c >= 9 && c <= 13);
export const isIdent = (c: number) =>
  (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 95 || c === 36 || c >= 128;

/** Index of the first token after whitespace and comments (nested block comments); -1 if a comment is unterminated. */
export function skipTrivia(sql: string, i: number): number {
  const n = sql.length;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (isSpace(c)) i++;
    else if (c === 45 && sql.charCodeAt(i + 1) === 45) {
      while (i < n && sql.charCodeAt(i) !== 10 && sql.charCodeAt(i) !== 13) i++;
    } else if (c === 47 && sql.charCodeAt(i + 1) === 42) {
      let depth = 1;
      i += 2;
      while (depth > 0) {
        if (i >= n) return -1;
        const d = sql.charCodeAt(i);
        const pair = d === 42 && sql.charCodeAt(i + 1) === 47 ? -1 : d === 47 && sql.charCodeAt(i + 1) === 42 ? 1 : 0;
        depth += pair;
        i += pair === 0 ? 1 : 2;
      }
    } else return i;
  }
  return i;
}

function fastKeywordAt(sql: string, start: number): boolean {
  let end = start;
  while (end < sql.length && isIdent(sql.charCodeAt(end))) end++;
  const candidates = FAST_KEYWORDS[end - start];
  if (candidates === undefined) return false;
  outer: for (const k of candidates) {
    for (let j = 0; j < k.length; j++) if ((sql.charCodeAt(start + j) | 0x20) !== k.charCodeAt(j)) continue outer;
    return true;
  }
  return false;
}

/** True when the only ';' characters are in the trailing run of whitespace and semicolons. */
function singleStatement(sql: string): boolean {
  const semi = sql.indexOf(';');
  if (semi < 0) return true;
  for (let i = semi + 1; i < sql.length; i++) {
    const c = sql.charCodeAt(i);
    if (c !== 59 && !isSpace(c)) return false;
  }
  return true;
}

/** True when the text provably has no session effect (see the file comment); false means "parse it". */
export function provablyNoSessionEffects(sql: string): boolean {
  const start = skipTrivia(sql, 0);
  if (start < 0 || start >= sql.length) return false;
  return fastKeywordAt(sql, start) && singleStatement(sql) && !RISKY.test(sql);
}

/** Words that can make a plain SELECT more than a read: row locks (FOR UPDATE/SHARE …) and SELECT INTO. */
const NOT_PLAIN = /\b(?:for|into)\b/i;

/**
 * True when the text is provably a plain read without parsing: one SELECT with no parenthesis at all (so no
 * function call, subquery or writable CTE) and no FOR/INTO. Simple-protocol apps send literals inline, so their
 * texts rarely repeat and would miss the parse cache; the common point lookup takes this path instead.
 */
export function provablyPlainRead(sql: string): boolean {
  const start = skipTrivia(sql, 0);
  if (start < 0 || sql.length - start < 7) return false;
  for (let j = 0; j < 6; j++) if ((sql.charCodeAt(start + j) | 0x20) !== 'select'.charCodeAt(j)) return false;
  if (isIdent(sql.charCodeAt(start + 6))) return false;
  return sql.indexOf('(') < 0 && singleStatement(sql) && !NOT_PLAIN.test(sql) && !RISKY.test(sql);
}
