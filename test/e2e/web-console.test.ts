/**
 * End-to-end: the web console in real Chromium (Debian's /usr/bin/chromium driven by playwright-core)
 * against a real engine started here in unprivileged mode (no kernel backend; its users made with
 * `wardend user add`), through `warden console`'s server and bridge. Log items and held
 * connections go into the engine's own log store and ask desk, as its enforcer would put them.
 * Screenshots of the main pages go to test-output/web-console/.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { EngineClient } from '../../src/client/engine-client.js';
import type { ConsoleServer } from '../../src/console/web/server.js';
import type { Engine } from '../../src/engine/daemon.js';
import { Methods } from '../../src/protocol/methods.js';
import { USERS } from '../integration/admin-harness.js';
import { repoRoot } from '../repo-root.js';
import { chromiumMissing } from '../support/chromium.js';
import { heldCurl, logInToLab, startWebConsole, type WebConsole } from '../support/console-harness.js';

const root = repoRoot(import.meta.url);
const shots = join(root, 'test-output/web-console');

/** GET with optional headers, without following redirects. */
function get(url: string, headers: Record<string, string> = {}) {
  return new Promise<{ status: number; headers: Record<string, unknown> }>((resolve, reject) => {
    const r = request(url, { headers }, (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, headers: res.headers });
    });
    r.on('error', reject);
    r.end();
  });
}

