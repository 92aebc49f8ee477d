// DEALLOCATE of a client's own prepared statement in transaction mode, answered by pgnear: servers know the
// statement only by its shared name (and other clients may be using it), so no server may see the request.
import { encodeCommandComplete, encodeReady } from '../protocol/backend.js';
import type { TxStatus } from '../protocol/codes.js';
import { NO_DATA } from '../protocol/extended.js';
import { queryStart } from '../protocol/frontend.js';
import { type DeallocateTarget, deallocateTarget } from '../routing/deallocate.js';
import type { LocalAnswer } from './local-statements.js';
import { type ResponsePlan, Slot } from './response-plan.js';
import type { ClientStatements } from './statements.js';

const DEALLOCATE = encodeCommandComplete('DEALLOCATE');
const DEALLOCATE_ALL = encodeCommandComplete('DEALLOCATE ALL');

/**
 * The DEALLOCATE pgnear answers: one of the client's protocol-level statements, or ALL unless the client is
 * pinned (then SQL-level PREPAREs live on its server and the server must drop them too). Anything else goes to
 * the server as before.
 */
export function ownDeallocate(sql: string, statements: ClientStatements, pinned: boolean): DeallocateTarget | null {
  const t = deallocateTarget(sql);
  if (t === null) return null;
  return (t.all ? !pinned : statements.has(t.name)) ? t : null;
}

/** Cheap test on a Query frame's bytes before decoding its text: can it be a DEALLOCATE (or start with a comment)? */
export function mayBeDeallocate(query: Buffer): boolean {
  const c = query[queryStart(query)];
  return c === 0x64 || c === 0x44 || c === 0x2d || c === 0x2f; // d D - /
}

/** Drop what the DEALLOCATE names from the client's statements; its CommandComplete. */
export function runDeallocate(t: DeallocateTarget, statements: ClientStatements): Buffer {
  if (t.all) statements.clear();
  else statements.delete(t.name);
  return t.all ? DEALLOCATE_ALL : DEALLOCATE;
}

/** The extended-protocol form (psycopg 3 evicting from its statement cache sends Parse/Bind/Describe/Execute). */
export function deallocateAnswer(t: DeallocateTarget, statements: ClientStatements): LocalAnswer {
  return { rowDescription: NO_DATA, run: () => runDeallocate(t, statements) };
}

/** A simple-Query DEALLOCATE of the client's own statement: answered at once, with ReadyForQuery. */
export function deallocateQuery(
  sql: string,
  status: TxStatus,
  statements: ClientStatements,
  pinned: boolean,
  plan: ResponsePlan,
): boolean {
  const t = ownDeallocate(sql, statements, pinned);
  if (t === null) return false;
  plan.push(Slot.Synthetic, 0, Buffer.concat([runDeallocate(t, statements), encodeReady(status)]));
  return true;
}
