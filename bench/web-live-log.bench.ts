/**
 * The web console's live log under 10,000 log items a second: a real administration server
 * (in-process, fixture identity) stores items at that rate and pushes them over UDP to the
 * console's bridge, which forwards them over the WebSocket to the live log page in Chromium.
 * In the page, a PerformanceObserver records long tasks (> 50 ms on the main thread) and a
 * requestAnimationFrame loop counts frames and the rows in the DOM.
 *
 * Three runs in the same browser: the page idle (no stream), the live log as shipped (items
 * drawn once per animation frame, at most 500 rows), and the baseline that draws every item
 * as it arrives (?render=each; still bounded to 500 rows). Figures: frames per second, the
 * longest main-thread task, total long-task time, the largest row count seen, and the items
 * the page received.
 * Run: npm run bench:web-live-log
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { startConsoleServer } from '../src/console/web/server.js';
import { startHarness, USERS } from '../test/integration/admin-harness.js';
import { repoRoot } from '../test/repo-root.js';
import { launchChromium } from '../test/support/chromium.js';
import { formatRatio, reportMeasure } from './report.js';

const RATE = 10_000;
const SECONDS = process.env.BENCH_QUICK === '1' ? 3 : 6;
const TICK_MS = 10;

interface Figures {
  fps: number;
  /** The longest time between two frames: what a user sees as a freeze, even before a long task is reported. */
  longestFrameGapMs: number;
  /** Items the console skipped because the page could not take them (as the page reports). */
  skipped: number;
  longestTaskMs: number;
  longTaskMs: number;
  maxRows: number;
  received: number;
}

const root = repoRoot(import.meta.url);
const h = await startHarness();
const home = mkdtempSync(join(tmpdir(), 'warden-web-bench-'));
const web = await startConsoleServer({
  staticDir: join(root, 'dist/web'),
  enginesPath: join(home, 'engines.json'),
  knownHostsPath: join(home, 'known-hosts.json'),
});
const browser = await launchChromium();

async function openLiveLog(query: string): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(web.url);
  await page.goto(`http://127.0.0.1:${web.port}/${query}#/engines`);
  const card = page.locator('[data-engine="lab"]');
  await card.getByLabel('User').fill('alice');
  await card.getByLabel('Password').fill(USERS.alice!.password);
  await card.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { name: 'Live log' }).waitFor();
  return page;
}

/** Starts measuring in the page; the returned function stops and reads the figures. */
async function measure(page: Page): Promise<() => Promise<Figures>> {
  await page.evaluate(`(() => {
    const m = { frames: 0, longest: 0, longTotal: 0, maxRows: 0, gap: 0, last: performance.now(), start: performance.now(), stop: false };
    window.__m = m;
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) { m.longest = Math.max(m.longest, e.duration); m.longTotal += e.duration; }
    }).observe({ type: 'longtask' });
    const body = document.querySelector('[data-testid="log-rows"]');
    const tick = () => {
      if (m.stop) return;
      m.frames++;
      const now = performance.now(); m.gap = Math.max(m.gap, now - m.last); m.last = now;
      m.maxRows = Math.max(m.maxRows, body.childElementCount);
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  })()`);
  return async () => {
    const r = (await page.evaluate(`(() => {
      const m = window.__m; m.stop = true;
      const counts = document.querySelector('[data-testid="log-counts"]');
      return { frames: m.frames, seconds: (performance.now() - m.start) / 1000, longest: m.longest,
        longTotal: m.longTotal, maxRows: m.maxRows, received: Number(counts.dataset.received),
        gap: Math.max(m.gap, performance.now() - m.last), skipped: Number(counts.dataset.skipped ?? 0) };
    })()`)) as {
      frames: number;
      seconds: number;
      longest: number;
      longTotal: number;
      maxRows: number;
      received: number;
      gap: number;
      skipped: number;
    };
    return {
      fps: r.frames / r.seconds,
      longestFrameGapMs: r.gap,
      skipped: r.skipped,
      longestTaskMs: r.longest,
      longTaskMs: r.longTotal,
      maxRows: r.maxRows,
      received: r.received,
    };
  };
}

