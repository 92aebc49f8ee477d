// Inputs shared by the in-process classifier measurements (routing scenario part 1, micro-benchmarks).
import type { RouterConfig } from '../../src/routing/router.js';
import { caughtUpNode } from '../../test/support/route-nodes.js';

/** A mix of what the classifier sees: pgbench's statements, a join, locking reads, writable CTEs, nextval, BEGIN. */
export const CLASSIFIER_TEXTS = [
  'SELECT abalance FROM pgbench_accounts WHERE aid = $1',
  'UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2',
  'INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP)',
  'select u.id, u.name, count(o.id) from users u left join orders o on o.user_id = u.id where u.id = $1 group by 1, 2',
  'select * from accounts where id = $1 for update',
  'with x as (insert into t(v) values (1) returning id) select * from x',
  "select nextval('s')",
  'begin read only',
];

const node = (name: string, role: 'primary' | 'replica', region: string) => caughtUpNode(name, role, region, 0.3, 1e7);

/** The bench cluster's shape: primary iad, replicas ams and syd, all caught up. */
export const ROUTE_NODES = {
  primary: node('primary', 'primary', 'iad'),
  replicas: [node('r1', 'replica', 'ams'), node('r2', 'replica', 'syd')],
};

export const ROUTE_CFG: RouterConfig = {
  region: 'ams',
  policy: 'fastest',
  maxWaitMs: 1000,
  transactions: 'read_only_to_replica',
};
