#!/usr/bin/env node
// End-to-end test of the catalog admin pages (providers, models, import and
// export) in Chromium, against a running Beaver whose fake upstream is at
// FAKE_UPSTREAM_URL. Run by e2e/web_test.go (TestWebCatalogAdminInChromium),
// which afterwards chats with the model added here through the API.
//
//   BEAVER_URL=... ADMIN_EMAIL=... ADMIN_PASSWORD=... FAKE_UPSTREAM_URL=http://127.0.0.1:NNNN node e2e/catalog.mjs
//
// Optional: CHROMIUM_PATH, E2E_PROVIDER (default e2e-compat), E2E_PROVIDER_KEY,
// E2E_TIMEOUT_MS, E2E_HEADFUL=1. Screenshots go to e2e/artifacts/catalog-*.png.
//
// Flow: admin signs in → adds an OpenAI-compatible provider on the fake
// upstream → tests it (ok, models listed) → adds a model on it with an alias
// → edits its output price → previews an import of a two-model Beaver-format
// file (one added, one price changed) → applies it (new price version) →
// exports the catalog → retires the imported model with a replacement and
// sees it marked retired. Every wait is on a DOM condition, never on time.
import { chromium } from 'playwright-core';
import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const ART = join(here, 'artifacts');

const BASE = (process.env.BEAVER_URL ?? '').replace(/\/+$/, '');
const ADMIN_EMAIL = process.env.ADMIN_EMAIL ?? '';
const ADMIN_PASSWORD = process.env.ADMIN_PASSWORD ?? '';
const FAKE = (process.env.FAKE_UPSTREAM_URL ?? '').replace(/\/+$/, '');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const PROVIDER = process.env.E2E_PROVIDER ?? 'e2e-compat';
const PROVIDER_KEY = process.env.E2E_PROVIDER_KEY ?? 'sk-e2e-provider-key';
const TIMEOUT = Number(process.env.E2E_TIMEOUT_MS ?? 20000);

const MODEL = `${PROVIDER}/fake-chat-1`; // added in the browser
const IMPORTED = `${PROVIDER}/imported-a`; // added by the import, then retired

function fail(msg) {
  console.error(`\nE2E FAILED: ${msg}`);
  process.exit(1);
}
if (!BASE || !ADMIN_EMAIL || !ADMIN_PASSWORD || !FAKE) fail('set BEAVER_URL, ADMIN_EMAIL, ADMIN_PASSWORD and FAKE_UPSTREAM_URL.');

const problems = []; // CSP violations and uncaught page errors
let stepNo = 0;
let page;

