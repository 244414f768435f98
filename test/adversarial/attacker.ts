/**
 * The attack program the adversarial tests run as another uid (runAsNobody): plain node: modules
 * only, so it runs from a directory any user can read. Its argument (JSON) names the attacks:
 * connect-then-RST floods (SO_LINGER 0, what `nmap -sT` leaves), connections that send random bytes
 * and then end, reset or just go away, TLS connections that send a partial frame, and random UDP
 * datagrams. It prints one JSON line of what it did.
 */
export const ATTACKER = `
import net from 'node:net';
import tls from 'node:tls';
import dgram from 'node:dgram';
import { randomBytes, randomInt } from 'node:crypto';

const a = JSON.parse(process.argv[2]);
const done = { connections: 0, resets: 0, bytes: 0, datagrams: 0, errors: 0 };

function once(socket, event) {
  return new Promise((resolve) => {
    socket.once(event, () => resolve(true));
    socket.once('error', () => { done.errors++; resolve(false); });
    socket.once('close', () => resolve(false));
  });
}

/** Connects, optionally writes bytes, then ends one of three ways. */
async function hit(port, bytes, ending) {
  const s = net.connect(port, '127.0.0.1');
  s.on('error', () => {});
  if (!(await once(s, 'connect'))) return;
  done.connections++;
  if (bytes > 0) { s.write(randomBytes(bytes)); done.bytes += bytes; }
  if (ending === 'reset') { s.resetAndDestroy(); done.resets++; }
  else if (ending === 'end') s.end();
  else if (ending === 'half') { s.end(); setTimeout(() => s.destroy(), 300).unref(); }
  else setTimeout(() => s.destroy(), 200).unref();
}

async function flood(ports, count, parallel, pick) {
  for (const port of ports) {
    for (let i = 0; i < count; i += parallel) {
      const batch = [];
      for (let j = i; j < Math.min(count, i + parallel); j++) batch.push(hit(port, ...pick(j)));
      await Promise.all(batch);
    }
  }
}

const endings = ['reset', 'end', 'half', 'leave'];
if (a.resets) await flood(a.resets.ports, a.resets.count, 50, (j) => [j % 3 === 0 ? 64 : 0, 'reset']);
if (a.fuzz) await flood(a.fuzz.ports, a.fuzz.count, 25, () => [randomInt(0, 4096), endings[randomInt(4)]]);
if (a.partialFrames) {
  const held = [];
  for (let i = 0; i < a.partialFrames.count; i++) {
    const s = tls.connect({ port: a.partialFrames.port, host: '127.0.0.1', rejectUnauthorized: false });
    s.on('error', () => {});
    if (!(await once(s, 'secureConnect'))) continue;
    const head = Buffer.alloc(4);
    head.writeUInt32BE(randomInt(1, 1 << 20));
    s.write(Buffer.concat([head, randomBytes(randomInt(0, 100))]));
    held.push(s);
  }
  await new Promise((r) => setTimeout(r, 300));
  for (const s of held) { try { s.resetAndDestroy(); } catch { s.destroy(); } }
  done.connections += held.length;
}
if (a.udp) {
  const u = dgram.createSocket('udp4');
  u.on('error', () => {});
  for (let i = 0; i < a.udp.count; i++) {
    const d = randomBytes(randomInt(0, 1500));
    if (i % 3 === 0 && d.length > 18) { d[0] = 1; d[1] = 1 + randomInt(3); }
    await new Promise((r) => u.send(d, a.udp.port, '127.0.0.1', r));
    done.datagrams++;
  }
  u.close();
}
console.log(JSON.stringify(done));
`;
