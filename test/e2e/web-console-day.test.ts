/**
 * End-to-end, the administrator's day in the web console (issue 13), in real Chromium against a real
 * engine (unprivileged mode) through `warden console`'s server and bridge: the live log's filters
 * over stored and live items with each item once, its columns and row details, "deny this from now
 * on" through confirmed apply, the connected-now view and an application's page (a real child
 * process holding a real TCP connection), the dashboard chart's axis and tooltip, prompt
 * notifications, a session that survives a reload and an engine restart, forgetting an untrusted
 * engine, rules numbered from 1 with the `both` direction. Screenshots at 1280x800 and 390x844 go
 * to test-output/web-console-day/.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { EngineList } from '../../src/console/engines.js';
import { type ConsoleServer, startConsoleServer } from '../../src/console/web/server.js';
import { Engine } from '../../src/engine/daemon.js';
import { repoRoot } from '../repo-root.js';
import { chromiumMissing } from '../support/chromium.js';
import {
  type ConnectedChild,
  heldCurl,
  logInToLab,
  pinEngine,
  startConnectedChild,
  startWebConsole,
  type WebConsole,
} from '../support/console-harness.js';

const root = repoRoot(import.meta.url);
const shots = join(root, 'test-output/web-console-day');
const node = realpathSync(process.execPath);

describe('the administrator’s day in the web console', { skip: chromiumMissing }, () => {
  let wc: WebConsole;
  let engine: Engine;
  let web: ConsoleServer;
  let browser: Browser;
  let home: string;
  // A real program with a real connection, for "connected now" and the row details.
  let peer: ConnectedChild;

  before(async () => {
    wc = await startWebConsole({
      prefix: 'warden-web-day-',
      beforeConsole: (dir, started) => pinEngine(dir, 'lab', started),
    });
    ({ engine, web, browser, home } = wc);
    mkdirSync(shots, { recursive: true });
    peer = await startConnectedChild('web-day-marker');
  });
  after(async () => {
    peer?.close();
    await wc?.close();
  });

  const shot = (page: Page, name: string) =>
    page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });

  async function logIn(page: Page, user = 'alice') {
    await logInToLab(page, web.url, user);
  }
  const rows = (page: Page) => page.getByTestId('log-rows').locator('.log-row:not([hidden])');
  const seqsShown = (page: Page) =>
    rows(page).evaluateAll((r) => r.map((x) => Number(x.getAttribute('data-seq'))));

  test('live log: filters cover stored and live items, each item once, readable columns, plain counts', async () => {
    // Old denied items, further back than the newest 100 the page opens with.
    for (let i = 0; i < 5; i++)
      engine.logs.append({
        kind: 'connection',
        verdict: 'deny',
        direction: 'outgoing',
        protocol: 'udp',
        application: '/usr/bin/dig',
        remote: `198.51.100.${i}:53`,
        rule: 'no dns',
        message: `old denied ${i}`,
      });
    for (let i = 0; i < 150; i++)
      engine.logs.append({
        kind: 'connection',
        verdict: 'allow',
        direction: 'outgoing',
        protocol: 'tcp',
        application: '/usr/bin/firefox',
        remote: `192.0.2.${i % 250}:443`,
        host: 'www.example.org',
        user: 'alice',
        rule: 'web browsing',
        message: `allowed ${i}`,
      });
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await logIn(page);
    await rows(page).filter({ hasText: 'allowed 149' }).waitFor();
    assert.equal(await rows(page).filter({ hasText: 'old denied' }).count(), 0, 'not among the newest 100');
    const counts = String(await page.getByTestId('log-counts').textContent());
    assert.match(counts, /^\d+ items, newest first/);
    assert.doesNotMatch(counts, /rows drawn|kept|received/);
    // Readable at 1280 px: no cut-off time, verdict, direction, protocol, remote or rule.
    const cut =
      (await page.evaluate(`[...document.querySelectorAll('.log-head span, .log-row:not([hidden]) span')]
      .filter((c) => !c.classList.contains('c-message') && !c.classList.contains('c-application'))
      .filter((c) => c.scrollWidth > c.clientWidth + 1)
      .map((c) => c.className + ': ' + c.textContent)`)) as string[];
    assert.deepEqual(cut, []);
    assert.equal(
      await page.locator('.log-head').textContent(),
      'TimeVerdictDirProtoApplicationUserRemote host and portRuleMessage',
    );
    const first = rows(page).filter({ hasText: 'allowed 149' });
    assert.match(
      String(await first.textContent()),
      /allow.*out.*tcp.*firefox.*alice.*www\.example\.org:443.*web browsing/,
    );
    // A filter shows the stored items that match, old ones included, and then the live ones.
    await page.getByLabel('Verdict').selectOption('deny');
    await rows(page).filter({ hasText: 'old denied 0' }).waitFor();
    assert.equal(await rows(page).filter({ hasText: 'allowed' }).count(), 0);
    engine.logs.append({ kind: 'connection', verdict: 'allow', message: 'allowed live' });
    engine.logs.append({ kind: 'connection', verdict: 'deny', message: 'denied live' });
    await rows(page).filter({ hasText: 'denied live' }).waitFor();
    assert.equal(await rows(page).filter({ hasText: 'allowed live' }).count(), 0);
    assert.match(String(await page.getByTestId('log-counts').textContent()), /items that match the filters/);
    // Clearing the filter brings back what the page had, live items included, each once. Then a
    // search that runs while items arrive live: both deliver the same items, still one row each.
    await page.getByRole('button', { name: 'Clear filters' }).click();
    await rows(page).filter({ hasText: 'allowed live' }).waitFor();
    await page.getByLabel('Text').fill('live');
    for (let i = 0; i < 20; i++)
      engine.logs.append({ kind: 'connection', verdict: 'allow', message: `live burst ${i}` });
    await page.getByRole('button', { name: 'Search history' }).click();
    await rows(page).filter({ hasText: 'live burst 19' }).waitFor();
    await page.getByRole('button', { name: 'Search history' }).click();
    await page.getByRole('button', { name: 'Search history' }).waitFor({ state: 'visible' });
    await page.waitForFunction(
      `!document.querySelector('button[type=submit]').textContent.includes('Searching')`,
    );
    const seqs = await seqsShown(page);
    assert.equal(new Set(seqs).size, seqs.length, `each item once: ${seqs.join(' ')}`);
    assert.equal(seqs.length, 22, 'allowed live, denied live and the 20 of the burst');
    await shot(page, 'log-filtered-wide');
    // A row opens its details from the keyboard too.
    await rows(page).filter({ hasText: 'live burst 19' }).focus();
    await page.keyboard.press('Enter');
    await page.getByTestId('log-details').getByText('live burst 19').waitFor();
    await page.getByRole('button', { name: 'Close' }).click();
    await page.getByTestId('log-details').waitFor({ state: 'detached' });
    await page.close();
  });

  test('a row opens its details with the process, and "deny this from now on" adds a rule through confirmed apply', async () => {
    const remote = `127.0.0.1:${peer.port}`;
    engine.logs.append({
      kind: 'connection',
      verdict: 'allow',
      direction: 'outgoing',
      protocol: 'tcp',
      application: node,
      local: '127.0.0.1:40000',
      remote,
      host: 'lab.example',
      user: 'root',
      rule: 'default outgoing',
      message: `allowed by the default (pid ${peer.child.pid})`,
    });
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await logIn(page);
    await page.getByLabel('Confirmed apply').selectOption('30');
    await rows(page)
      .filter({ hasText: `pid ${peer.child.pid}` })
      .click();
    const details = page.getByTestId('log-details');
    await details.waitFor();
    await details.getByTestId('command-line').filter({ hasText: 'web-day-marker' }).waitFor();
    assert.match(String(await details.textContent()), new RegExp(`Process id${peer.child.pid}`));
    await details.getByTestId('explain-now').waitFor();
    assert.match(String(await details.getByTestId('explain-now').textContent()), /^allow by /);
    await shot(page, 'log-details-wide');
    await details.getByRole('button', { name: 'Deny this from now on' }).click();
    const proposal = details.getByTestId('rule-proposal');
    assert.match(String(await proposal.textContent()), /deny node to lab\.example:\d+/);
    await proposal.getByRole('button', { name: 'Add rule' }).click();
    await details.getByTestId('rule-added').waitFor();
    await page.getByTestId('countdown').waitFor();
    await page.getByRole('button', { name: 'Keep this change' }).click();
    await page.getByTestId('countdown').waitFor({ state: 'detached' });
    const top = engine.config.policy().rules[0]!;
    assert.equal(top.action, 'deny');
    assert.equal(top.application, node);
    assert.equal(top.name, `deny node to lab.example:${peer.port}`);
    assert.equal(engine.config.history()[0]!.what, 'policy');
    await page.setViewportSize({ width: 390, height: 844 });
    await shot(page, 'log-details-narrow');
    await page.close();
  });

  test('connected now groups connections by program; the program’s page shows them, its destinations, rules and counts', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await logIn(page);
    await page.getByRole('link', { name: 'Connected now' }).click();
    const group = page.locator(`section[data-app="${node}"]`);
    await group.locator(`tr[data-remote="127.0.0.1:${peer.port}"]`).first().waitFor();
    assert.match(String(await group.textContent()), /web-day-marker/);
    assert.match(
      String(await page.getByTestId('connections-summary').textContent()),
      /open connections? of \d+ programs?/,
    );
    await shot(page, 'connections-wide');
    await group.getByRole('link', { name: node }).click();
    await page.getByRole('heading', { name: /^node/ }).waitFor();
    await page.locator(`tr[data-remote="127.0.0.1:${peer.port}"]`).first().waitFor();
    await page.getByTestId('destinations').getByText(`lab.example:${peer.port}`).waitFor();
    await page.getByRole('link', { name: `deny node to lab.example:${peer.port}` }).waitFor();
    const plot = page.locator('.tchart-plot');
    const box = (await plot.boundingBox())!;
    await page.mouse.move(box.x + box.width - 3, box.y + box.height / 2);
    assert.match(String(await page.getByTestId('chart-tip').textContent()), /\d\d:\d\d–\d\d:\d\d.*1 allow/);
    await shot(page, 'application-wide');
    await page.setViewportSize({ width: 390, height: 844 });
    assert.ok(
      await page.evaluate('document.documentElement.scrollWidth <= innerWidth + 1'),
      'no sideways scroll',
    );
    await shot(page, 'application-narrow');
    await page.goto(`http://127.0.0.1:${web.port}/#/connections`);
    await page.getByTestId('connections-summary').waitFor();
    await shot(page, 'connections-narrow');
    await page.close();
  });

  test('dashboard chart: a time axis, a scale and a tooltip for the bar under the pointer', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await logIn(page);
    await page.getByRole('link', { name: 'Dashboard' }).click();
    const axis = page.locator('.tchart-axis span');
    await axis.first().waitFor();
    assert.equal(await axis.count(), 6, 'a clock time every 10 minutes');
    assert.match(String(await axis.first().textContent()), /^\d\d:\d\d$/);
    const scale = await page.locator('.tchart-scale span').allTextContents();
    assert.equal(scale.length, 3);
    assert.equal(scale[2], '0');
    assert.equal(Number(scale[0]), 2 * Number(scale[1]), `a scale from 0 to a round top: ${scale}`);
    const plot = page.locator('.tchart-plot');
    await page.waitForFunction(`document.querySelectorAll('.tchart rect').length > 0`);
    const box = (await plot.boundingBox())!;
    await page.mouse.move(box.x + box.width - 3, box.y + box.height - 5);
    assert.match(String(await page.getByTestId('chart-tip').textContent()), /\d+ allow\d+ deny/);
    await shot(page, 'dashboard-tooltip-wide');
    await page.close();
  });

  test('an ask prompt raises a browser notification once the administrator allowed them', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    // Records every notification the page shows (the real constructor still runs).
    await context.addInitScript(`{
      const Real = window.Notification;
      window.shownNotes = [];
      window.Notification = class extends Real {
        constructor(title, options) {
          super(title, options);
          window.shownNotes.push(title + ' | ' + (options?.body ?? ''));
        }
      };
    }`);
    const page = await context.newPage();
    await logIn(page);
    await page.getByRole('link', { name: /Asks/ }).click();
    const ask = page.getByRole('button', { name: 'Notify me of new prompts' });
    await ask.waitFor();
    await context.grantPermissions(['notifications'], { origin: `http://127.0.0.1:${web.port}` });
    await ask.click();
    await page.getByTestId('notify-state').filter({ hasText: 'A desktop notification appears' }).waitFor();
    const decided = engine.asks.hold(heldCurl);
    await page.waitForFunction('window.shownNotes.length > 0');
    const notes = (await page.evaluate('window.shownNotes')) as string[];
    assert.match(notes[0]!, /^Warden: curl wants to connect \| outgoing tcp example\.org port 443 \(lab\)/);
    await page.getByTestId('ask').getByRole('button', { name: 'Deny' }).click();
    assert.equal((await decided).verdict, 'deny');
    await context.close();
  });

  test('the session survives a page reload and an engine restart; a used resume ticket is worthless', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await logIn(page);
    const who = page.getByTestId('who');
    const ticket = await page.evaluate(`sessionStorage.getItem('warden-console-ticket')`);
    assert.match(String(ticket), /^[0-9a-f]{64}$/);
    assert.equal(await page.evaluate('localStorage.length'), 0, 'nothing in localStorage');
    // While the page is open its ticket resumes nothing (a copied tab cannot take the sessions).
    const tryTicket = (t: string) =>
      page.evaluate(
        ({ port, t }) =>
          new Promise<boolean>((done) => {
            const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
            ws.onopen = () => ws.send(JSON.stringify({ id: 1, op: 'resume', ticket: t }));
            ws.onmessage = (e) => {
              done(JSON.parse(e.data).result.resumed);
              ws.close();
            };
          }),
        { port: web.port, t },
      );
    assert.equal(await tryTicket(String(ticket)), false);
    await page.reload();
    await page.getByRole('heading', { name: 'Live log' }).waitFor();
    await who.filter({ hasText: 'lab: alice (administrator)' }).waitFor();
    assert.equal(await page.getByRole('button', { name: 'Log in' }).count(), 0);
    assert.notEqual(await page.evaluate(`sessionStorage.getItem('warden-console-ticket')`), ticket);
    assert.equal(await tryTicket(String(ticket)), false, 'the ticket was used once');
    // The engine restarts on the same port: the console logs in again by itself.
    const enginePort = engine.server.port;
    await engine.stop();
    await who.filter({ hasText: /not answering/ }).waitFor();
    await shot(page, 'engine-restart-wide');
    engine = await wc.restartEngine(enginePort);
    engine.logs.append({ kind: 'connection', verdict: 'deny', message: 'stored while the page reconnects' });
    await who.filter({ hasText: 'lab: alice (administrator)' }).waitFor({ timeout: 30_000 });
    await rows(page).filter({ hasText: 'stored while the page reconnects' }).waitFor();
    engine.logs.append({ kind: 'connection', verdict: 'deny', message: 'after the restart' });
    await rows(page).filter({ hasText: 'after the restart' }).waitFor();
    await page.close();
  });

  test('an engine never trusted offers a fingerprint check or to forget it, not a login', async () => {
    await (await EngineList.open(join(home, 'engines.json'))).save('stale', { host: '127.0.0.1', port: 9 });
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(web.url);
    const card = page.locator('[data-engine="stale"]');
    await card.getByTestId('not-trusted').waitFor();
    assert.equal(await card.getByRole('button', { name: 'Log in' }).count(), 0);
    await shot(page, 'engines-untrusted-wide');
    await page.setViewportSize({ width: 390, height: 844 });
    await shot(page, 'engines-untrusted-narrow');
    page.once('dialog', (d) => void d.accept());
    await card.getByRole('button', { name: 'Forget this engine' }).click();
    await card.waitFor({ state: 'detached' });
    assert.doesNotMatch(readFileSync(join(home, 'engines.json'), 'utf8'), /stale/);
    await page.close();
  });

  test('the users page of an engine without console users says so (local administrator login)', async () => {
    const bare = mkdtempSync(join(tmpdir(), 'warden-web-bare-'));
    const lone = await Engine.start({
      configDir: join(bare, 'etc'),
      stateDir: join(bare, 'state'),
      port: 0,
      bindAddress: '127.0.0.1',
    });
    await pinEngine(bare, 'bare', lone);
    const console2 = await startConsoleServer({
      staticDir: join(root, 'dist/web'),
      enginesPath: join(bare, 'engines.json'),
      knownHostsPath: join(bare, 'known-hosts.json'),
      localTokenPath: lone.localTokenPath,
    });
    try {
      for (const [label, viewport] of [
        ['wide', { width: 1280, height: 800 }],
        ['narrow', { width: 390, height: 844 }],
      ] as const) {
        const page = await browser.newPage({ viewport });
        await page.goto(console2.url);
        await page
          .locator('[data-engine="bare"]')
          .getByRole('button', { name: 'Local administrator' })
          .click();
        await page.getByRole('heading', { name: 'Live log' }).waitFor();
        await page.getByRole('link', { name: 'Users' }).click();
        await page.getByTestId('no-users').waitFor();
        assert.match(String(await page.getByTestId('no-users').textContent()), /No console users yet/);
        await shot(page, `users-empty-${label}`);
        await page.close();
      }
    } finally {
      await console2.close();
      await lone.stop();
      rmSync(bare, { recursive: true, force: true });
    }
  });

  test('rules are numbered from 1 and a rule can be for both directions', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await logIn(page);
    await page.getByRole('link', { name: 'Rules' }).click();
    await page.getByTestId('rules').locator('tbody tr').first().waitFor();
    assert.equal(await page.getByTestId('rules').locator('tbody tr td').first().textContent(), '1');
    await page.getByRole('button', { name: 'New rule' }).click();
    const form = page.getByRole('form', { name: 'add a rule' });
    await form.getByLabel('Name').fill('lan both ways');
    await form.getByLabel('Direction').selectOption('both');
    await form.getByLabel('Remote addresses / hosts').fill('192.168.0.0/16');
    await form.getByRole('button', { name: 'Add rule' }).click();
    const row = page.locator('[data-rule="lan both ways"]');
    await row.waitFor();
    assert.match(String(await row.textContent()), /both/);
    await shot(page, 'rules-wide');
    await page.close();
  });
});
