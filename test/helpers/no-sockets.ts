import dgram from 'node:dgram';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Preload (`node --test --import ./dist/test/helpers/no-sockets.js`) that keeps
 * unit tests off the network (README: `unit/` (no sockets)). In a process
 * running a file of dist/test/unit/, every socket connect, server listen and
 * UDP bind or send throws, and the error is raised again as an uncaught
 * exception, so the test fails even when the code under test catches it (a
 * client that takes a refused connection for a retriable outage). Other
 * processes (the test runner, integration files) are left alone, so one
 * `node --test` run may hold both directories. Sockets of child processes a
 * unit test spawns are not seen.
 */
const unitDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'unit') + path.sep;
const file = process.argv[1] ? path.resolve(process.argv[1]) : '';

function refuse(what: string): never {
  const err = new Error(`${what} in a unit test (${path.relative(process.cwd(), file)}): unit tests open no sockets; move the test to test/integration/ or give the code an in-process stub`);
  process.nextTick(() => {
    throw err;
  });
  throw err;
}

if (file.startsWith(unitDir)) {
  net.Socket.prototype.connect = function connect() {
    return refuse('a socket connect');
  };
  net.Server.prototype.listen = function listen() {
    return refuse('a server listen');
  };
  dgram.Socket.prototype.bind = function bind() {
    return refuse('a UDP bind');
  };
  dgram.Socket.prototype.send = function send() {
    return refuse('a UDP send');
  };
}
