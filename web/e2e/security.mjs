#!/usr/bin/env node
// End-to-end test of the security page and the sign-in steps it adds, in Chromium:
//
//   BEAVER_URL=http://127.0.0.1:8080 node e2e/security.mjs
//
// Flow (on http://localhost:<port>: browsers refuse an IP address as a WebAuthn relying party):
// register (API) → sign in → Security: add a passkey with Chromium's virtual authenticator
// (DevTools WebAuthn.addVirtualAuthenticator) → enrol TOTP (QR shown, code computed here from the
// shown secret) → the ten recovery codes are shown once → sign out → sign in with the password: the
// code step appears, a wrong code is refused, the right one signs in → sign out → sign in with the
// passkey (no code asked) → remove the passkey. Screenshots go to e2e/artifacts/security-*.png.
import { chromium } from 'playwright-core';
import { createHmac } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const ART = join(here, 'artifacts');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const TIMEOUT = Number(process.env.E2E_TIMEOUT_MS ?? 20000);
const raw = new URL((process.env.BEAVER_URL ?? '').replace(/\/+$/, '') || 'http://127.0.0.1:8080');
if (raw.hostname === '127.0.0.1' || raw.hostname === '[::1]') raw.hostname = 'localhost';
const BASE = raw.origin;

const tid = (id) => `[data-testid="${id}"]`;
const problems = [];
let page;

async function step(name, fn) {
  process.stdout.write(`• ${name} … `);
  try {
    await fn();
  } catch (e) {
    console.log('FAILED');
    try {
      await page.screenshot({ path: join(ART, 'FAILED-security.png'), fullPage: true });
      const alerts = await page.locator('[role="alert"]').allInnerTexts();
      if (alerts.length) console.error(`  alerts: ${alerts.join(' | ')}`);
      console.error(`  url: ${page.url()}`);
    } catch {
      /* page may be gone */
    }
    throw new Error(`step "${name}": ${e?.message ?? e}`);
  }
  if (problems.length) throw new Error(`step "${name}": ${problems.join('; ')}`);
  console.log('ok');
}

/** RFC 6238 code (SHA-1, 6 digits, 30 s) of a base32 secret at t ms. */
function totp(secret, t) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const ch of secret.replace(/=+$/, '').toUpperCase()) bits += alphabet.indexOf(ch).toString(2).padStart(5, '0');
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(t / 1000 / 30)));
  const mac = createHmac('sha1', key).update(counter).digest();
  const o = mac[mac.length - 1] & 0xf;
  return String((mac.readUInt32BE(o) & 0x7fffffff) % 1000000).padStart(6, '0');
}

async function expectPath(re) {
  await page.waitForURL((u) => re.test(u.pathname), { timeout: TIMEOUT });
}

async function signOut() {
  if (!(await page.locator(tid('sign-out')).isVisible())) await page.locator(tid('nav-toggle')).click();
  await page.locator(tid('sign-out')).click();
  await expectPath(/^\/login/);
}

