/**
 * The attacks and the measured program of `npm run soak`, one mode per process, run inside the
 * soak's client namespace (as user nobody for the attacks). Self-contained: it imports only node:
 * modules, so it is copied to a world-readable directory and runs as another uid wherever the
 * checkout lives. Every mode runs for the given seconds, then prints one JSON line of counts.
 *
 *   node soak-attacks.js MODE SECONDS [ARGS...]
 *   tcp-flood HOST PORT        bursts of non-blocking connects to a port the policy denies: counts connects that got through
 *   udp-flood HOST PORT        datagrams to a denied UDP echo server: counts replies that came back
 *   listener-garbage PORT...   random bytes, resets (SO_LINGER 0), half-open and idle connections to local TCP ports
 *   udp-garbage PORT           random datagrams to the engine's UDP port
 *   allowed HOST PORT          one connect every 20 ms to an allowed port: connect latencies
 */
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';

const [mode = '', secondsText = '10', ...args] = process.argv.slice(2);
const end = Date.now() + Number(secondsText) * 1000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const say = (value: object) => process.stdout.write(`${JSON.stringify(value)}\n`);

/** Opens `count` connections at once; resolves with how many connected within `timeoutMs`. */
function burst(host: string, port: number, count: number, timeoutMs: number): Promise<number> {
  return new Promise((resolve) => {
    let connected = 0;
    let settled = 0;
    const sockets: Socket[] = [];
    const done = () => {
      if (++settled === count) resolve(connected);
    };
    for (let i = 0; i < count; i++) {
      const s = connect({ host, port });
      sockets.push(s);
      let over = false;
      const finish = () => {
        if (over) return;
        over = true;
        s.destroy();
        done();
      };
      s.setTimeout(timeoutMs, finish);
      s.once('connect', () => {
        connected++;
        finish();
      });
      s.once('error', finish);
    }
  });
}

async function tcpFlood(host: string, port: number): Promise<void> {
  let tried = 0;
  let through = 0;
  while (Date.now() < end) {
    const n = 500;
    tried += n;
    through += await burst(host, port, n, 1500);
  }
  say({ mode, tried, through });
}

async function udpFlood(host: string, port: number): Promise<void> {
  const socket = createSocket('udp4');
  let sent = 0;
  let replies = 0;
  socket.on('message', () => replies++);
  socket.on('error', () => {});
  while (Date.now() < end) {
    for (let i = 0; i < 200; i++) {
      sent++;
      socket.send(randomBytes(32), port, host, () => {});
    }
    await sleep(20);
  }
  await sleep(500);
  socket.close();
  say({ mode, tried: sent, through: replies });
}

/** One abuse of a local TCP listener: garbage, a reset, a half-open or an idle connection. */
function abuse(port: number, kind: number): Promise<void> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    // A referenced timer: the wave ends even if a socket never reports 'close' (seen as nobody
    // under the flood limits: node exited 13, with the wave's promise unsettled and no handle left).
    const deadline = setTimeout(() => {
      s.destroy();
      resolve();
    }, 3000);
    s.on('error', () => {});
    s.once('close', () => {
      clearTimeout(deadline);
      resolve();
    });
    s.setTimeout(2000, () => s.destroy());
    s.once('connect', () => {
      if (kind === 0) s.write(randomBytes(1 + Math.floor(Math.random() * 4096)));
      if (kind === 1) s.resetAndDestroy();
      if (kind === 2) s.end(randomBytes(64));
      if (kind === 3) s.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01])); // a ClientHello cut short
      // kind 4: connect and say nothing until the timeout
    });
  });
}

async function listenerGarbage(ports: number[]): Promise<void> {
  let tried = 0;
  while (Date.now() < end) {
    const wave: Promise<void>[] = [];
    for (const port of ports)
      for (let kind = 0; kind < 5; kind++)
        for (let i = 0; i < 4; i++) {
          tried++;
          wave.push(abuse(port, kind));
        }
    await Promise.all(wave);
  }
  say({ mode, tried });
}

async function udpGarbage(port: number): Promise<void> {
  const socket = createSocket('udp4');
  socket.on('error', () => {});
  let tried = 0;
  while (Date.now() < end) {
    for (let i = 0; i < 50; i++) {
      tried++;
      socket.send(randomBytes(1 + Math.floor(Math.random() * 1400)), port, '127.0.0.1', () => {});
    }
    await sleep(20);
  }
  socket.close();
  say({ mode, tried });
}

async function allowed(host: string, port: number): Promise<void> {
  const latencies: number[] = [];
  let failed = 0;
  while (Date.now() < end) {
    const started = process.hrtime.bigint();
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host, port });
      s.setTimeout(5000, () => {
        s.destroy();
        resolve(false);
      });
      s.once('connect', () => {
        s.resetAndDestroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
    else failed++;
    await sleep(20);
  }
  say({ mode, latencies, failed });
}

switch (mode) {
  case 'tcp-flood':
    await tcpFlood(args[0]!, Number(args[1]));
    break;
  case 'udp-flood':
    await udpFlood(args[0]!, Number(args[1]));
    break;
  case 'listener-garbage':
    await listenerGarbage(args.map(Number));
    break;
  case 'udp-garbage':
    await udpGarbage(Number(args[0]));
    break;
  case 'allowed':
    await allowed(args[0]!, Number(args[1]));
    break;
  default:
    console.error(`soak-attacks: unknown mode "${mode}"`);
    process.exit(2);
}
process.exit(0);
