/** A TCP port free on 127.0.0.1 right now (the OS picks it; a race with other processes is possible but rare). */
export { freePort } from '../../core/free-port.js';
