// A pooled server connection's states and the moves between them (NodePool.transition() enforces them).

export type ConnState = 'connecting' | 'idle' | 'active' | 'checking' | 'resetting' | 'closed';

export const LEGAL: Record<ConnState | 'new', readonly ConnState[]> = {
  new: ['connecting'],
  connecting: ['active', 'idle', 'closed'],
  idle: ['active', 'checking', 'closed'],
  checking: ['active', 'idle', 'closed'],
  active: ['resetting', 'idle', 'closed'],
  resetting: ['idle', 'closed'],
  closed: [],
};
