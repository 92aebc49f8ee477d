// A client socket's listeners: one set of functions for every client, finding the session on the socket itself.
import type net from 'node:net';

/** What a client socket's events reach. */
export interface SocketOwner {
  onData(chunk: Buffer): void;
  onSocketError(e: Error): void;
  onSocketDrain(): void;
  socketClosed(): void;
}

/**
 * The session is kept on its socket so that the listeners are shared functions: per-client closures (and their
 * contexts) for data, error, drain and close would cost memory per idle client.
 */
const OWNER = Symbol('pgnear.session');
type OwnedSocket = net.Socket & { [OWNER]?: SocketOwner };

function onData(this: OwnedSocket, chunk: Buffer): void {
  this[OWNER]?.onData(chunk);
}
function onError(this: OwnedSocket, e: Error): void {
  this[OWNER]?.onSocketError(e);
}
function onDrain(this: OwnedSocket): void {
  this[OWNER]?.onSocketDrain();
}
function onClose(this: OwnedSocket): void {
  this[OWNER]?.socketClosed();
}

export function bindSession(socket: net.Socket, owner: SocketOwner): void {
  (socket as OwnedSocket)[OWNER] = owner;
  socket.on('data', onData);
  socket.on('error', onError);
  socket.on('drain', onDrain);
  socket.on('close', onClose);
}

/**
 * TLS took over the raw socket: data and drain now come from the TLS socket (the raw socket's close and error
 * still reach the owner); the TLS socket's own errors are handled by the caller.
 */
export function moveData(raw: net.Socket, tlsSocket: net.Socket, owner: SocketOwner): void {
  raw.off('data', onData);
  raw.off('drain', onDrain);
  (tlsSocket as OwnedSocket)[OWNER] = owner;
  tlsSocket.on('data', onData);
  tlsSocket.on('drain', onDrain);
}
