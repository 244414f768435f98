import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { ErrorCode, WardenError } from '../errors.js';
import { type LogQueryParsed, logQuerySchema, type NewLogItem } from '../protocol/log-item.js';
import { MemoryLogStore } from './log-store.js';
import { SqliteLogStore } from './sqlite-log-store.js';

let root: string;
let n = 0;
const fresh = () => join(root, `case-${++n}.db`);
const q = (query: Record<string, unknown>): LogQueryParsed => logQuerySchema.parse(query);
const T0 = Date.parse('2026-01-01T00:00:00Z');

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'warden-logstore-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

function item(i: number, extra: Partial<NewLogItem> = {}): NewLogItem {
  return {
    kind: 'connection',
    verdict: i % 2 === 0 ? 'deny' : 'allow',
    application: `/usr/bin/app${i % 3}`,
    local: `10.0.0.1:${1000 + i}`,
    remote: i % 2 === 0 ? '[fd00::2]:443' : '93.184.216.34:80',
    message: `Outgoing TCP #${i}`,
    ...extra,
  };
}

describe('SqliteLogStore', () => {
  test('append numbers from 1 and notifies at once; query filters, oldest first', async () => {
    const store = SqliteLogStore.open(fresh(), { now: () => T0 });
    const seen: number[] = [];
    store.subscribe((i) => seen.push(i.seq));
    const first = store.append(item(1));
    assert.equal(first.seq, 1);
    assert.equal(first.time, '2026-01-01T00:00:00.000Z');
    for (let i = 2; i <= 10; i++) store.append(item(i));
    assert.deepEqual(seen, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.equal(store.lastSeq, 10);
    const denied = store.query(q({ verdict: 'deny', address: 'fd00::2', limit: 2 }));
    assert.deepEqual(
      denied.items.map((i) => i.seq),
      [2, 4],
    );
    assert.equal(denied.lastSeq, 10);
    assert.deepEqual(
      store.query(q({ text: 'tcp #1', fromSeq: 2 })).items.map((i) => i.seq),
      [10],
    );
    await store.close();
  });

  test('numbering continues after a restart, also when retention emptied the table', async () => {
    const path = fresh();
    let store = SqliteLogStore.open(path);
    for (let i = 1; i <= 5; i++) store.append(item(i));
    await store.close();
    store = SqliteLogStore.open(path, { retention: { maxAgeDays: 1 }, now: () => T0 + 400 * 86_400_000 });
    assert.equal(store.lastSeq, 5);
    await store.applyRetention();
    assert.equal(store.query(q({})).items.length, 0);
    await store.close();
    store = SqliteLogStore.open(path);
    assert.equal(store.append(item(6)).seq, 6);
    assert.deepEqual(store.query(q({})).items[0]?.message, 'Outgoing TCP #6');
    await store.close();
  });

  test('retention by age and by item count deletes the oldest, in batches', async () => {
    const path = fresh();
    let clock = T0;
    const store = SqliteLogStore.open(path, {
      retention: { maxAgeDays: 10, maxItems: 12_000 },
      now: () => clock,
      retentionIntervalMs: 0,
    });
    for (let i = 0; i < 15_000; i++) store.append(item(i, { time: new Date(T0 + i * 1000).toISOString() }));
    clock = T0 + 10 * 86_400_000 + 500_000; // items older than item #500 are over 10 days old
    const deleted = await store.applyRetention();
    assert.equal(deleted, 3000);
    const left = store.query(q({ limit: 1 })).items[0];
    assert.equal(left?.seq, 3001);
    await store.close();
  });

  test('retention by size keeps the used pages near maxBytes', async () => {
    const store = SqliteLogStore.open(fresh(), { retention: { maxBytes: 200_000 }, retentionIntervalMs: 0 });
    for (let i = 0; i < 20_000; i++) store.append(item(i));
    store.flush();
    const deleted = await store.applyRetention();
    assert.ok(deleted > 15_000, `deleted ${deleted}`);
    assert.equal(store.query(q({ fromSeq: 19_990 })).items.at(-1)?.seq, 20_000);
    await store.close();
  });

  test('exportJsonLines streams the matching items as JSON lines', async () => {
    const store = SqliteLogStore.open(fresh());
    for (let i = 1; i <= 2500; i++) store.append(item(i));
    const out = new PassThrough();
    let text = '';
    out.on('data', (c: Buffer) => {
      text += c.toString();
    });
    const count = await store.exportJsonLines({ verdict: 'deny' }, out);
    assert.equal(count, 1250);
    const lines = text.trimEnd().split('\n');
    assert.equal(lines.length, 1250);
    assert.equal(JSON.parse(lines[0]!).seq, 2);
    assert.equal(JSON.parse(lines.at(-1)!).seq, 2500);
    await store.close();
  });

  test('a text search stops at its work budget and says how far it got; paging on finds the rest', async () => {
    const store = SqliteLogStore.open(fresh(), { textScanBudget: 100 });
    for (let i = 1; i <= 1000; i++)
      store.append(item(i, i > 900 && i % 10 === 0 ? { message: 'needle Σ here' } : {}));
    // A sigma lower-cases by its context: such a needle is not narrowed through the dictionary, a scan.
    const first = store.query(q({ text: 'Σ', limit: 50 }));
    assert.deepEqual(first.items, []);
    assert.equal(first.searchedTo, 100, 'stopped after 100 items, none of them a match');
    const found: number[] = [];
    let from = 1;
    for (let calls = 0; calls < 20; calls++) {
      const r = store.query(q({ text: 'Σ', limit: 50, fromSeq: from }));
      found.push(...r.items.map((i) => i.seq));
      if (r.searchedTo === undefined) break;
      from = r.searchedTo + 1;
    }
    assert.deepEqual(found, [910, 920, 930, 940, 950, 960, 970, 980, 990, 1000]);
    // Words the dictionary narrows read only the rows that can match: within the budget.
    for (const text of ['ne', '#95'])
      assert.equal(store.query(q({ text, limit: 50 })).searchedTo, undefined, text);
    assert.deepEqual(
      store.query(q({ text: '#95', limit: 50 })).items.map((i) => i.seq),
      [95, 951, 952, 953, 954, 955, 956, 957, 958, 959],
    );
    // A search that fills its limit within the budget says nothing more.
    assert.equal(store.query(q({ text: 'outgoing', limit: 10 })).searchedTo, undefined);
    // exportJsonLines pages on by itself.
    const out = new PassThrough();
    let text = '';
    out.on('data', (c: Buffer) => {
      text += c.toString();
    });
    assert.equal(await store.exportJsonLines({ text: 'needle' }, out), 10);
    assert.equal(text.trimEnd().split('\n').length, 10);
    await store.close();
  });

  test('a text search through the dictionary finds what a scan finds, across fields and words', async () => {
    // Whole answers compared: no time budget here (the next test has it).
    const store = SqliteLogStore.open(fresh(), { now: () => T0, queryTimeBudgetMs: 60_000 });
    const memory = new MemoryLogStore({ now: () => T0 });
    for (let i = 1; i <= 12_000; i++) {
      const it = item(i, { host: i % 1000 === 7 ? 'Rare.Example' : 'x', rule: `r${i % 13}` });
      store.append(it);
      memory.append(it);
    }
    const before = store.query(q({ text: 'rare.EXAMPLE' })).items.map((i) => i.seq);
    assert.equal(before.length, 12);
    for (const text of [
      'rare.EXAMPLE',
      'tcp #7',
      '#12 /usr',
      'app1 x r1',
      '216.34:8',
      'fd00::2]',
      '1 r',
      'x r12 ',
    ]) {
      const scan = memory.query(q({ text, limit: 10_000 }));
      assert.deepEqual(store.query(q({ text, limit: 10_000 })).items, scan.items, text);
    }
    assert.deepEqual(
      store.query(q({ text: 're.ex', verdict: 'allow', fromSeq: 2000, limit: 3 })).items.map((i) => i.seq),
      [2007, 3007, 4007],
    );
    await store.close();
  });

  test('every query stops at its time budget and says how far it got; paging on finds all', async () => {
    const store = SqliteLogStore.open(fresh(), { now: () => T0, queryTimeBudgetMs: 0 });
    for (let i = 1; i <= 140_000; i++) store.append(item(i, i % 20_000 === 0 ? { message: 'needle' } : {}));
    for (const filter of [{ text: 'needle' }, { text: 'ne' }, { kind: 'security' }]) {
      const first = store.query(q({ ...filter, limit: 10_000 }));
      assert.ok(first.searchedTo !== undefined && first.searchedTo < 140_000, JSON.stringify(filter));
      let found = first.items.length;
      let from = first.searchedTo! + 1;
      for (let calls = 0; calls < 10_000 && from <= 140_000; calls++) {
        const r = store.query(q({ ...filter, limit: 10_000, fromSeq: from }));
        found += r.items.length;
        if (r.searchedTo === undefined) break;
        from = r.searchedTo + 1;
      }
      assert.equal(found, 'text' in filter ? 7 : 0, JSON.stringify(filter));
    }
    await store.close();
  });

  test('with a repeat window, retransmits of one connection attempt are one item with a count', async () => {
    let now = T0;
    const path = fresh();
    const store = SqliteLogStore.open(path, { now: () => now, repeatWindowMs: 5000 });
    const pushed: number[] = [];
    store.subscribe((i) => pushed.push(i.seq));
    const syn = item(2, { rule: 'no-web' });
    assert.equal(store.append(syn).seq, 1, 'the first attempt is an item at once');
    assert.deepEqual(pushed, [1], 'and pushed live at once');
    now += 1000;
    assert.equal(store.append(syn).count, 2, 'a repeat while the item still waits in its batch');
    store.flush();
    now += 2000;
    assert.equal(store.append(syn).count, 3, 'a repeat after it was written: updated in place');
    store.append(item(2, { rule: 'no-web', local: '10.0.0.1:9999' })); // a new attempt (another port)
    now += 10_000;
    assert.equal(store.append(syn).seq, 3, 'after the window: a new item');
    assert.deepEqual(pushed, [1, 2, 3], 'repeats are not pushed again');
    store.append({ kind: 'security', message: 'same' });
    store.append({ kind: 'security', message: 'same' });
    assert.equal(store.lastSeq, 5, 'only connection items are coalesced');
    const counts = () => store.query(q({})).items.map((i) => [i.seq, i.count]);
    assert.deepEqual(counts(), [
      [1, 3],
      [2, undefined],
      [3, undefined],
      [4, undefined],
      [5, undefined],
    ]);
    await store.close();
    const again = SqliteLogStore.open(path);
    assert.equal(again.query(q({ limit: 1 })).items[0]?.count, 3, 'the count is stored');
    assert.equal(again.append(syn).seq, 6, 'without a repeat window every append is an item');
    await again.close();
  });

  test('a version 2 file (packed fields and a trigram index) is migrated when opened, nothing lost', async () => {
    const path = fresh();
    const db = new Database(path);
    db.exec(`CREATE TABLE log (seq INTEGER PRIMARY KEY, time_ms INTEGER, time TEXT, kind INTEGER NOT NULL,
      verdict INTEGER, application TEXT, local_address TEXT, remote_address TEXT, fields TEXT NOT NULL);
      CREATE INDEX log_application ON log (application, verdict, seq);
      CREATE VIRTUAL TABLE log_text USING fts5 (search, content = '', contentless_delete = 1,
        tokenize = 'trigram case_sensitive 1', detail = 'none');
      CREATE TRIGGER log_text_delete AFTER DELETE ON log BEGIN DELETE FROM log_text WHERE rowid = old.seq; END;
      CREATE TABLE log_span (block INTEGER PRIMARY KEY, min_ms INTEGER, max_ms INTEGER, untimed INTEGER NOT NULL);
      CREATE TABLE state (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
      INSERT INTO state VALUES ('lastSeq', 9), ('textSeq', 3);
      PRAGMA user_version = 2;`);
    const add = db.prepare('INSERT INTO log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
    const f = (...v: (string | undefined)[]) => v.map((x) => x ?? '\x00').join('\x1f');
    add.run(
      1,
      T0,
      null,
      0,
      1,
      '/usr/bin/curl',
      '10.0.0.1',
      'fd00::2',
      f(
        'outgoing',
        'tcp',
        '10.0.0.1:5000',
        '[fd00::2]:443',
        'example.org',
        'no-web',
        'alice',
        undefined,
        'deny by rule "no-web" (pid 0042)',
      ),
    );
    add.run(
      2,
      null,
      'not a time',
      2,
      null,
      null,
      null,
      '192.0.2.7',
      f(undefined, undefined, undefined, undefined, undefined, undefined, 'bob', '192.0.2.7:50000', 'login'),
    );
    add.run(
      3,
      T0 + 5,
      '2026-01-01T01:00:00.005+01:00',
      0,
      0,
      '/usr/bin/x',
      '10.0.0.1',
      '93.184.216.34',
      '\x1e{"protocol":"udp","remote":"93.184.216.34:53","message":"odd \\u001f text 7"}',
    );
    db.exec(`INSERT INTO log_span VALUES (0, ${T0}, ${T0 + 5}, 1)`);
    db.close();
    const store = SqliteLogStore.open(path, { now: () => T0 });
    const items = store.query(q({})).items;
    assert.deepEqual(items, [
      {
        seq: 1,
        time: new Date(T0).toISOString(),
        kind: 'connection',
        verdict: 'deny',
        direction: 'outgoing',
        protocol: 'tcp',
        application: '/usr/bin/curl',
        local: '10.0.0.1:5000',
        remote: '[fd00::2]:443',
        host: 'example.org',
        rule: 'no-web',
        user: 'alice',
        message: 'deny by rule "no-web" (pid 0042)',
      },
      { seq: 2, time: 'not a time', kind: 'admin', user: 'bob', source: '192.0.2.7:50000', message: 'login' },
      {
        seq: 3,
        time: '2026-01-01T01:00:00.005+01:00',
        kind: 'connection',
        verdict: 'allow',
        protocol: 'udp',
        application: '/usr/bin/x',
        remote: '93.184.216.34:53',
        message: 'odd \u001f text 7',
      },
    ]);
    assert.deepEqual(
      store.query(q({ text: 'EXAMPLE.org' })).items.map((i) => i.seq),
      [1],
    );
    assert.deepEqual(
      store.query(q({ address: '192.0.2.7' })).items.map((i) => i.seq),
      [2],
    );
    assert.deepEqual(
      store.query(q({ address: 'fd00::2', verdict: 'deny' })).items.map((i) => i.seq),
      [1],
    );
    assert.equal(store.append({ kind: 'system', message: 'after' }).seq, 10, 'numbering goes on');
    await store.close();
    const check = new Database(path, { readonly: true });
    assert.equal(check.pragma('user_version', { simple: true }), 5);
    const tables = check.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").pluck().all();
    assert.ok(!tables.includes('log_text') && !tables.includes('log_v2'), String(tables));
    check.close();
  });

  test('a version 1 file (one column per field) is migrated when opened', async () => {
    const path = fresh();
    const db = new Database(path);
    db.exec(`CREATE TABLE log (seq INTEGER PRIMARY KEY, time TEXT NOT NULL, time_ms INTEGER, kind TEXT NOT NULL,
      verdict TEXT, direction TEXT, protocol TEXT, application TEXT, local TEXT, remote TEXT, local_address TEXT,
      remote_address TEXT, host TEXT, rule TEXT, user TEXT, source TEXT, message TEXT NOT NULL, search TEXT NOT NULL);
      CREATE INDEX log_time ON log (time_ms);
      CREATE TABLE state (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
      INSERT INTO state VALUES ('lastSeq', 9);`);
    const add = db.prepare(
      `INSERT INTO log (seq, time, time_ms, kind, verdict, application, local, remote, local_address, remote_address,
        message, search) VALUES (?, ?, ?, 'connection', ?, '/usr/bin/curl', '10.0.0.1:5', ?, '10.0.0.1', ?, ?, '')`,
    );
    add.run(3, 'not a time', null, 'deny', '[fd00::2]:443', 'fd00::2', 'Outgoing \x1f odd');
    add.run(4, '2026-01-01T01:00:00+01:00', T0, null, '93.184.216.34:80', '93.184.216.34', 'Outgoing TCP');
    db.close();
    const store = SqliteLogStore.open(path);
    assert.equal(store.lastSeq, 9);
    const common = { kind: 'connection', application: '/usr/bin/curl', local: '10.0.0.1:5' };
    assert.deepEqual(store.query(q({})).items, [
      {
        seq: 3,
        time: 'not a time',
        verdict: 'deny',
        remote: '[fd00::2]:443',
        message: 'Outgoing \x1f odd',
        ...common,
      },
      {
        seq: 4,
        time: '2026-01-01T01:00:00+01:00',
        remote: '93.184.216.34:80',
        message: 'Outgoing TCP',
        ...common,
      },
    ]);
    assert.deepEqual(
      store.query(q({ since: '2026-01-01T00:00:00Z', address: '93.184.216.34' })).items.map((i) => i.seq),
      [4],
    );
    assert.equal(store.append(item(10)).seq, 10);
    await store.close();
  });

  test('a file of a newer schema version is refused with LOG_STORE_VERSION', async () => {
    const path = fresh();
    const db = new Database(path);
    db.pragma('user_version = 99');
    db.close();
    assert.throws(
      () => SqliteLogStore.open(path),
      (e: unknown) =>
        e instanceof WardenError && e.code === ErrorCode.LOG_STORE_VERSION && e.message.includes(path),
    );
  });

  test('a file of garbage gives LOG_STORE_CORRUPT naming the file', async () => {
    const path = fresh();
    await writeFile(path, Buffer.alloc(64 * 1024, 'garbage! '));
    assert.throws(
      () => SqliteLogStore.open(path),
      (e: unknown) => {
        assert.ok(e instanceof WardenError);
        assert.equal(e.code, ErrorCode.LOG_STORE_CORRUPT);
        assert.ok(e.message.includes(path));
        assert.match(e.suggestion ?? '', /move the file aside/);
        return true;
      },
    );
  });

  test('a truncated database gives LOG_STORE_CORRUPT, not a crash', async () => {
    const path = fresh();
    const store = SqliteLogStore.open(path);
    for (let i = 0; i < 20_000; i++) store.append(item(i));
    await store.close();
    const size = (await stat(path)).size;
    await truncate(path, Math.floor(size / 2));
    assert.throws(
      () => {
        const s = SqliteLogStore.open(path);
        s.query(q({ text: 'nothing like this', limit: 10 }));
      },
      (e: unknown) => e instanceof WardenError && e.code === ErrorCode.LOG_STORE_CORRUPT,
    );
    assert.ok((await readFile(path)).length > 0);
  });

  test('a directory in place of the file gives FILE_IO', () => {
    assert.throws(
      () => SqliteLogStore.open(root),
      (e: unknown) => e instanceof WardenError && e.code === ErrorCode.FILE_IO,
    );
  });

  test('query answers exactly as MemoryLogStore for random items and queries (property)', async () => {
    const words = fc.constantFrom('Tcp', 'udp', 'DENY', 'İstanbul', 'ß', 'x"y', '%', '_', ' ', 'a:b', '');
    const text = fc.array(words, { maxLength: 4 }).map((w) => w.join(''));
    const opt = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
    const ends = fc.constantFrom(
      '10.0.0.1:80',
      '[fd00::1]:443',
      'fd00::1',
      '[::1]',
      'host:1',
      '10.0.0.1',
      '',
    );
    const times = fc.constantFrom(
      '2026-01-01T00:00:00.000Z',
      '2026-01-01T01:00:00+01:00',
      '2026-01-02T00:00:00.000Z',
      '2025-12-31T23:59:59.999Z',
      'not a time',
    );
    const newItem = fc.record(
      {
        time: times,
        kind: fc.constantFrom('connection', 'security', 'admin', 'system'),
        verdict: fc.constantFrom('allow', 'deny', 'reject', 'ask'),
        application: fc.constantFrom('/usr/bin/curl', '/usr/bin/ssh', ''),
        local: ends,
        remote: ends,
        host: text,
        rule: text,
        user: text,
        source: ends,
        message: text,
      },
      { requiredKeys: ['kind', 'message'] },
    );
    const query = fc.record({
      fromSeq: opt(fc.integer({ min: 1, max: 40 })),
      limit: fc.integer({ min: 1, max: 30 }),
      kind: opt(fc.constantFrom('connection', 'security', 'admin', 'system')),
      verdict: opt(fc.constantFrom('allow', 'deny', 'reject', 'ask')),
      application: opt(fc.constantFrom('/usr/bin/curl', '/usr/bin/ssh', '')),
      address: opt(fc.constantFrom('10.0.0.1', 'fd00::1', '::1', 'host', '')),
      since: opt(times.filter((t) => t !== 'not a time')),
      until: opt(times.filter((t) => t !== 'not a time')),
      text: opt(text.filter((t) => t.length > 0)),
    });
    // No time budget here (a loaded machine could stop a query early): the budget has a test of its own.
    const store = SqliteLogStore.open(fresh(), { now: () => T0, queryTimeBudgetMs: 60_000 });
    const memory = new MemoryLogStore({ now: () => T0 });
    await fc.assert(
      fc.asyncProperty(
        fc.array(newItem, { maxLength: 15 }),
        fc.array(query, { maxLength: 5 }),
        fc.boolean(),
        async (items, qs, flush) => {
          for (const i of items) assert.deepEqual(store.append(i), memory.append(i));
          // Part of the items written, the rest waiting (query writes them first).
          if (flush) store.flush();
          for (const raw of qs) {
            const parsed = q(Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined)));
            assert.deepEqual(store.query(parsed), memory.query(parsed));
          }
        },
      ),
      { numRuns: 150 },
    );
    await store.close();
  });
});
