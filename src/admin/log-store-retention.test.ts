import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { type LogItem, type LogQueryParsed, logQuerySchema, type NewLogItem } from '../protocol/log-item.js';
import { EPOCH_ITEMS } from './log-schema.js';
import { SqliteLogStore } from './sqlite-log-store.js';

let root: string;
let n = 0;
const fresh = () => join(root, `case-${++n}.db`);
const q = (query: Record<string, unknown>): LogQueryParsed => logQuerySchema.parse(query);
const T0 = Date.parse('2026-01-01T00:00:00Z');

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'warden-logretain-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Every item of a query, paging on through `searchedTo` as the console does. */
function all(store: SqliteLogStore, query: Record<string, unknown>): LogItem[] {
  const out: LogItem[] = [];
  let from = (query.fromSeq as number | undefined) ?? 1;
  for (;;) {
    const r = store.query(q({ ...query, fromSeq: from, limit: 1000 }));
    out.push(...r.items);
    if (r.searchedTo !== undefined) from = r.searchedTo + 1;
    else if (r.items.length === 1000) from = r.items.at(-1)!.seq + 1;
    else return out;
  }
}

/** Item i of round r: hosts, applications and rules of its own round (strings no later round uses). */
function roundItem(r: number, i: number): NewLogItem {
  return {
    kind: 'connection',
    verdict: 'allow',
    direction: 'outgoing',
    protocol: 'tcp',
    application: `/opt/round${r}/app${i % 40}`,
    local: `10.0.${r}.1:${40000 + (i % 1000)}`,
    remote: `198.51.${r}.${i % 200}:443`,
    host: `h${i % 3000}.round${r}.example`,
    rule: `rule-r${r}-${i % 30}`,
    message: `Outgoing TCP connection ${i}`,
  };
}

const dbFacts = (path: string) => {
  const db = new Database(path, { readonly: true });
  try {
    return {
      entries: db.prepare('SELECT count(*) FROM dict').pluck().get() as number,
      hosts: db.prepare("SELECT count(*) FROM dict WHERE value LIKE 'h%.round%'").pluck().get() as number,
      pages: db.pragma('page_count', { simple: true }) as number,
    };
  } finally {
    db.close();
  }
};

