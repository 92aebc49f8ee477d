// A router node that is healthy, verified and caught up: the shape unit tests and the bench's routing fixture share.
import type { RouteNode } from '../../src/routing/router.js';

export function caughtUpNode(
  name: string,
  role: 'primary' | 'replica',
  region: string,
  rttMs: number,
  replayRate: number,
): RouteNode {
  return {
    name,
    role,
    region,
    healthy: true,
    verified: true,
    replayLsn: 1000n,
    lagBytes: 0,
    lagMs: 0,
    rttMs,
    replayRate,
    busy: 0,
  };
}
