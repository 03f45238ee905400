#!/usr/bin/env node
// End-to-end test of "Sign in with …" in the Beaver web UI: a Beaver whose generic OIDC provider is a local
// mockoidc (e2e/web_test.go starts both). The sign-in page shows the provider's button; clicking it goes to the
// provider, which signs E2E_OIDC_EMAIL in at once and sends the browser back through the callback to the
// dashboard, signed in; the Security page lists the linked identity. Exits non-zero on failure.
import { chromium } from 'playwright-core';

const BASE = (process.env.BEAVER_URL ?? '').replace(/\/+$/, '');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const EMAIL = process.env.E2E_OIDC_EMAIL ?? '';
const TIMEOUT = Number(process.env.E2E_TIMEOUT_MS ?? 20000);

function fail(msg) {
  console.error(`\nE2E FAILED: ${msg}`);
  process.exit(1);
}
if (!BASE || !EMAIL) fail('set BEAVER_URL and E2E_OIDC_EMAIL');

const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(TIMEOUT);
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${BASE}/login`);
  const button = page.getByTestId('oauth-oidc');
  await button.waitFor();
  if (!(await button.textContent()).includes('Acme SSO')) fail(`button reads ${await button.textContent()}`);
  await button.click();
  await page.waitForURL(`${BASE}/dashboard`);
  if (page.url().includes('#')) fail(`the code stayed in the URL: ${page.url()}`);
  const who = await page.getByTestId('nav-email').textContent();
  if (who.trim() !== EMAIL) fail(`signed in as ${who}, want ${EMAIL}`);
  console.log(`✓ signed in with the OIDC provider as ${who.trim()}`);
  await page.getByTestId('nav-security').click();
  await page.getByTestId('identities').waitFor();
  const rows = await page.locator('[data-testid=identities] tbody tr').count();
  if (rows !== 1) fail(`${rows} identities listed, want 1`);
  if (!(await page.locator('[data-testid=identities]').textContent()).includes(EMAIL)) fail('identity email not shown');
  console.log('✓ the Security page lists the linked identity');
  if (errors.length) fail(`page errors: ${errors.join('; ')}`);
} catch (e) {
  fail(String(e?.stack ?? e));
} finally {
  await browser.close();
}