describe('log store retention and the dictionary', () => {
  test('retention deletes the dictionary entries no row uses; the file stops growing; queries stay exact', async () => {
    const path = fresh();
    const perRound = EPOCH_ITEMS + 4000;
    const store = SqliteLogStore.open(path, {
      retention: { maxItems: perRound },
      retentionIntervalMs: 0,
      now: () => T0,
    });
    const facts: ReturnType<typeof dbFacts>[] = [];
    const rounds = 5;
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < perRound; i++) store.append(roundItem(r, i));
      store.flush();
      await store.applyRetention();
      facts.push(dbFacts(path));
    }
    // Each round's strings are its own: 3,000 hosts a round. Without pruning the table holds them all.
    const hostsKept = facts.map((f) => f.hosts);
    assert.ok(
      hostsKept.every((h) => h <= 2 * 3000),
      `dictionary hosts after each round: ${hostsKept}`,
    );
    // The rows of the last two rounds at most are kept: the pages freed are reused.
    const pages = facts.map((f) => f.pages);
    assert.ok(pages[rounds - 1]! <= pages[2]! * 1.1, `pages after each round: ${pages}`);

    // The kept items read back whole; an expired round's strings match nothing.
    const last = rounds - 1;
    const kept = store.query(q({ limit: 1 })).items[0]!;
    assert.equal(kept.seq, rounds * perRound - perRound + 1);
    const hostItems = all(store, { text: `h7.round${last}.example` });
    assert.equal(hostItems.length, Math.floor((perRound - 1 - 7) / 3000) + 1);
    assert.deepEqual(hostItems[0], {
      ...roundItem(last, 7),
      seq: last * perRound + 8,
      time: new Date(T0).toISOString(),
    });
    assert.equal(all(store, { text: 'round0' }).length, 0);
    assert.equal(all(store, { application: `/opt/round0/app1` }).length, 0);
    const byLocal = all(store, { address: `10.0.${last}.1` });
    assert.equal(byLocal.length, perRound);
    assert.equal(
      all(store, { address: `198.51.${last}.9` }).length,
      Math.floor((perRound - 1 - 9) / 200) + 1,
    );

    // A string of an expired round comes back as a new entry (its id may be one retention freed).
    const again = store.append(roundItem(0, 7));
    assert.deepEqual(
      all(store, { text: 'h7.round0.example' }).map((i) => i.seq),
      [again.seq],
    );
    await store.close();
    // And after a restart (the dictionary read back from the table with its holes).
    const reopened = SqliteLogStore.open(path, { retentionIntervalMs: 0 });
    assert.deepEqual(reopened.query(q({ fromSeq: again.seq })).items[0], again);
    assert.equal(all(reopened, { text: `h7.round${last}.example` }).length, hostItems.length);
    await reopened.close();
  });

  test('queries by address, host and application across epochs find exactly the matching items', async () => {
    const store = SqliteLogStore.open(fresh(), { now: () => T0 });
    const count = 2 * EPOCH_ITEMS + 3000;
    const items: NewLogItem[] = [];
    for (let i = 0; i < count; i++) {
      // A rare local address and a rare host, around the epoch boundaries too.
      const rare = i % 9973 === 0 || (i >= EPOCH_ITEMS - 3 && i <= EPOCH_ITEMS + 3);
      const item: NewLogItem = {
        kind: 'connection',
        verdict: 'allow',
        application: rare ? '/usr/bin/rare' : `/usr/bin/a${i % 3}`,
        local: rare ? '10.9.9.9:5000' : `10.0.0.1:${i % 500}`,
        remote: `203.0.113.${i % 7}:${i % 3 === 0 ? 53 : 443}`,
        host: rare ? 'rare.example' : `common${i % 11}.example`,
        message: 'Outgoing',
      };
      items.push(item);
      store.append(item);
    }
    const want = (p: (i: NewLogItem) => boolean) => items.flatMap((item, k) => (p(item) ? [k + 1] : []));
    const seqs = (query: Record<string, unknown>) => all(store, query).map((i) => i.seq);
    assert.deepEqual(
      seqs({ address: '10.9.9.9' }),
      want((i) => i.local === '10.9.9.9:5000'),
    );
    assert.deepEqual(
      seqs({ text: 'rare.example' }),
      want((i) => i.host === 'rare.example'),
    );
    assert.deepEqual(
      seqs({ address: '203.0.113.5' }),
      want((i) => i.remote!.startsWith('203.0.113.5:')),
    );
    assert.deepEqual(
      seqs({ address: '203.0.113.5', fromSeq: EPOCH_ITEMS - 10 }),
      want((i) => i.remote!.startsWith('203.0.113.5:')).filter((s) => s >= EPOCH_ITEMS - 10),
    );
    // By the blocks log_app lists: a rare application, a common one from a seq inside a block, both
    // with a text, and a text whose words only applications hold.
    const rareApp = want((i) => i.application === '/usr/bin/rare');
    assert.deepEqual(seqs({ application: '/usr/bin/rare' }), rareApp);
    assert.deepEqual(seqs({ text: 'bin/rare' }), rareApp);
    assert.deepEqual(seqs({ application: '/usr/bin/rare', text: 'rare.example' }), rareApp);
    assert.deepEqual(
      seqs({ application: '/usr/bin/a1', fromSeq: EPOCH_ITEMS + 500 }),
      want((i) => i.application === '/usr/bin/a1').filter((s) => s >= EPOCH_ITEMS + 500),
    );
    assert.deepEqual(
      seqs({ application: '/usr/bin/a2', address: '203.0.113.5' }),
      want((i) => i.application === '/usr/bin/a2' && i.remote!.startsWith('203.0.113.5:')),
    );
    await store.close();
  });

  test('a version 4 file (an index of the application over every row) is migrated when opened', async () => {
    const path = fresh();
    let store = SqliteLogStore.open(path, { now: () => T0 });
    for (let i = 0; i < 3000; i++) store.append(roundItem(1, i));
    const before = all(store, {});
    const ofApp = all(store, { application: '/opt/round1/app7' });
    await store.close();
    const db = new Database(path);
    db.exec(
      `DROP TABLE log_app; CREATE INDEX log_application ON log (application); PRAGMA user_version = 4;`,
    );
    db.close();
    store = SqliteLogStore.open(path, { now: () => T0 });
    assert.deepEqual(all(store, {}), before);
    assert.equal(ofApp.length, 75);
    assert.deepEqual(all(store, { application: '/opt/round1/app7' }), ofApp);
    assert.deepEqual(all(store, { text: 'round1/app39' }).length, 75);
    await store.close();
    const check = new Database(path, { readonly: true });
    assert.equal(check.pragma('user_version', { simple: true }), 5);
    assert.equal(check.prepare('SELECT count(*) FROM log_app').pluck().get(), 120);
    const indexes = check.prepare("SELECT name FROM sqlite_schema WHERE type = 'index'").pluck().all();
    assert.ok(!indexes.includes('log_application'), String(indexes));
    check.close();
  });

  test('a version 3 file (indexes over the whole store, no epochs) is migrated when opened', async () => {
    const path = fresh();
    let store = SqliteLogStore.open(path, { now: () => T0 });
    for (let i = 0; i < 3000; i++) store.append(roundItem(1, i));
    const before = all(store, {});
    await store.close();
    // Back to the layout of version 3.
    const db = new Database(path);
    db.exec(`DROP INDEX log_host; DROP INDEX log_remote_addr; DROP TABLE log_local; DROP TABLE log_app;
      CREATE INDEX log_application ON log (application); CREATE INDEX log_host ON log (host); CREATE INDEX log_local_addr ON log (local_addr);
      CREATE INDEX log_remote_addr ON log (remote_addr); ALTER TABLE dict DROP COLUMN last;
      PRAGMA user_version = 3;`);
    db.close();
    store = SqliteLogStore.open(path, { now: () => T0 });
    assert.deepEqual(all(store, {}), before);
    assert.equal(all(store, { address: '10.0.1.1' }).length, 3000);
    assert.equal(all(store, { text: 'h42.round1' }).length, 1);
    assert.equal(store.append(roundItem(1, 0)).seq, 3001);
    await store.close();
    const check = new Database(path, { readonly: true });
    assert.equal(check.pragma('user_version', { simple: true }), 5);
    assert.equal(check.prepare('SELECT count(*) FROM log_local').pluck().get(), 3);
    // 40 applications, each in the three blocks of 1024 seqs the 3,000 items span.
    assert.equal(check.prepare('SELECT count(*) FROM log_app').pluck().get(), 120);
    assert.equal(check.prepare('SELECT count(*) FROM dict WHERE last <> 0').pluck().get(), 0);
    check.close();
  });
});