describe('web console in Chromium', { skip: chromiumMissing }, () => {
  let wc: WebConsole;
  let engine: Engine;
  let web: ConsoleServer;
  let browser: Browser;
  before(async () => {
    wc = await startWebConsole({ prefix: 'warden-web-' });
    ({ engine, web, browser } = wc);
    mkdirSync(shots, { recursive: true });
  });
  after(async () => {
    await wc?.close();
  });

  const shot = (page: Page, name: string) =>
    page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });

  async function logIn(page: Page, user: string) {
    await logInToLab(page, web.url, user);
  }

  test('without the token nothing is served, and the WebSocket is refused', async () => {
    const base = `http://127.0.0.1:${web.port}`;
    assert.equal((await get(`${base}/`)).status, 401);
    assert.equal((await get(`${base}/?token=wrong`)).status, 403);
    assert.equal((await get(`${base}/`, { host: `evil.example:${web.port}` })).status, 421, 'DNS rebinding');
    const ok = await get(web.url);
    assert.equal(ok.status, 302);
    assert.match(String(ok.headers['set-cookie']), /HttpOnly; SameSite=Strict/);
    assert.equal((await get(`${base}/`, { authorization: `Bearer ${web.token}` })).status, 200);
    const page = await browser.newPage();
    await page.goto(`${base}/`);
    const refused = await page.evaluate(
      (port) =>
        new Promise<string>((done) => {
          const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
          ws.onopen = () => done('open');
          ws.onerror = () => done('refused');
        }),
      web.port,
    );
    assert.equal(refused, 'refused');
    await page.close();
  });

  test('add the engine after comparing its fingerprint, log in, and see live log items arrive', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(web.url);
    await page.getByLabel('Name').fill('lab');
    await page.getByLabel('Address').fill(`127.0.0.1:${engine.server.port}`);
    await page.getByRole('button', { name: 'Check fingerprint' }).click();
    const fp = page.getByTestId('fingerprint');
    await fp.waitFor();
    assert.match(String(await fp.textContent()), new RegExp(engine.identity.fingerprint));
    await shot(page, '01-engines-fingerprint');
    await page.getByRole('button', { name: /trust and add/ }).click();
    await page.locator('[data-engine="lab"]').waitFor();
    await logIn(page, 'alice');
    for (let i = 0; i < 30; i++)
      engine.logs.append({
        kind: 'connection',
        verdict: i % 3 === 0 ? 'deny' : 'allow',
        direction: 'outgoing',
        protocol: 'tcp',
        application: i % 2 ? '/usr/bin/curl' : '/usr/bin/firefox',
        remote: `192.0.2.${i}:443`,
        rule: 'web',
        message: `connection ${i}`,
      });
    await page.getByTestId('log-rows').locator('.log-row', { hasText: 'connection 29' }).waitFor();
    await shot(page, '02-live-log');
    await page.getByLabel('Verdict').selectOption('deny');
    engine.logs.append({ kind: 'connection', verdict: 'allow', message: 'allowed later' });
    engine.logs.append({ kind: 'connection', verdict: 'deny', message: 'denied later' });
    await page.getByTestId('log-rows').locator('.log-row', { hasText: 'denied later' }).waitFor();
    assert.equal(
      await page.getByTestId('log-rows').locator('.log-row', { hasText: 'allowed later' }).count(),
      0,
    );
    const rows = page.getByTestId('log-rows');
    // Pause holds new items back; resume shows them.
    await page.getByRole('button', { name: 'Pause' }).click();
    engine.logs.append({ kind: 'connection', verdict: 'deny', message: 'while paused' });
    await page.waitForTimeout(400);
    assert.equal(await rows.locator('.log-row', { hasText: 'while paused' }).count(), 0);
    await page.getByRole('button', { name: 'Resume' }).click();
    await rows.locator('.log-row', { hasText: 'while paused' }).waitFor();
    // History search with the filters: the stored items that match, whatever arrived live.
    await page.getByLabel('Verdict').selectOption('');
    await page.getByLabel('Text').fill('connection 1');
    await page.getByLabel('Application').fill('/usr/bin/curl');
    await page.getByRole('button', { name: 'Search history' }).click();
    await rows.locator('.log-row', { hasText: 'connection 19' }).waitFor();
    const shown = await rows.locator('.log-row:not([hidden])').allTextContents();
    assert.ok(shown.length >= 5, 'connections 1, 11, 13, 15, 17, 19 come from curl');
    assert.ok(
      shown.every((t) => t.includes('curl') && !t.includes('firefox') && /connection 1/.test(t)),
      shown.join('\n'),
    );
    await page.close();
  });

  test('an administrator adds a rule (field errors first), sees it in the list and in explain', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await logIn(page, 'alice');
    await page.getByRole('link', { name: 'Rules' }).click();
    await page.getByRole('button', { name: 'New rule' }).click();
    const form = page.getByRole('form', { name: 'add a rule' });
    await form.getByLabel('Name').fill('web to example');
    await form.getByLabel('Application').fill('/usr/bin/curl');
    await form.getByLabel('Remote ports').fill('99999');
    await form.getByRole('button', { name: 'Add rule' }).click();
    const fieldError = form.locator('label.invalid', { hasText: 'Remote ports' }).locator('.error');
    await fieldError.waitFor();
    assert.match(String(await fieldError.textContent()), /65535|port/i);
    await shot(page, '03-rule-field-error');
    await form.getByLabel('Remote ports').fill('443');
    await form.getByLabel('Action').selectOption('deny');
    await form.getByLabel('Protocol').selectOption('tcp');
    await form.getByRole('button', { name: 'Add rule' }).click();
    await page.locator('[data-rule="web to example"]').waitFor();
    await page.locator('input[name="explain-application"]').fill('/usr/bin/curl');
    await page.locator('input[name="explain-remoteAddress"]').fill('192.0.2.7');
    await page.locator('input[name="explain-remotePort"]').fill('443');
    await page.getByRole('button', { name: 'Explain' }).click();
    const result = page.getByTestId('explain-result');
    await result.waitFor();
    assert.match(String(await result.textContent()), /Verdict deny by web to example/);
    await page.getByLabel(/Show the internal rules/).check();
    await page.getByTestId('internal-rules').waitFor();
    await shot(page, '04-rules-explain');
    await page.close();
  });

  test('an ask prompt arrives with its time left and is answered "always" for the port', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await logIn(page, 'alice');
    await page.getByRole('link', { name: /Asks/ }).click();
    const decided = engine.asks.hold(heldCurl);
    const prompt = page.getByTestId('ask');
    await prompt.waitFor();
    assert.match(String(await prompt.getByTestId('time-left').textContent()), /^\d+ s$/);
    await prompt.getByLabel('For').selectOption('always');
    await prompt.getByLabel('Scope').selectOption('port');
    await shot(page, '05-ask');
    await prompt.getByRole('button', { name: 'Allow' }).click();
    const r = await decided;
    assert.equal(r.verdict, 'allow');
    assert.equal(r.by, 'console');
    await prompt.waitFor({ state: 'detached' });
    await page.getByRole('link', { name: 'Rules' }).click();
    await page.locator('[data-rule="ask: allow curl outgoing tcp port 443"]').waitFor();
    await page.close();
  });

  test('history shows the diff and a rollback removes the added rule', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await logIn(page, 'alice');
    await page.getByRole('link', { name: 'History' }).click();
    const table = page.getByTestId('history');
    await table.locator('tr[data-version]').first().waitFor();
    const versions = await table
      .locator('tr[data-version]')
      .evaluateAll((rows) => rows.map((r) => Number(r.getAttribute('data-version'))));
    const oldest = Math.min(...versions);
    const row = table.locator(`tr[data-version="${oldest}"]`);
    await row.getByRole('button', { name: 'Diff to current' }).click();
    await page.getByTestId('diff').waitFor();
    assert.match(String(await page.getByTestId('diff').textContent()), /\+.*web to example/);
    await shot(page, '06-history-diff');
    await row.getByRole('button', { name: `Roll back to ${oldest}` }).click();
    await table.locator(`tr[data-version="${Math.max(...versions) + 1}"]`).waitFor();
    await page.getByRole('link', { name: 'Rules' }).click();
    await page.getByTestId('rules').waitFor();
    await page.getByText('Explain a connection').waitFor();
    assert.equal(await page.locator('[data-rule="web to example"]').count(), 0);
    await page.close();
  });

  test('a confirmed apply shows its countdown and is kept when confirmed', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await logIn(page, 'alice');
    await page.getByLabel('Confirmed apply').selectOption('60');
    await page.getByRole('link', { name: 'Rules' }).click();
    await page.getByRole('button', { name: 'New rule' }).click();
    const form = page.getByRole('form', { name: 'add a rule' });
    await form.getByLabel('Name').fill('probation rule');
    await form.getByRole('button', { name: 'Add rule' }).click();
    const countdown = page.getByTestId('countdown');
    await countdown.waitFor();
    assert.match(String(await countdown.textContent()), /^(60|59|58) s$/);
    await shot(page, '07-confirm-countdown');
    await page.getByRole('button', { name: 'Keep this change' }).click();
    await countdown.waitFor({ state: 'detached' });
    const c = await EngineClient.connect({
      host: '127.0.0.1',
      port: engine.server.port,
      verifyFingerprint: async (fp) => assert.equal(fp, engine.identity.fingerprint),
    });
    await c.login({ user: 'alice', password: USERS.alice!.password });
    assert.deepEqual((await c.call(Methods.configHistory, {})).pending, []);
    // Another change on probation, undone at once from the banner: the rule is gone long before its deadline.
    await page.getByRole('button', { name: 'New rule' }).click();
    await form.getByLabel('Name').fill('undone rule');
    await form.getByRole('button', { name: 'Add rule' }).click();
    await countdown.waitFor();
    await page.getByRole('button', { name: 'Undo it now' }).click();
    await countdown.waitFor({ state: 'detached' });
    assert.equal(engine.config.policy().rules.filter((r) => r.name === 'undone rule').length, 0);
    assert.equal(engine.config.history()[0]!.source, 'config.undo');
    assert.deepEqual((await c.call(Methods.configHistory, {})).pending, []);
    c.close();
    await page.close();
  });

  test('an administrator adds a user, changes its role and removes it; errors are shown at the field', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await logIn(page, 'alice');
    await page.getByRole('link', { name: 'Users' }).click();
    const table = page.getByTestId('users');
    await table.locator('tr[data-user="alice"]').waitFor();
    const form = page.getByRole('form', { name: 'add a user' });
    await form.getByLabel('Name').fill('carol');
    await form.getByLabel('Password').fill('short');
    await form.getByRole('button', { name: 'Add user' }).click();
    await form.locator('label.invalid').first().waitFor();
    assert.match(String(await form.locator('.error').textContent()), /password/i);
    await form.getByLabel('Password').fill('carol has a long password');
    await form.getByRole('button', { name: 'Add user' }).click();
    const carol = table.locator('tr[data-user="carol"]');
    await carol.waitFor();
    assert.match(String(await carol.textContent()), /auditor/);
    await carol.getByRole('button', { name: 'Make administrator' }).click();
    await carol.getByText('administrator', { exact: true }).waitFor();
    await shot(page, '09-users');
    page.once('dialog', (d) => void d.accept());
    await carol.getByRole('button', { name: 'Remove' }).click();
    await carol.waitFor({ state: 'detached' });
    await page.close();
  });

  test('settings: a bad port is refused at its field; syslog on switches its internal rule on', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await logIn(page, 'alice');
    await page.getByRole('link', { name: 'Settings' }).click();
    const syslog = page.getByRole('form', { name: 'Syslog forwarding' });
    await syslog.getByText('none active').waitFor();
    await syslog.getByLabel('Enabled', { exact: true }).check();
    await syslog.locator('input[name="syslog.port"]').fill('70000');
    await syslog.getByRole('button', { name: 'Save syslog forwarding' }).click();
    await syslog
      .locator('label.invalid')
      .getByText(/1-65535/)
      .first()
      .waitFor();
    await syslog.locator('input[name="syslog.port"]').fill('1514');
    await syslog.getByLabel(/^Transport/).selectOption('tcp');
    await syslog.getByRole('button', { name: 'Save syslog forwarding' }).click();
    await page
      .getByRole('form', { name: 'Syslog forwarding' })
      .getByText(/TCP to 127\.0\.0\.1:1514/)
      .waitFor();
    const saved = page.getByRole('form', { name: 'Syslog forwarding' });
    assert.equal(
      await saved.locator('input[name="syslog.port"]').inputValue(),
      '1514',
      'the form shows what is in force',
    );
    assert.ok(await saved.locator('input[name="syslog.enabled"]').isChecked());
    await shot(page, '10-settings');
    assert.deepEqual(engine.config.settings().syslog, {
      enabled: true,
      host: '127.0.0.1',
      port: 1514,
      transport: 'tcp',
    });
    await page.close();
  });

  test('a read-only auditor sees no editing controls, and the engine refuses a change anyway', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await logIn(page, 'bob');
    await page.getByRole('link', { name: 'Rules' }).click();
    await page.getByTestId('rules').locator('tbody tr').first().waitFor();
    assert.equal(await page.getByRole('button', { name: 'New rule' }).count(), 0);
    assert.equal(await page.getByRole('button', { name: 'Delete' }).count(), 0);
    await shot(page, '08-auditor-rules');
    await page.getByRole('link', { name: 'History' }).click();
    await page.getByTestId('history').locator('tr[data-version]').first().waitFor();
    assert.equal(await page.getByRole('button', { name: /Roll back/ }).count(), 0);
    await page.getByRole('link', { name: 'Users' }).click();
    await page.getByTestId('users').locator('tr[data-user="alice"]').waitFor();
    assert.equal(await page.getByRole('form', { name: 'add a user' }).count(), 0);
    assert.equal(await page.getByRole('button', { name: 'Remove' }).count(), 0);
    // Through the console's own WebSocket, as a page script could: the engine says no.
    const answer = await page.evaluate(
      ({ port, password }) =>
        new Promise<string>((done) => {
          const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
          ws.onopen = () =>
            ws.send(JSON.stringify({ id: 1, op: 'login', engine: 'lab', user: 'bob', password }));
          ws.onmessage = (e) => {
            const m = JSON.parse(e.data);
            if (m.id === 1)
              ws.send(
                JSON.stringify({
                  id: 2,
                  op: 'call',
                  engine: 'lab',
                  method: 'rules.add',
                  params: { rule: { name: 'x', direction: 'outgoing', action: 'allow' } },
                }),
              );
            if (m.id === 2) done(m.error?.code ?? 'accepted');
          };
        }),
      { port: web.port, password: USERS.bob!.password },
    );
    assert.equal(answer, 'WARDEN_E_FORBIDDEN');
    await page.close();
  });

  test('main pages at 1280x800 and on a narrow screen (screenshots)', async () => {
    for (const [label, viewport] of [
      ['wide', { width: 1280, height: 800 }],
      ['narrow', { width: 390, height: 844 }],
    ] as const) {
      const page = await browser.newPage({ viewport });
      await logIn(page, 'alice');
      // Keyboard: the first Tab stops are the page links, and Enter follows one.
      await page.locator('.brand').click(); // where sequential focus navigation starts
      await page.keyboard.press('Tab');
      await page.keyboard.press('Tab');
      assert.equal(await page.evaluate('document.activeElement.textContent'), 'Dashboard');
      await page.keyboard.press('Enter');
      await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
      for (const p of ['dashboard', 'log', 'connections', 'rules', 'settings', 'history', 'users', 'hints']) {
        await page.goto(`http://127.0.0.1:${web.port}/#/${p}`);
        await page.locator('main h1').waitFor();
        await page.waitForTimeout(150);
        await shot(page, `page-${p}-${label}`);
        const fits = await page.evaluate('document.documentElement.scrollWidth <= innerWidth + 1');
        assert.ok(fits, `${label} ${p}: the page does not scroll sideways`);
      }
      await page.close();
    }
  });
});
