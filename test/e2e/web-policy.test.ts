/**
 * End-to-end in real Chromium: the Rules page's policy header (mode, defaults, address groups) and
 * the Proposals page, against a real engine in unprivileged mode through `warden console`. Learning
 * mode's proposals come from the engine's real Enforcer judging connections into the engine's own
 * proposal book, as the kernel backend does. Screenshots at 1280x800 and 390x844 go to
 * test-output/web-console/ (policy-*.png).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import type { ConsoleServer } from '../../src/console/web/server.js';
import type { Engine } from '../../src/engine/daemon.js';
import { Enforcer } from '../../src/engine/enforcer.js';
import { compilePolicy, parsePolicyText } from '../../src/policy/index.js';
import { repoRoot } from '../repo-root.js';
import { chromiumMissing } from '../support/chromium.js';
import { logInToLab, startWebConsole, type WebConsole } from '../support/console-harness.js';

const root = repoRoot(import.meta.url);
const shots = join(root, 'test-output/web-console');
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 800 };

describe('web console: policy header and proposals in Chromium', { skip: chromiumMissing }, () => {
  let wc: WebConsole;
  let engine: Engine;
  let web: ConsoleServer;
  let browser: Browser;
  before(async () => {
    wc = await startWebConsole({ prefix: 'warden-web-policy-' });
    ({ engine, web, browser } = wc);
    mkdirSync(shots, { recursive: true });
    // The engine is added once (its fingerprint compared), as an administrator would.
    const page = await browser.newPage({ viewport: DESKTOP });
    await page.goto(web.url);
    await page.getByLabel('Name').fill('lab');
    await page.getByLabel('Address').fill(`127.0.0.1:${engine.server.port}`);
    await page.getByRole('button', { name: 'Check fingerprint' }).click();
    await page.getByTestId('fingerprint').waitFor();
    await page.getByRole('button', { name: /trust and add/ }).click();
    await page.locator('[data-engine="lab"]').waitFor();
    await page.close();
  });
  after(async () => {
    await wc?.close();
  });

  const shot = (page: Page, name: string) =>
    page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });

  async function logIn(page: Page, user: string, to: string) {
    await logInToLab(page, web.url, user);
    await page.goto(`${web.url.replace(/\?.*$/, '')}#/${to}`);
  }

  test('mode, defaults and groups are shown above the rules and changed there', async () => {
    const page = await browser.newPage({ viewport: DESKTOP });
    await logIn(page, 'alice', 'rules');
    const header = page.getByRole('region', { name: 'policy' });
    await header.waitFor();
    assert.equal(await header.getByRole('button', { name: 'enforce' }).getAttribute('aria-pressed'), 'true');
    assert.equal(await header.getByLabel('default outgoing action').inputValue(), 'allow');
    await header.getByRole('button', { name: 'learning' }).click();
    await header.getByRole('status').filter({ hasText: 'Mode: enforce → learning' }).waitFor();
    assert.equal(engine.config.policy().mode, 'learning');
    await header.getByLabel('default outgoing action').selectOption('deny');
    await header.getByRole('status').filter({ hasText: 'Default outgoing: allow → deny' }).waitFor();
    assert.deepEqual(engine.config.policy().defaults.outgoing, { action: 'deny', log: true });
    await header.getByLabel('log incoming default').uncheck();
    const form = header.getByRole('form', { name: 'add a group' });
    await form.getByLabel('New group').fill('lan');
    await form.getByLabel('Members').fill('192.168.0.0/16, 10.0.0.0/8');
    await form.getByRole('button', { name: 'Add group' }).click();
    await header.locator('[data-group="lan"]').waitFor();
    assert.deepEqual(engine.config.policy().addressGroups.lan?.length, 2);
    // An invalid member is refused with the engine's words, naming it.
    await form.getByLabel('New group').fill('bad');
    await form.getByLabel('Members').fill('10.0.0.1/8');
    await form.getByRole('button', { name: 'Add group' }).click();
    await header.locator('.error', { hasText: '10.0.0.1/8' }).waitFor();
    assert.equal(engine.config.policy().addressGroups.bad, undefined);
    await form.getByLabel('New group').fill('');
    await form.getByLabel('Members').fill('');
    const members = header.getByLabel('members of lan');
    await members.fill('192.168.0.0/16, 172.16.0.0/12');
    await header.locator('[data-group="lan"]').getByRole('button', { name: 'Save' }).click();
    await header.getByRole('status').filter({ hasText: 'Group @lan changed' }).waitFor();
    assert.equal(engine.config.policy().defaults.incoming.log, false);
    assert.deepEqual(
      engine.config.policy().addressGroups.lan?.map((s) => (s.kind === 'ip' ? s.range.version : s.kind)),
      [4, 4],
    );
    await shot(page, 'policy-01-rules-header-1280');
    await page.setViewportSize(PHONE);
    await shot(page, 'policy-02-rules-header-390');
    await page.close();
  });

  test('proposals grouped by application: accepted one by one, in bulk, rejected for good', async () => {
    const enforcer = new Enforcer({
      policy: () => compilePolicy(engine.config.policy()),
      identify: async (t) => ({
        pid: 4000 + (t.sourcePort ?? 0),
        executable:
          t.sourcePort! < 2000 ? '/usr/bin/curl' : t.sourcePort! < 3000 ? '/usr/bin/apt' : '/usr/bin/ssh',
        uid: 1000,
      }),
      hostsOf: (a) => (a === '192.0.2.80' ? ['deb.debian.org'] : []),
      asks: engine.asks,
      log: (i) => engine.logs.append(i),
      executables: { engine: '/e', console: '/c', assistant: '/a' },
      propose: (rule, facts) => engine.proposals.seen(rule, facts),
    });
    const connect = (sourcePort: number, destination: string, destinationPort: number) =>
      enforcer.judge(
        { protocol: 'tcp', source: '10.200.0.1', destination, sourcePort, destinationPort },
        'outgoing',
      );
    for (let i = 0; i < 5; i++) await connect(1000 + i, '192.0.2.10', 443);
    await connect(1100, '192.0.2.11', 8080);
    for (let i = 0; i < 3; i++) await connect(2000 + i, '192.0.2.80', 80);
    await connect(2100, '192.0.2.81', 443);
    await connect(3000, '198.51.100.22', 22);
    assert.equal(engine.proposals.size, 5);

    const page = await browser.newPage({ viewport: DESKTOP });
    await logIn(page, 'alice', 'proposals');
    const curl = page.locator('[data-app="/usr/bin/curl"]');
    await curl.waitFor();
    assert.match(String(await curl.textContent()), /2 proposals, seen 6×/);
    assert.match(
      String(await curl.locator('tbody tr').first().textContent()),
      /to 192\.0\.2\.10 · tcp 443\s*5/,
    );
    await shot(page, 'policy-03-proposals-1280');
    await page.setViewportSize(PHONE);
    await shot(page, 'policy-04-proposals-390');
    await page.setViewportSize(DESKTOP);
    // One by one.
    await curl.locator('tbody tr').first().getByRole('button', { name: 'Accept' }).click();
    await page.getByRole('status').filter({ hasText: '1 rule added' }).waitFor();
    assert.ok(
      engine.config
        .policy()
        .rules.some((r) => r.name === 'learned: /usr/bin/curl outgoing tcp/443 to 192.0.2.10'),
    );
    // Ticked ones in bulk.
    const apt = page.locator('[data-app="/usr/bin/apt"]');
    for (const box of await apt.getByRole('checkbox').all()) await box.check();
    await page.getByRole('button', { name: 'Accept selected (2)' }).click();
    await page.getByRole('status').filter({ hasText: '2 rules added' }).waitFor();
    // All of one application, rejected: not proposed again.
    await page.locator('[data-app="/usr/bin/ssh"]').getByRole('button', { name: 'Reject all' }).click();
    await page.getByRole('status').filter({ hasText: '1 rejected' }).waitFor();
    await connect(3001, '198.51.100.22', 22);
    assert.deepEqual(
      engine.proposals.list().map((p) => p.remote),
      ['192.0.2.11'],
    );
    assert.equal(engine.config.policy().rules.length, 3);
    await page.close();
  });

  test('an auditor sees the policy and proposals without controls to change them', async () => {
    const page = await browser.newPage({ viewport: DESKTOP });
    await logIn(page, 'bob', 'rules');
    const header = page.getByRole('region', { name: 'policy' });
    await header.waitFor();
    assert.equal(await header.getByLabel('default outgoing action').isDisabled(), true);
    assert.equal(await header.getByRole('form', { name: 'add a group' }).count(), 0);
    await page.getByRole('navigation', { name: 'pages' }).getByRole('link', { name: 'Proposals' }).click();
    await page.locator('[data-app="/usr/bin/curl"]').waitFor();
    assert.equal(await page.getByRole('button', { name: 'Accept' }).count(), 0);
    await page.close();
  });

  test('a rule on the program context: parent, ancestor and arguments in the form, warnings shown after saving', async () => {
    const page = await browser.newPage({ viewport: DESKTOP });
    await logIn(page, 'alice', 'rules');
    await page.getByRole('button', { name: 'New rule' }).click();
    const form = page.getByRole('form', { name: 'add a rule' });
    await form.getByLabel('Name').fill('curl from a shell');
    await form.getByLabel('Application').fill('/usr/bin/curl');
    await form.getByLabel('Parent program').fill('/usr/bin/no-such-shell');
    await form.getByLabel('Ancestor program').fill('/usr/sbin/sshd');
    // A glob the engine refuses is shown at its field, with the engine's words.
    await form.getByLabel('Command line (glob)').fill('curl [x');
    await form.getByRole('button', { name: 'Add rule' }).click();
    await form.locator('#err-arguments', { hasText: 'never closed' }).waitFor();
    await form.getByLabel('Command line (glob)').fill('curl -s *');
    await form.getByRole('button', { name: 'Add rule' }).click();
    // rules.add keeps the rule and warns that the parent does not exist on this host: the page says so.
    const warnings = page.getByTestId('rule-warnings');
    await warnings.filter({ hasText: 'parent "/usr/bin/no-such-shell" does not exist' }).waitFor();
    const rule = engine.config.policy().rules.find((r) => r.name === 'curl from a shell');
    assert.equal(rule?.parent, '/usr/bin/no-such-shell');
    assert.equal(rule?.ancestor, '/usr/sbin/sshd');
    assert.equal(rule?.arguments, 'curl -s *');
    await page.locator('[data-rule="curl from a shell"]', { hasText: 'command line "curl -s *"' }).waitFor();
    // Explain takes the program context and says why the rule does not match.
    const explainForm = page.locator('section[aria-labelledby="explain-h"] form');
    await explainForm.getByLabel('Application').fill('/usr/bin/curl');
    await explainForm.getByLabel('Parent').fill('/usr/bin/zsh');
    await explainForm.getByLabel('Command line').fill('curl -s https://example.org/');
    await explainForm.getByRole('button', { name: 'Explain' }).click();
    await page
      .getByTestId('explain-result')
      .filter({
        hasText: "rule wants parent /usr/bin/no-such-shell; this connection's parent is /usr/bin/zsh",
      })
      .waitFor();
    await shot(page, 'policy-05-rule-warnings-1280');
    await page.close();
  });

  test('the Lists section shows each list with its entries and refreshes one now', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-web-lists-'));
    const file = join(dir, 'blocked.txt');
    writeFileSync(file, '198.51.100.0/24\nnot-an-address\n');
    try {
      await engine.config.setPolicy(
        parsePolicyText(
          `lists:\n  blocked: { file: ${file}, format: ips }\nrules:\n  - { name: no blocked, direction: outgoing, remote: "list:blocked", action: deny }\n`,
        ),
      );
      const page = await browser.newPage({ viewport: DESKTOP });
      await logIn(page, 'alice', 'rules');
      const row = page.getByTestId('lists').locator('tr[data-list="blocked"]');
      await row.filter({ hasText: '1 (1 bad lines skipped)' }).waitFor();
      assert.match(String(await row.textContent()), /list:blocked \(ips\)/);
      // The file changes; "Refresh now" reads it again without waiting for a reload of the engine.
      writeFileSync(file, '198.51.100.0/24\n203.0.113.0/24\n192.0.2.7\n');
      await row.getByRole('button', { name: 'Refresh list:blocked now' }).click();
      await row.locator('td').nth(2).filter({ hasText: /^3$/ }).waitFor();
      assert.doesNotMatch(String(await row.textContent()), /bad lines/);
      await shot(page, 'policy-06-lists-1280');
      await page.close();
      // An auditor sees the lists without the button.
      const auditor = await browser.newPage({ viewport: DESKTOP });
      await logIn(auditor, 'bob', 'rules');
      await auditor.getByTestId('lists').locator('tr[data-list="blocked"]').waitFor();
      assert.equal(await auditor.getByRole('button', { name: /Refresh list:/ }).count(), 0);
      await auditor.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
