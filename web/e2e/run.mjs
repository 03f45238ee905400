#!/usr/bin/env node
// End-to-end test of the Beaver web UI against a running Beaver (or e2e/mock-server.mjs).
//
//   BEAVER_URL=http://127.0.0.1:8080 ADMIN_EMAIL=admin@localhost ADMIN_PASSWORD=... npm run e2e
//
// Optional: CHROMIUM_PATH (default /usr/bin/chromium), E2E_MODEL (default openai/gpt-4o-mini),
// E2E_TOPUP_USD (default 5), E2E_TIMEOUT_MS (default 20000 per step action), E2E_HEADFUL=1.
//
// Flow: home → register → sign in → dashboard → create key (secret shown once) →
// admin (separate browser context) signs in and tops the user up → user chats in the
// playground with streaming and sees the balance drop by exactly the shown cost →
// rotate the key (old secret dead, new one works) → billing/transactions → mobile
// screenshots → sign out. Screenshots go to e2e/artifacts/. Exits non-zero on failure.
import { chromium } from 'playwright-core';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const ART = join(here, 'artifacts');

const BASE = (process.env.BEAVER_URL ?? '').replace(/\/+$/, '');
const ADMIN_EMAIL = process.env.ADMIN_EMAIL ?? '';
const ADMIN_PASSWORD = process.env.ADMIN_PASSWORD ?? '';
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const MODEL = process.env.E2E_MODEL ?? 'openai/gpt-4o-mini';
const TOPUP_USD = process.env.E2E_TOPUP_USD ?? '5';
const TIMEOUT = Number(process.env.E2E_TIMEOUT_MS ?? 20000);

function fail(msg) {
  console.error(`\nE2E FAILED: ${msg}`);
  process.exit(1);
}
if (!BASE || !ADMIN_EMAIL || !ADMIN_PASSWORD) {
  fail('set BEAVER_URL, ADMIN_EMAIL and ADMIN_PASSWORD (e.g. BEAVER_URL=http://127.0.0.1:8080).');
}

const usdToMicros = (s) => {
  const m = /^(\d+)(?:\.(\d{1,6}))?$/.exec(s);
  if (!m) fail(`E2E_TOPUP_USD must be a plain decimal, got ${s}`);
  return BigInt(m[1]) * 1000000n + BigInt((m[2] ?? '').padEnd(6, '0'));
};
/** Mirrors src/lib/money.ts formatMicros for checking the displayed text. */
const formatMicros = (v) => {
  const neg = v < 0n;
  const a = neg ? -v : v;
  let frac = (a % 1000000n).toString().padStart(6, '0');
  while (frac.length > 2 && frac.endsWith('0')) frac = frac.slice(0, -1);
  return `${neg ? '-' : ''}$${(a / 1000000n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',')}.${frac}`;
};

const problems = []; // CSP violations and uncaught page errors, collected from every page
let stepNo = 0;
let currentStep = '';
const pagesForFailureShots = new Map();