async function main() {
  await mkdir(ART, { recursive: true });
  const stamp = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const email = `sec-${stamp}@example.com`;
  const password = `Beaver-sec-${stamp}-pw!`;
  const reg = await fetch(`${BASE}/auth/register`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ email, password }),
  });
  if (reg.status !== 201) throw new Error(`register answered ${reg.status}: ${await reg.text()}`);

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  try {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, baseURL: BASE });
    page = await ctx.newPage();
    page.setDefaultTimeout(TIMEOUT);
    page.on('pageerror', (err) => problems.push(`uncaught error in page: ${err.message}`));
    page.on('console', (msg) => {
      if (/Content Security Policy|Refused to/i.test(msg.text())) problems.push(`CSP violation: ${msg.text()}`);
    });
    const cdp = await ctx.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
    });

    const signInWithPassword = async () => {
      await page.locator(tid('login-email')).fill(email);
      await page.locator(tid('login-password')).fill(password);
      await page.locator(tid('login-submit')).click();
    };

    await step('sign in with the password', async () => {
      await page.goto('/login');
      await signInWithPassword();
      await expectPath(/^\/dashboard/);
    });

    await step('add a passkey on the security page (virtual authenticator)', async () => {
      if (!(await page.locator(tid('nav-security')).isVisible())) await page.locator(tid('nav-toggle')).click();
      await page.locator(tid('nav-security')).click();
      await expectPath(/^\/security/);
      await page.locator(tid('passkeys-empty')).waitFor();
      await page.locator(tid('passkey-name')).fill('e2e virtual key');
      await page.locator(tid('passkey-add')).click();
      await page.locator(tid('passkey-row')).first().waitFor();
      const text = await page.locator(tid('passkey-row')).first().innerText();
      if (!text.includes('e2e virtual key')) throw new Error(`passkey row shows "${text}"`);
      const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
      if (credentials.length !== 1 || !credentials[0].isResidentCredential) throw new Error(`authenticator holds ${JSON.stringify(credentials)}`);
    });

    let secret = '';
    await step('enrol two-factor: QR code, confirm with a code, recovery codes shown once', async () => {
      await page.locator(tid('twofactor-enroll')).click();
      await page.locator(tid('totp-qr')).waitFor();
      secret = (await page.locator(tid('totp-secret')).innerText()).trim();
      if (!/^[A-Z2-7]{16,}$/.test(secret)) throw new Error(`secret "${secret}"`);
      await page.locator(tid('totp-confirm-code')).fill('000000');
      await page.locator(tid('totp-confirm')).click();
      await page.locator(tid('totp-confirm-error')).waitFor();
      await page.locator(tid('totp-confirm-code')).fill(totp(secret, Date.now()));
      await page.locator(tid('totp-confirm')).click();
      await page.locator(tid('recovery-codes')).waitFor();
      const codes = await page.locator(tid('recovery-code')).allInnerTexts();
      if (codes.length !== 10) throw new Error(`${codes.length} recovery codes shown`);
      await page.screenshot({ path: join(ART, 'security-recovery-codes.png'), fullPage: true });
      await page.locator(tid('recovery-codes-done')).click();
      if (await page.locator(tid('recovery-code')).count()) throw new Error('recovery codes still shown');
      await page.locator(tid('twofactor-disable')).waitFor();
      const left = await page.locator(tid('recovery-codes-left')).innerText();
      if (!left.startsWith('10 of 10')) throw new Error(`recovery codes left: "${left}"`);
    });

    await step('sign in with the password asks for the code; a wrong one is refused', async () => {
      await signOut();
      await signInWithPassword();
      await page.locator(tid('mfa-form')).waitFor();
      await page.screenshot({ path: join(ART, 'security-2fa-step.png'), fullPage: true });
      await page.locator(tid('mfa-code')).fill('000000');
      await page.locator(tid('mfa-submit')).click();
      await page.locator(tid('mfa-error')).waitFor();
      // The next step's code: later than the one used to confirm, so not a replay.
      await page.locator(tid('mfa-code')).fill(totp(secret, Date.now() + 30000));
      await page.locator(tid('mfa-submit')).click();
      await expectPath(/^\/dashboard/);
    });

    await step('sign in with the passkey, without a code', async () => {
      await signOut();
      await page.locator(tid('passkey-login')).click();
      await expectPath(/^\/dashboard/);
      const who = await page.locator(tid('nav-email')).innerText();
      if (who.trim() !== email) throw new Error(`signed in as "${who}"`);
    });

    await step('remove the passkey', async () => {
      await page.goto('/security');
      await page.locator(tid('passkey-row')).first().waitFor();
      await page.locator(tid('passkey-remove')).first().click();
      await page.locator(tid('passkeys-empty')).waitFor();
      await page.screenshot({ path: join(ART, 'security-page.png'), fullPage: true });
    });
  } finally {
    await browser.close();
  }
  console.log('\nSecurity E2E passed.');
}

main().catch((e) => {
  console.error(`\nE2E FAILED: ${e?.message ?? e}`);
  process.exit(1);
});
