#!/usr/bin/env node
// End-to-end test of the live operations view in Chromium, against a running
// Beaver whose providers point at the fake upstream. Run by
// e2e/web_test.go (TestWebOperationsInChromium), which sent E2E_REQUESTS
// chat requests with E2E_KEY before starting it.
//
//   BEAVER_URL=... ADMIN_EMAIL=... ADMIN_PASSWORD=... E2E_KEY=sk-... E2E_REQUESTS=2 node e2e/ops.mjs
//
// Optional: CHROMIUM_PATH, E2E_MODEL (default openai/gpt-4o-mini),
// E2E_TIMEOUT_MS, E2E_HEADFUL=1. Screenshots go to e2e/artifacts/ops-*.png.
//
// Flow: admin signs in → opens Operations from the admin sub-navigation →
// sees the requests already made, the model's row, a charge and the
// Temporal status → one more chat request through the API → the page shows
// it without a reload (the event stream) → the 24h range shows the same
// traffic. Every wait is on a DOM condition, never on time.
import { chromium } from 'playwright-core';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const ART = join(here, 'artifacts');

const BASE = (process.env.BEAVER_URL ?? '').replace(/\/+$/, '');
const ADMIN_EMAIL = process.env.ADMIN_EMAIL ?? '';
const ADMIN_PASSWORD = process.env.ADMIN_PASSWORD ?? '';
const KEY = process.env.E2E_KEY ?? '';
const BEFORE = Number(process.env.E2E_REQUESTS ?? 0);
const MODEL = process.env.E2E_MODEL ?? 'openai/gpt-4o-mini';
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const TIMEOUT = Number(process.env.E2E_TIMEOUT_MS ?? 20000);

function fail(msg) {
  console.error(`\nE2E FAILED: ${msg}`);
  process.exit(1);
}
if (!BASE || !ADMIN_EMAIL || !ADMIN_PASSWORD || !KEY || !BEFORE) fail('set BEAVER_URL, ADMIN_EMAIL, ADMIN_PASSWORD, E2E_KEY and E2E_REQUESTS.');

const problems = []; // CSP violations and uncaught page errors
let stepNo = 0;
let page;

async function shot(name) {
  await page.screenshot({ path: join(ART, `ops-${String(++stepNo).padStart(2, '0')}-${name}.png`), fullPage: true });
}

async function step(name, fn) {
  const t0 = Date.now();
  process.stdout.write(`• ${name} … `);
  try {
    await fn();
  } catch (e) {
    console.log('FAILED');
    try {
      await page.screenshot({ path: join(ART, 'ops-FAILED.png'), fullPage: true });
      const alerts = await page.locator('[role="alert"]').allInnerTexts();
      if (alerts.length) console.error(`  alerts on the page: ${alerts.join(' | ')}`);
    } catch {
      /* page may be gone */
    }
    throw new Error(`step "${name}": ${e?.message ?? e}`);
  }
  if (problems.length) throw new Error(`step "${name}": ${problems.join('; ')}`);
  console.log(`ok (${Date.now() - t0} ms)`);
}

const tid = (id) => `[data-testid="${id}"]`;

/** Waits until the element's text is exactly want. */
async function textIs(testid, want) {
  await page.waitForFunction(
    ([sel, w]) => document.querySelector(sel)?.textContent?.trim() === w,
    [tid(testid), want],
  );
}

async function chat() {
  const res = await fetch(`${BASE}/v1/chat/completions`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'live update [[words:4]]' }] }),
  });
  if (res.status !== 200) throw new Error(`chat answered ${res.status}: ${await res.text()}`);
}

async function main() {
  await mkdir(ART, { recursive: true });
  for (const f of await readdir(ART)) if (f.startsWith('ops-') && f.endsWith('.png')) await rm(join(ART, f));
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: process.env.E2E_HEADFUL !== '1',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run'],
  });
  try {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, baseURL: BASE });
    page = await ctx.newPage();
    page.setDefaultTimeout(TIMEOUT);
    page.on('pageerror', (err) => problems.push(`uncaught error in page: ${err.message}`));
    page.on('console', (msg) => {
      const t = msg.text();
      if (/Content Security Policy|Refused to (load|execute|apply|connect)/i.test(t)) problems.push(`CSP violation: ${t}`);
    });

    await step('admin signs in and opens Operations', async () => {
      await page.goto('/login');
      await page.locator(tid('login-email')).fill(ADMIN_EMAIL);
      await page.locator(tid('login-password')).fill(ADMIN_PASSWORD);
      await page.locator(tid('login-submit')).click();
      await Promise.race([
        page.waitForURL((u) => u.pathname === '/dashboard'),
        page.locator(tid('login-error')).waitFor().then(async () => {
          throw new Error(`sign-in failed: ${await page.locator(tid('login-error')).innerText()}`);
        }),
      ]);
      await page.locator(tid('nav-admin')).click();
      await page.waitForURL((u) => u.pathname.startsWith('/manage/accounts'));
      await page.locator(tid('admin-nav-operations')).click();
      await page.waitForURL((u) => u.pathname === '/manage/operations');
      await page.locator(`${tid('ops-link')}[data-state="live"]`).waitFor();
    });

    await step(`the ${BEFORE} requests made before show, with their model, charge and Temporal's status`, async () => {
      await textIs('ops-requests', String(BEFORE));
      const row = page.locator(`${tid('ops-model-row')}[data-model="${MODEL}"]`);
      await row.waitFor();
      const n = (await row.locator(tid('ops-model-requests')).innerText()).trim();
      if (n !== String(BEFORE)) throw new Error(`the model's row says ${n} requests`);
      const charged = (await page.locator(tid('ops-charged')).innerText()).trim();
      if (!/^\$\d/.test(charged) || /^\$0\.00$/.test(charged)) throw new Error(`charged reads "${charged}"`);
      const wf = await page.locator(tid('ops-workflows-unavailable')).innerText();
      if (!/Temporal/.test(wf)) throw new Error(`workflows read "${wf}"`);
      if ((await page.locator(tid('ops-breaker-row')).count()) === 0) throw new Error('no circuit breaker rows');
      await page.locator(tid('ops-requests-spark')).waitFor();
      await shot('before');
    });

    await step('a new request arrives live, without a reload', async () => {
      const updates = Number(await page.locator(tid('ops-link')).getAttribute('data-updates'));
      await page.evaluate(() => {
        window.__opsMarker = true; // gone if the page reloads
      });
      await chat();
      await textIs('ops-requests', String(BEFORE + 1));
      const after = Number(await page.locator(tid('ops-link')).getAttribute('data-updates'));
      if (!(after > updates)) throw new Error(`updates ${updates} → ${after}`);
      if (!(await page.evaluate(() => window.__opsMarker === true))) throw new Error('the page reloaded');
      await shot('live-update');
    });

    await step('the 24h range shows the same traffic', async () => {
      await page.locator(tid('ops-range-24h')).click();
      await page.locator(`${tid('ops-range-24h')}[aria-pressed="true"]`).waitFor();
      await textIs('ops-requests', String(BEFORE + 1));
      await shot('24h');
    });

    await step('360 px wide: the page does not overflow', async () => {
      await page.setViewportSize({ width: 360, height: 740 });
      await page.locator(tid('ops-requests')).waitFor();
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      if (overflow > 1) throw new Error(`the page overflows horizontally by ${overflow}px`);
      await shot('mobile');
    });

    console.log(`\nE2E PASSED: ${stepNo} screenshots in ${ART}`);
  } finally {
    await browser.close();
  }
}

main().catch((e) => fail(e?.message ?? String(e)));