async function shot(page, name) {
  const file = join(ART, `${String(++stepNo).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`   screenshot ${file}`);
}

async function step(name, fn) {
  currentStep = name;
  const t0 = Date.now();
  process.stdout.write(`• ${name} … `);
  try {
    await fn();
  } catch (e) {
    console.log('FAILED');
    for (const [label, page] of pagesForFailureShots) {
      try {
        await page.screenshot({ path: join(ART, `FAILED-${label}.png`), fullPage: true });
        console.error(`  failure screenshot: ${join(ART, `FAILED-${label}.png`)} (url ${page.url()})`);
        const alerts = await page.locator('[role="alert"]').allInnerTexts();
        if (alerts.length) console.error(`  alerts on the ${label} page: ${alerts.join(' | ')}`);
      } catch {
        /* page may be gone */
      }
    }
    throw new Error(`step "${name}": ${e?.message ?? e}`);
  }
  if (problems.length) throw new Error(`step "${name}": ${problems.join('; ')}`);
  console.log(`ok (${Date.now() - t0} ms)`);
}

function watch(page, label) {
  pagesForFailureShots.set(label, page);
  page.setDefaultTimeout(TIMEOUT);
  page.on('pageerror', (err) => problems.push(`[${label}] uncaught error in page: ${err.message}`));
  page.on('console', (msg) => {
    const t = msg.text();
    if (/Content Security Policy|Refused to (load|execute|apply|connect)/i.test(t)) problems.push(`[${label}] CSP violation: ${t}`);
  });
}

const tid = (id) => `[data-testid="${id}"]`;
async function micros(page, id) {
  const v = await page.locator(tid(id)).first().getAttribute('data-micros');
  if (v === null || !/^-?\d+$/.test(v)) throw new Error(`${id} has no integer data-micros (got ${v})`);
  return BigInt(v);
}
async function apiStatus(path, bearer) {
  const res = await fetch(BASE + path, { headers: { Authorization: `Bearer ${bearer}` } });
  return res.status;
}
async function expectUrl(page, re) {
  await page.waitForURL((u) => re.test(u.pathname + u.search), { timeout: TIMEOUT });
}
/** Navigates inside the SPA by clicking the main nav link (opening the mobile menu if needed). */
async function nav(page, id) {
  const link = page.locator(tid(id));
  if (!(await link.isVisible())) await page.locator(tid('nav-toggle')).click();
  await link.click();
}

async function noOverflow(page, what) {
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  if (overflow > 1) throw new Error(`the ${what} page overflows horizontally by ${overflow}px at ${page.viewportSize()?.width}px`);
}

async function main() {
  await mkdir(ART, { recursive: true });
  for (const f of await readdir(ART)) if (f.endsWith('.png')) await rm(join(ART, f));
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: process.env.E2E_HEADFUL !== '1',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run'].filter(
      (a) => process.env.E2E_HEADFUL !== '1' || a !== '--headless',
    ),
  });
  const stamp = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const email = `e2e-${stamp}@example.com`;
  const password = `Beaver-e2e-${stamp}-pw!`;
  const keyName = `e2e key ${stamp}`;
  const topup = usdToMicros(TOPUP_USD);
  let secret1 = '';
  let secret2 = '';

  try {
    const userCtx = await browser.newContext({ viewport: { width: 1280, height: 860 }, baseURL: BASE });
    const page = await userCtx.newPage();
    watch(page, 'user');

    await step('home page lists models and prices', async () => {
      const res = await page.goto('/');
      if (!res || res.status() !== 200) throw new Error(`GET / answered ${res?.status()}`);
      const csp = res.headers()['content-security-policy'] ?? '';
      if (!csp.includes("default-src 'self'")) throw new Error(`missing or weak Content-Security-Policy on /: "${csp}"`);
      await page.locator(tid('model-row')).first().waitFor();
      const ids = await page.locator(tid('model-row')).evaluateAll((rows) => rows.map((r) => r.getAttribute('data-model')));
      if (!ids.includes(MODEL)) throw new Error(`model ${MODEL} is not listed on the home page (have: ${ids.join(', ')})`);
      await shot(page, 'home');
    });

    await step(`register ${email}`, async () => {
      await page.locator(tid('nav-register')).click();
      await expectUrl(page, /^\/register/);
      await page.locator(tid('register-email')).fill(email);
      await page.locator(tid('register-name')).fill('E2E User');
      await page.locator(tid('register-password')).fill(password);
      await shot(page, 'register');
      await page.locator(tid('register-submit')).click();
      await Promise.race([
        page.locator(tid('registered-notice')).waitFor(),
        page.locator(tid('register-error')).waitFor().then(async () => {
          throw new Error(`registration error: ${await page.locator(tid('register-error')).innerText()}`);
        }),
      ]);
      await expectUrl(page, /^\/login/);
    });

    await step('sign in as the new user', async () => {
      const prefilled = await page.locator(tid('login-email')).inputValue();
      if (prefilled !== email) await page.locator(tid('login-email')).fill(email);
      await page.locator(tid('login-password')).fill(password);
      await shot(page, 'sign-in');
      await page.locator(tid('login-submit')).click();
      await expectUrl(page, /^\/dashboard/);
      await page.locator(tid('dash-balance')).waitFor();
      const bal = await micros(page, 'dash-balance');
      if (bal !== 0n) console.log(`\n   note: a new account starts with ${formatMicros(bal)}`);
      await page.locator(tid('usage-chart')).waitFor();
      await shot(page, 'dashboard');
      // A reload keeps the tab signed in (refresh token in sessionStorage → POST /auth/refresh).
      await page.reload();
      await page.locator(tid('dash-balance')).waitFor();
      const who = await page.locator(tid('nav-email')).innerText();
      if (who.trim() !== email) throw new Error(`after a reload the header shows "${who}", want ${email}`);
    });

    await step('usage report emails: monthly by default, weekly after saving, kept after a reload', async () => {
      const select = page.locator(tid('usage-reports-select'));
      if ((await select.inputValue()) !== 'monthly') throw new Error(`usage reports start as "${await select.inputValue()}", want monthly`);
      await select.selectOption('weekly');
      await page.locator(tid('usage-reports-save')).click();
      await page.locator(tid('usage-reports-saved')).waitFor();
      await page.reload();
      await page.locator(tid('usage-reports-select')).waitFor();
      const after = await page.locator(tid('usage-reports-select')).inputValue();
      if (after !== 'weekly') throw new Error(`after a reload usage reports show "${after}", want weekly`);
    });

    await step('create an API key and see its secret once', async () => {
      await nav(page, 'nav-keys');
      await expectUrl(page, /^\/keys/);
      await page.locator(tid('key-new')).click();
      await page.locator(tid('key-name')).fill(keyName);
      await page.locator(tid('key-spend-limit')).fill('2.50');
      await page.locator(tid('key-limit-reset')).selectOption('daily');
      await page.locator(tid('key-rpm')).fill('30');
      await page.locator(tid('key-submit')).click();
      await page.locator(tid('key-secret')).waitFor();
      secret1 = await page.locator(tid('key-secret')).inputValue();
      if (!secret1.startsWith('sk-beaver-')) throw new Error(`secret does not look like a Beaver key: ${secret1.slice(0, 12)}…`);
      await shot(page, 'key-created-secret');
      await page.locator(tid('key-secret-done')).click();
      await page.locator(tid('key-secret-box')).waitFor({ state: 'detached' });
      const html = await page.content();
      if (html.includes(secret1)) throw new Error('the key secret is still in the page after dismissing it');
      const row = page.locator(`${tid('key-row')}[data-key-name="${keyName}"]`);
      await row.waitFor();
      const st = await apiStatus('/auth/me', secret1);
      if (st !== 200) throw new Error(`GET /auth/me with the new key answered ${st}, want 200`);
      await row.locator(tid('key-details-toggle')).click();
      await row.locator(tid('key-details')).locator('.meter-wrap').first().waitFor();
      await shot(page, 'keys');
    });

    await step('admin signs in (separate context) and tops up the user', async () => {
      const adminCtx = await browser.newContext({ viewport: { width: 1280, height: 860 }, baseURL: BASE });
      const admin = await adminCtx.newPage();
      watch(admin, 'admin');
      await admin.goto('/login');
      await admin.locator(tid('login-email')).fill(ADMIN_EMAIL);
      await admin.locator(tid('login-password')).fill(ADMIN_PASSWORD);
      await admin.locator(tid('login-submit')).click();
      await Promise.race([
        expectUrl(admin, /^\/dashboard/),
        admin.locator(tid('login-error')).waitFor().then(async () => {
          throw new Error(`admin sign-in failed: ${await admin.locator(tid('login-error')).innerText()}`);
        }),
      ]);
      await nav(admin, 'nav-admin');
      await expectUrl(admin, /^\/manage\/accounts/);
      await admin.locator(tid('admin-search-input')).fill(email);
      await admin.locator(tid('admin-search-submit')).click();
      const row = admin.locator(`${tid('admin-account-row')}[data-email="${email}"]`);
      await row.waitFor();
      await shot(admin, 'admin-accounts');
      await row.locator(tid('admin-account-link')).click();
      await admin.locator(tid('admin-account-balance')).waitFor();
      const before = await micros(admin, 'admin-account-balance');
      await admin.locator(tid('admin-topup-amount')).fill(TOPUP_USD);
      await admin.locator(tid('admin-topup-note')).fill(`e2e ${stamp}`);
      await admin.locator(tid('admin-topup-submit')).click();
      await Promise.race([
        admin.locator(tid('admin-topup-result')).waitFor(),
        admin.locator(tid('admin-topup-error')).waitFor().then(async () => {
          throw new Error(`top-up failed: ${await admin.locator(tid('admin-topup-error')).innerText()}`);
        }),
      ]);
      const after = await micros(admin, 'admin-topup-new-balance');
      if (after !== before + topup) throw new Error(`balance after top-up ${after}, want ${before} + ${topup}`);
      const shown = await micros(admin, 'admin-account-balance');
      if (shown !== after) throw new Error(`account page shows ${shown}, the top-up answered ${after}`);
      await shot(admin, 'admin-topped-up');
      await admin.locator('nav[aria-label="Admin"] a', { hasText: 'Models' }).click();
      await admin.locator(tid('admin-model-row')).first().waitFor();
      await shot(admin, 'admin-models');
      await admin.locator(tid('sign-out')).click();
      await expectUrl(admin, /^\/login/);
      pagesForFailureShots.delete('admin');
      await adminCtx.close();
    });

    await step(`chat with ${MODEL} (streaming) and check the balance drops by exactly the cost`, async () => {
      await nav(page, 'nav-playground');
      await expectUrl(page, /^\/playground/);
      await page.locator(`${tid('pg-model')} option[value="${MODEL}"]`).waitFor({ state: 'attached' });
      await page.locator(tid('pg-model')).selectOption(MODEL);
      await page.locator(tid('pg-balance')).waitFor();
      const before = await micros(page, 'pg-balance');
      if (before < topup) throw new Error(`playground balance ${before} is below the top-up ${topup}: did the top-up land?`);
      await page.locator(tid('pg-input')).fill('Say hello to the beaver in a few words.');
      await page.locator(tid('pg-send')).click();
      // Token-by-token: the reply must be visible while it is still streaming.
      await page.waitForFunction(
        () => {
          const m = [...document.querySelectorAll('[data-testid="msg-assistant"]')].pop();
          return !!m && (m.getAttribute('data-streaming') === 'true' ? m.querySelector('[data-testid="assistant-text"]')?.textContent?.trim().length > 0 : false);
        },
        undefined,
        { timeout: 30000 },
      );
      await page.locator(tid('pg-stop')).waitFor();
      await shot(page, 'playground-streaming');
      await page.locator(tid('pg-balance-after')).waitFor({ timeout: 60000 });
      const errs = await page.locator(tid('pg-error')).allInnerTexts();
      if (errs.length) throw new Error(`the reply shows an error: ${errs.join(' | ')}`);
      const text = (await page.locator(tid('assistant-text')).last().innerText()).trim();
      if (!text) throw new Error('the assistant reply is empty');
      const cost = await micros(page, 'pg-last-cost');
      const after = await micros(page, 'pg-balance-after');
      const header = await micros(page, 'pg-balance');
      if (cost <= 0n) throw new Error(`cost shown is ${cost} micros, want > 0`);
      if (before - cost !== after) throw new Error(`balance ${before} − cost ${cost} = ${before - cost}, but the balance after is ${after}`);
      if (header !== after) throw new Error(`header balance ${header} differs from the balance after the reply ${after}`);
      const costText = (await page.locator(tid('pg-last-cost')).innerText()).trim();
      if (costText !== formatMicros(cost)) throw new Error(`cost text "${costText}", want "${formatMicros(cost)}"`);
      const tokens = await page.locator(tid('pg-tokens')).last().innerText();
      if (!/\d+ prompt \+ \d+ completion tokens/.test(tokens)) throw new Error(`token counts not shown: "${tokens}"`);
      console.log(`\n   reply: "${text.slice(0, 60)}${text.length > 60 ? '…' : ''}"; ${tokens}; cost ${costText}; balance ${formatMicros(before)} → ${formatMicros(after)}`);
      await shot(page, 'playground-done');
    });

    await step('rotate the key: the old secret dies, the new one works', async () => {
      await nav(page, 'nav-keys');
      const row = page.locator(`${tid('key-row')}[data-key-name="${keyName}"]`);
      await row.waitFor();
      const idBefore = await row.getAttribute('data-key-id');
      await row.locator(tid('key-rotate')).click();
      await row.locator(tid('key-confirm')).click();
      await page.locator(tid('key-secret')).waitFor();
      secret2 = await page.locator(tid('key-secret')).inputValue();
      if (!secret2.startsWith('sk-beaver-') || secret2 === secret1) throw new Error('rotation did not show a new secret');
      await shot(page, 'key-rotated');
      await page.locator(tid('key-secret-done')).click();
      const idAfter = await page.locator(`${tid('key-row')}[data-key-name="${keyName}"]`).getAttribute('data-key-id');
      if (idAfter !== idBefore) throw new Error(`key id changed on rotation: ${idBefore} → ${idAfter}`);
      const oldSt = await apiStatus('/auth/me', secret1);
      const newSt = await apiStatus('/auth/me', secret2);
      if (oldSt !== 401) throw new Error(`old secret answered ${oldSt}, want 401`);
      if (newSt !== 200) throw new Error(`new secret answered ${newSt}, want 200`);
    });

    await step('billing shows the top-up and the charge', async () => {
      await nav(page, 'nav-billing');
      await page.locator(tid('tx-row')).first().waitFor();
      const types = await page.locator(tid('tx-row')).evaluateAll((rows) => rows.map((r) => r.getAttribute('data-type')));
      if (!types.includes('topup') || !types.includes('charge')) throw new Error(`ledger types ${types.join(', ')}: want a topup and a charge`);
      await page.locator(`${tid('auto-recharge')} :is(form, ${tid('auto-recharge-unavailable')})`).first().waitFor();
      await shot(page, 'billing');
    });

    await step('the top-up issued an invoice, downloaded as a PDF', async () => {
      const row = page.locator(tid('invoice-row')).first();
      await row.waitFor();
      const number = (await row.locator('td').first().innerText()).trim();
      if (!/^[A-Z0-9]+-\d{4}-\d{6}$/.test(number)) throw new Error(`invoice number "${number}"`);
      const [download] = await Promise.all([page.waitForEvent('download'), row.getByRole('button', { name: 'Download' }).click()]);
      if (download.suggestedFilename() !== `${number}.pdf`) throw new Error(`downloaded "${download.suggestedFilename()}"`);
      const head = (await readFile(await download.path())).subarray(0, 5).toString();
      if (head !== '%PDF-') throw new Error(`the download starts with "${head}", not a PDF`);
    });

    await step('360 px wide: home, menu, dashboard, playground, keys', async () => {
      await page.setViewportSize({ width: 360, height: 740 });
      await nav(page, 'nav-home');
      await page.locator(tid('model-row')).first().waitFor();
      await noOverflow(page, 'home');
      await shot(page, 'mobile-home');
      await page.locator(tid('nav-toggle')).click();
      await page.locator(tid('nav-keys')).waitFor();
      await page.screenshot({ path: join(ART, `${String(++stepNo).padStart(2, '0')}-mobile-menu.png`) });
      await nav(page, 'nav-dashboard');
      await page.locator(tid('dash-balance')).waitFor();
      await page.locator(tid('usage-chart')).waitFor();
      await page.locator(tid('dash-month-spend')).waitFor();
      await noOverflow(page, 'dashboard');
      await shot(page, 'mobile-dashboard');
      await nav(page, 'nav-playground');
      await page.locator(tid('pg-messages')).waitFor();
      await noOverflow(page, 'playground');
      await shot(page, 'mobile-playground');
      await nav(page, 'nav-keys');
      await page.locator(tid('key-row')).first().waitFor();
      await noOverflow(page, 'keys');
      await shot(page, 'mobile-keys');
      await nav(page, 'nav-billing');
      await page.locator(tid('tx-row')).first().waitFor();
      await noOverflow(page, 'billing');
      await shot(page, 'mobile-billing');
      await page.setViewportSize({ width: 1280, height: 860 });
    });

    await step('sign out', async () => {
      await page.locator(tid('sign-out')).click();
      await expectUrl(page, /^\/login/);
      await page.locator(tid('login-form')).waitFor();
      // A protected page now sends us back to sign in, also after a reload.
      await page.goto('/dashboard');
      await expectUrl(page, /^\/login/);
      await shot(page, 'signed-out');
    });

    console.log(`\nE2E PASSED: ${stepNo} screenshots in ${ART}`);
  } finally {
    await browser.close();
  }
}

main().catch((e) => fail(e?.message ?? String(e)));
