/**
 * End-to-end, the web console's Fleet page (issue 14, item 6) in real Chromium: three real engines in
 * unprivileged mode on 127.0.0.1 (test/support/fleet.ts) behind `warden console`'s server and bridge,
 * two of them logged in. The table has every engine's row (version, fingerprint, policy version and
 * hash, log transport; the third "not logged in"), a group narrows it; the live log of the logged-in
 * engines is merged with an engine column, and a filter per engine hides one engine's items, live
 * ones included. Screenshot in test-output/web-fleet/.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { EngineList } from '../../src/console/engines.js';
import { type ConsoleServer, startConsoleServer } from '../../src/console/web/server.js';
import { USERS } from '../integration/admin-harness.js';
import { repoRoot } from '../repo-root.js';
import { chromiumMissing, launchChromium } from '../support/chromium.js';
import { type ConsoleHome, consoleHome, type LoopbackFleet, startLoopbackFleet } from '../support/fleet.js';

const root = repoRoot(import.meta.url);
const shots = join(root, 'test-output/web-fleet');

describe('the Fleet page in the web console', { skip: chromiumMissing }, () => {
  let dir: string;
  let home: ConsoleHome;
  let fleet: LoopbackFleet;
  let web: ConsoleServer;
  let browser: Browser;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-web-fleet-'));
    home = consoleHome(join(dir, 'console'));
    fleet = await startLoopbackFleet(3, dir, home);
    await (await EngineList.open(home.enginesPath)).addToGroup('front', ['e1', 'e3']);
    web = await startConsoleServer({
      staticDir: join(root, 'dist/web'),
      enginesPath: home.enginesPath,
      knownHostsPath: home.knownHostsPath,
    });
    browser = await launchChromium();
    mkdirSync(shots, { recursive: true });
  });
  after(async () => {
    await browser?.close();
    await web?.close();
    await fleet?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function logIn(page: Page, engine: string) {
    await page.goto(`${web.url.split('#')[0]}#/engines`);
    const card = page.locator(`[data-engine="${engine}"]`);
    await card.getByLabel('User').fill('alice');
    await card.getByLabel('Password').fill(USERS.alice!.password);
    await card.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('heading', { name: 'Live log' }).waitFor();
  }
  const tableRow = (page: Page, engine: string) =>
    page.getByTestId('fleet-table').locator(`tr[data-engine="${engine}"]`);
  const logRows = (page: Page) => page.getByTestId('merged-log').locator('tbody tr');

  test('every engine in one table; the logs of two engines merged, filtered per engine', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(web.url);
    await logIn(page, 'e1');
    await logIn(page, 'e2');
    fleet.engines[0]!.logs.append({ kind: 'connection', verdict: 'deny', message: 'stored on e1' });
    fleet.engines[1]!.logs.append({ kind: 'connection', verdict: 'allow', message: 'stored on e2' });
    await page.getByRole('link', { name: 'Fleet' }).click();
    await page.getByRole('heading', { name: 'Fleet' }).waitFor();

    // The table: the logged-in engines with what engine.status says, the other one needing a login.
    await tableRow(page, 'e1').filter({ hasText: 'up' }).waitFor();
    const e1 = String(await tableRow(page, 'e1').textContent());
    const s = fleet.engines[0]!;
    assert.match(e1, /^e1/);
    assert.ok(e1.includes(s.identity.fingerprint.split(':').slice(0, 5).join(':')), e1);
    assert.match(e1, /v\d+sha256:[0-9a-f]{12}/);
    assert.match(e1, /(UDP|TCP)up$/);
    assert.match(String(await tableRow(page, 'e3').textContent()), /never.*not logged in/);
    await page.getByLabel('Group').selectOption('front');
    assert.equal(await tableRow(page, 'e2').count(), 0, 'e2 is not in the group');
    assert.equal(await tableRow(page, 'e3').count(), 1);

    // The merged log: stored items of both engines, then live ones, each with its engine.
    await logRows(page).filter({ hasText: 'stored on e1' }).waitFor();
    await logRows(page).filter({ hasText: 'stored on e2' }).waitFor();
    assert.equal(await logRows(page).filter({ hasText: 'stored on e1' }).getAttribute('data-engine'), 'e1');
    fleet.engines[0]!.logs.append({ kind: 'connection', verdict: 'deny', message: 'live on e1' });
    fleet.engines[1]!.logs.append({ kind: 'connection', verdict: 'allow', message: 'live on e2' });
    await logRows(page).filter({ hasText: 'live on e1' }).waitFor();
    await logRows(page).filter({ hasText: 'live on e2' }).waitFor();
    assert.match(String(await logRows(page).filter({ hasText: 'live on e2' }).textContent()), /^e2/);
    await page.screenshot({ path: join(shots, 'fleet.png'), fullPage: true });

    // Hiding e1: only e2's items, also those that arrive afterwards.
    await page.getByLabel('Show e1').uncheck();
    assert.equal(await logRows(page).filter({ hasText: 'on e1' }).count(), 0);
    fleet.engines[0]!.logs.append({ kind: 'connection', verdict: 'deny', message: 'later on e1' });
    fleet.engines[1]!.logs.append({ kind: 'connection', verdict: 'allow', message: 'later on e2' });
    await logRows(page).filter({ hasText: 'later on e2' }).waitFor();
    assert.equal(await logRows(page).filter({ hasText: 'on e1' }).count(), 0);
    await page.getByLabel('Show e1').check();
    await logRows(page).filter({ hasText: 'later on e1' }).waitFor();
    // On a narrow screen the tables scroll within the page; the page does not scroll sideways.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(150);
    await page.screenshot({ path: join(shots, 'fleet-narrow.png'), fullPage: true });
    assert.ok(
      await page.evaluate('document.documentElement.scrollWidth <= innerWidth + 1'),
      'no sideways scroll',
    );
    await page.close();
  });
});