async function shot(name) {
  const file = join(ART, `catalog-${String(++stepNo).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
}

async function step(name, fn) {
  const t0 = Date.now();
  process.stdout.write(`• ${name} … `);
  try {
    await fn();
  } catch (e) {
    console.log('FAILED');
    try {
      await page.screenshot({ path: join(ART, 'catalog-FAILED.png'), fullPage: true });
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
const row = (testid, attr, value) => page.locator(`${tid(testid)}[${attr}="${value}"]`);

/** Waits until the action's result or its error shows; an error fails the step with its text. */
async function resultOrError(result, error) {
  await Promise.race([
    result.waitFor(),
    error.waitFor().then(async () => {
      throw new Error(await error.innerText());
    }),
  ]);
}

async function adminNav(id) {
  await page.locator(tid(`admin-nav-${id}`)).click();
  await page.waitForURL((u) => u.pathname === `/manage/${id}`);
}

// A Beaver-format file: one new model, one price of the model added above.
const importFile = JSON.stringify(
  {
    models: [
      {
        id: IMPORTED,
        provider: PROVIDER,
        provider_model: 'imported-a',
        name: 'Imported A',
        input_micros_per_million: 1000000,
        output_micros_per_million: 2000000,
        context_length: 32000,
        max_output_tokens: 2048,
        capabilities: ['tools'],
      },
      { id: MODEL, input_micros_per_million: 300000 },
    ],
  },
  null,
  2,
);

async function main() {
  await mkdir(ART, { recursive: true });
  for (const f of await readdir(ART)) if (f.startsWith('catalog-') && f.endsWith('.png')) await rm(join(ART, f));
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: process.env.E2E_HEADFUL !== '1',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run'],
  });
  try {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, baseURL: BASE, acceptDownloads: true });
    page = await ctx.newPage();
    page.setDefaultTimeout(TIMEOUT);
    page.on('pageerror', (err) => problems.push(`uncaught error in page: ${err.message}`));
    page.on('console', (msg) => {
      const t = msg.text();
      if (/Content Security Policy|Refused to (load|execute|apply|connect)/i.test(t)) problems.push(`CSP violation: ${t}`);
    });

    await step('admin signs in and opens the providers page', async () => {
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
      await adminNav('providers');
      await row('provider-row', 'data-provider', 'openai').waitFor();
    });

    await step(`add the OpenAI-compatible provider ${PROVIDER} on the fake upstream`, async () => {
      await page.locator(tid('provider-add-toggle')).click();
      await page.locator(tid('provider-id')).fill(PROVIDER);
      await page.locator(tid('provider-format')).selectOption('openai');
      await page.locator(tid('provider-base-url')).fill(`${FAKE}/v1`);
      await page.locator(tid('provider-key-mode')).selectOption('key');
      await page.locator(tid('provider-api-key')).fill(PROVIDER_KEY);
      await page.locator(tid('provider-headers')).fill('X-E2E: catalog');
      await shot('provider-form');
      await page.locator(tid('provider-submit')).click();
      await resultOrError(row('provider-row', 'data-provider', PROVIDER), page.locator(tid('provider-error')));
      const r = row('provider-row', 'data-provider', PROVIDER);
      const text = await r.innerText();
      if (!text.includes(`${FAKE}/v1`) || !text.includes('X-E2E') || !text.includes('added at run time')) throw new Error(`the new row reads "${text}"`);
      if ((await page.content()).includes(PROVIDER_KEY)) throw new Error('the provider key is in the page');
    });

    await step('test it: ok, models listed', async () => {
      const r = row('provider-row', 'data-provider', PROVIDER);
      await r.locator(tid('provider-test')).click();
      const res = r.locator(tid('provider-test-result'));
      await res.waitFor();
      if ((await res.getAttribute('data-ok')) !== 'true') throw new Error(`test failed: ${await res.innerText()}`);
      if (!(Number(await res.getAttribute('data-models')) > 0)) throw new Error(`no models listed: ${await res.innerText()}`);
      // Built-ins cannot be deleted; the new provider can.
      if ((await row('provider-row', 'data-provider', 'openai').locator(tid('provider-delete')).count()) !== 0) throw new Error('a built-in offers Delete');
      if ((await r.locator(tid('provider-delete')).count()) !== 1) throw new Error('the added provider offers no Delete');
      await shot('provider-tested');
    });

    await step(`add the model ${MODEL} with an alias`, async () => {
      await adminNav('models');
      await page.locator(tid('admin-model-row')).first().waitFor();
      await page.locator(tid('model-add-toggle')).click();
      await page.locator(`${tid('model-provider')} option[value="${PROVIDER}"]`).waitFor({ state: 'attached' });
      await page.locator(tid('model-provider')).selectOption(PROVIDER);
      await page.locator(tid('model-provider-model')).fill('fake-chat-1');
      await page.locator(tid('model-name')).fill('Fake Chat 1');
      await page.locator(tid('admin-model-input')).fill('0.10');
      await page.locator(tid('admin-model-output')).fill('0.20');
      await page.locator(tid('model-context')).fill('8192');
      await page.locator(tid('model-max-output')).fill('1024');
      await page.locator(tid('model-capabilities')).fill('tools, json');
      await page.locator(tid('model-aliases')).fill('e2e-fake');
      await shot('model-form');
      await page.locator(tid('model-submit')).click();
      await resultOrError(row('admin-model-row', 'data-model', MODEL), page.locator(tid('model-form-error')));
      const r = row('admin-model-row', 'data-model', MODEL);
      if ((await r.getAttribute('data-state')) !== 'active') throw new Error(`state ${await r.getAttribute('data-state')}`);
      const aliases = await r.locator(tid('admin-model-aliases')).innerText();
      if (!aliases.includes('e2e-fake')) throw new Error(`aliases shown: "${aliases}"`);
      const text = await r.innerText();
      if (!text.includes('$0.10') || !text.includes('$0.20')) throw new Error(`prices not shown: "${text}"`);
    });

    await step('edit its output price', async () => {
      const r = row('admin-model-row', 'data-model', MODEL);
      await r.locator(tid('admin-model-edit')).click();
      const editor = page.locator(tid('admin-model-editor'));
      await editor.locator(tid('admin-model-output')).fill('0.25');
      await editor.locator(tid('admin-model-save')).click();
      await editor.waitFor({ state: 'detached' });
      await page.waitForFunction(
        (id) => document.querySelector(`[data-testid="admin-model-row"][data-model="${id}"] td[data-label="Base output / 1M"]`)?.textContent?.startsWith('$0.25'),
        MODEL,
      );
      await shot('model-edited');
    });

    await step('preview an import: one added, one price changed', async () => {
      await adminNav('catalog');
      await page.locator(tid('import-text')).fill(importFile);
      if (await page.locator(tid('import-apply')).isEnabled()) throw new Error('Apply is enabled before a preview');
      await page.locator(tid('import-preview')).click();
      await resultOrError(page.locator(tid('import-diff')), page.locator(tid('import-error')));
      const added = await page.locator(tid('import-added')).evaluateAll((els) => els.map((e) => e.getAttribute('data-model')));
      if (added.join() !== IMPORTED) throw new Error(`added ${added.join(', ')}, want ${IMPORTED}`);
      const change = page.locator(`${tid('import-change')}[data-model="${MODEL}"][data-field="input_micros_per_million"]`);
      const changeText = (await change.innerText()).replace(/\s+/g, ' ');
      if (!changeText.includes('$0.10') || !changeText.includes('$0.30')) throw new Error(`the change reads "${changeText}", want $0.10 → $0.30`);
      const summary = await page.locator(tid('import-summary')).innerText();
      if (!summary.includes('1 added') || !summary.includes('1 change to 1 model')) throw new Error(`summary "${summary}"`);
      await shot('import-preview');
      // A dry run changes nothing.
      await adminNav('models');
      await row('admin-model-row', 'data-model', MODEL).waitFor();
      if ((await row('admin-model-row', 'data-model', IMPORTED).count()) !== 0) throw new Error('the dry run added the model');
      await page.goBack();
      await page.waitForURL((u) => u.pathname === '/manage/catalog');
    });

    await step('apply it: a new price version', async () => {
      // Navigation cleared the page's state: paste again and preview before Apply is offered.
      await page.locator(tid('import-text')).fill(importFile);
      await page.locator(tid('import-preview')).click();
      await resultOrError(page.locator(tid('import-diff')), page.locator(tid('import-error')));
      await page.locator(tid('import-apply')).click();
      await resultOrError(page.locator(tid('import-price-version')), page.locator(tid('import-error')));
      const v = await page.locator(tid('import-price-version')).getAttribute('data-version');
      if (!/^\d+$/.test(v ?? '') || Number(v) < 1) throw new Error(`price version "${v}"`);
      console.log(`\n   applied as price version ${v}`);
      await shot('import-applied');
    });

    await step('export the catalog', async () => {
      const [download] = await Promise.all([page.waitForEvent('download'), page.locator(tid('catalog-export')).click()]);
      if (download.suggestedFilename() !== 'beaver-catalog.json') throw new Error(`file name ${download.suggestedFilename()}`);
      const file = JSON.parse(await readFile(await download.path(), 'utf8'));
      const ids = file.models.map((m) => m.id);
      const mine = file.models.find((m) => m.id === MODEL);
      if (!ids.includes(IMPORTED) || !mine || mine.input_micros_per_million !== 300000 || mine.output_micros_per_million !== 250000)
        throw new Error(`export lacks the imported state: ${JSON.stringify(mine)}`);
    });

    await step(`retire ${IMPORTED} with ${MODEL} as its replacement`, async () => {
      await adminNav('models');
      await page.locator(tid('admin-model-filter')).fill('imported-a');
      const r = row('admin-model-row', 'data-model', IMPORTED);
      await r.waitFor();
      if ((await r.getAttribute('data-state')) !== 'active') throw new Error(`imported model state ${await r.getAttribute('data-state')}`);
      await r.locator(tid('admin-model-retire')).click();
      await page.locator(tid('admin-model-replacement')).fill(MODEL);
      await page.locator(tid('admin-model-retire-confirm')).click();
      await resultOrError(page.locator(`${tid('admin-model-row')}[data-model="${IMPORTED}"][data-state="retired"]`), page.locator(tid('retire-error')));
      const state = await r.locator(tid('admin-model-state')).innerText();
      if (!state.includes('retired') || !state.includes(MODEL)) throw new Error(`state reads "${state}"`);
      // The status filter finds it among the retired ones, and only there.
      await page.locator(tid('admin-model-filter')).fill('');
      await page.locator(tid('admin-model-status-filter')).selectOption('retired');
      await r.waitFor();
      if ((await row('admin-model-row', 'data-model', MODEL).count()) !== 0) throw new Error('an active model is listed under Retired');
      await shot('model-retired');
    });

    await step('360 px wide: the three pages do not overflow', async () => {
      await page.setViewportSize({ width: 360, height: 740 });
      // The admin sub-navigation is reached through the page, not the collapsed main menu.
      for (const [id, ready] of [
        ['providers', 'provider-row'],
        ['models', 'admin-model-row'],
        ['catalog', 'import-text'],
      ]) {
        await adminNav(id);
        await page.locator(tid(ready)).first().waitFor();
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
        if (overflow > 1) throw new Error(`the ${id} page overflows horizontally by ${overflow}px`);
        await shot(`mobile-${id}`);
      }
    });

    console.log(`\nE2E PASSED: ${stepNo} screenshots in ${ART}`);
  } finally {
    await browser.close();
  }
}

main().catch((e) => fail(e?.message ?? String(e)));