/** Appends RATE items a second for SECONDS, in ticks of TICK_MS. */
async function stream(): Promise<number> {
  const perTick = (RATE * TICK_MS) / 1000;
  const start = performance.now();
  let sent = 0;
  while (sent < RATE * SECONDS) {
    const due = Math.min(RATE * SECONDS, Math.floor(((performance.now() - start) / 1000) * RATE) + perTick);
    for (; sent < due; sent++)
      h.logs.append({
        kind: 'connection',
        verdict: sent % 5 === 0 ? 'deny' : 'allow',
        direction: 'outgoing',
        protocol: 'tcp',
        application: '/usr/bin/curl',
        remote: `192.0.2.${sent % 250}:443`,
        rule: 'web',
        message: `connection ${sent}`,
      });
    await new Promise((r) => setTimeout(r, TICK_MS));
  }
  return sent / ((performance.now() - start) / 1000);
}

async function run(label: string, query: string, withStream: boolean): Promise<Figures & { rate: number }> {
  const page = await openLiveLog(query);
  const stop = await measure(page);
  let rate = 0;
  if (withStream) rate = await stream();
  else await new Promise((r) => setTimeout(r, SECONDS * 1000));
  await new Promise((r) => setTimeout(r, 500)); // the last items reach the page
  const f = await stop();
  await page.close();
  console.log(
    `${label.padEnd(34)} ${f.fps.toFixed(1).padStart(5)} fps  longest frame gap ${f.longestFrameGapMs.toFixed(0).padStart(5)} ms  ` +
      `longest task ${f.longestTaskMs.toFixed(0).padStart(4)} ms  long tasks ${f.longTaskMs.toFixed(0).padStart(5)} ms  ` +
      `rows in DOM <= ${f.maxRows}  received ${f.received}` +
      (withStream
        ? ` of ${RATE * SECONDS} (sent at ${rate.toFixed(0)}/s, ${f.skipped} skipped by the console)`
        : ''),
  );
  return { ...f, rate };
}

try {
  // The engine is pinned once, as an administrator would after comparing fingerprints.
  const setup = await browser.newPage();
  await setup.goto(web.url);
  await setup.getByLabel('Name').fill('lab');
  await setup.getByLabel('Address').fill(`127.0.0.1:${h.server.port}`);
  await setup.getByRole('button', { name: 'Check fingerprint' }).click();
  await setup.getByRole('button', { name: /trust and add/ }).click();
  await setup.locator('[data-engine="lab"]').waitFor();
  await setup.close();

  console.log(`web live log, ${RATE} items/s for ${SECONDS} s, Chromium ${browser.version()}`);
  const idle = await run('idle page (no stream)', '', false);
  const batched = await run('live log (per frame, <= 500 rows)', '', true);
  const each = await run('baseline: draw every item', '?render=each', true);
  console.log(
    `frame rate kept while streaming: ${((100 * batched.fps) / idle.fps).toFixed(0)}% of idle; ` +
      `baseline ${((100 * each.fps) / idle.fps).toFixed(0)}%. ` +
      `longest frame gap, baseline / live log: ${(each.longestFrameGapMs / Math.max(1, batched.longestFrameGapMs)).toFixed(1)}x`,
  );
  reportMeasure({
    measure: `web live log: frames/s while streaming ${RATE.toLocaleString('en')} items/s`,
    goal: '',
    measured: `${batched.fps.toFixed(1)} fps (longest frame gap ${batched.longestFrameGapMs.toFixed(0)} ms)`,
    baseline: `${idle.fps.toFixed(1)} fps (idle page)`,
    ratio: formatRatio(batched.fps, idle.fps),
    met: null,
  });
} finally {
  await browser.close();
  await web.close();
  await h.close();
  rmSync(home, { recursive: true, force: true });
}
