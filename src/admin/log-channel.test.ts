import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { after, before, describe, test } from 'node:test';
import { openDatagram, readHeader } from '../protocol/datagram.js';
import { EncodedLogItem } from '../protocol/log-bodies.js';
import type { LogItem } from '../protocol/log-item.js';
import type { RpcPeer } from '../rpc/peer.js';
import { UdpLogChannel } from './log-channel.js';
import { Session, SessionTable } from './session.js';

const item = (seq: number, message: string): EncodedLogItem =>
  new EncodedLogItem({ seq, time: '2026-12-07T00:00:00.000Z', kind: 'system', message } as LogItem);

describe('UdpLogChannel.sendItems', () => {
  let engine: Socket;
  let consoles: Socket[];
  let sessions: Session[];
  let channel: UdpLogChannel;
  /** Each console's decrypted datagram bodies, in arrival order. */
  const received: string[][] = [];

  before(async () => {
    engine = createSocket('udp4');
    await new Promise<void>((r) => engine.bind(0, '127.0.0.1', r));
    consoles = [];
    sessions = [];
    const table = new SessionTable();
    for (let i = 0; i < 3; i++) {
      const socket = createSocket('udp4');
      await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
      const session = new Session('alice', 'auditor', '127.0.0.1', {} as RpcPeer);
      session.udpEndpoint = { address: '127.0.0.1', port: socket.address().port };
      session.transport = 'udp';
      table.add(session);
      received.push([]);
      socket.on('message', (msg) => {
        const header = readHeader(msg);
        assert.ok(header);
        received[i]!.push(openDatagram(msg, header, session.key)!.toString());
      });
      consoles.push(socket);
      sessions.push(session);
    }
    channel = new UdpLogChannel(engine, table, {
      allowSource: () => false,
      onRegistered: () => {},
      lastSeq: () => 0,
    });
  });

  after(() => {
    for (const s of [engine, ...consoles]) s.close();
  });

  test('each console gets exactly its own items, whether or not they are the items sent just before', async () => {
    const a = item(1, 'a');
    const b = item(2, 'b');
    const c = item(3, 'c');
    // The same items in a new array (bodies packed once, reused), then other items (packed anew).
    channel.sendItems(sessions[0]!, [a, b]);
    channel.sendItems(sessions[1]!, [a, b]);
    channel.sendItems(sessions[2]!, [a, c]);
    // The same array again, changed in between: its new contents are packed.
    const changing = [c];
    channel.sendItems(sessions[0]!, changing);
    changing.push(a);
    channel.sendItems(sessions[1]!, changing);
    for (const deadline = Date.now() + 5000; received.flat().length < 5 && Date.now() < deadline; )
      await new Promise((r) => setTimeout(r, 5));
    const messages = (bodies: string[]) =>
      bodies.map((t) => (JSON.parse(t) as { items: LogItem[] }).items.map((x) => x.message).join(''));
    assert.deepEqual(received.map(messages), [['ab', 'c'], ['ab', 'ca'], ['ac']]);
    // Each console's datagrams are numbered on their own, from 1.
    assert.deepEqual(
      sessions.map((s) => s.nextSeq),
      [3, 3, 2],
    );
  });
});
