// Lexer for `DEALLOCATE [PREPARE] { name | ALL }`: which prepared statement a client's SQL drops, without parsing.
import { isIdent, isSpace, skipTrivia } from './sql-fast-path.js';

/** What a DEALLOCATE drops: one statement by its (case-folded) name, or all of them. */
export type DeallocateTarget = { readonly all: true } | { readonly all: false; readonly name: string };

const ALL: DeallocateTarget = { all: true };

const isIdentStart = (c: number) => isIdent(c) && !(c >= 48 && c <= 57) && c !== 36; // not a digit or $

/** Postgres folds unquoted identifiers to lower case in ASCII only. */
function foldAscii(s: string): string {
  return s.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}

/** [end, text, quoted] of the identifier at i ("…" with "" escapes, or bare and case-folded); null if none. */
function identAt(sql: string, i: number): [number, string, boolean] | null {
  if (sql.charCodeAt(i) === 34) {
    let out = '';
    let j = i + 1;
    for (;;) {
      const q = sql.indexOf('"', j);
      if (q < 0) return null;
      out += sql.slice(j, q);
      if (sql.charCodeAt(q + 1) !== 34) return out === '' ? null : [q + 1, out, true];
      out += '"';
      j = q + 2;
    }
  }
  if (!isIdentStart(sql.charCodeAt(i))) return null;
  let j = i + 1;
  while (j < sql.length && isIdent(sql.charCodeAt(j))) j++;
  return [j, foldAscii(sql.slice(i, j)), false];
}

/**
 * The target of a lone DEALLOCATE statement (comments, whitespace and trailing semicolons allowed); null for
 * anything else, including several statements. `DEALLOCATE prepare` names a statement called "prepare", as in
 * Postgres' grammar; a quoted "all" is a name, not ALL.
 */
export function deallocateTarget(sql: string): DeallocateTarget | null {
  let i = skipTrivia(sql, 0);
  if (i < 0 || (sql.charCodeAt(i) | 0x20) !== 100) return null; // 'd': most SQL leaves here
  let word = identAt(sql, i);
  if (!word || word[2] || word[1] !== 'deallocate') return null;
  i = skipTrivia(sql, word[0]);
  if (i < 0) return null;
  word = identAt(sql, i);
  if (!word) return null;
  if (!word[2] && word[1] === 'prepare') {
    const next = skipTrivia(sql, word[0]);
    if (next < 0) return null;
    const after = identAt(sql, next);
    if (after) {
      i = next;
      word = after;
    }
  }
  const end = skipTrivia(sql, word[0]);
  if (end < 0) return null;
  for (let k = end; k < sql.length; k++) if (sql.charCodeAt(k) !== 59 && !isSpace(sql.charCodeAt(k))) return null;
  return !word[2] && word[1] === 'all' ? ALL : { all: false, name: word[1] };
}
