#!/usr/bin/env node
// A throwaway, in-memory stand-in for the Beaver API, implementing just enough
// of shared/CONTRACT.md to develop the web UI and dry-run e2e/run.mjs while the
// real backend is being written. It also serves web/dist/app with the same
// security headers as web/embed.go, so CSP problems show up in the browser.
//
//   node e2e/mock-server.mjs            # http://127.0.0.1:5174, admin@localhost / admin-password-123
//   MOCK_PORT=5180 MOCK_ACCESS_TTL=5 node e2e/mock-server.mjs
//
// Not production code: no persistence, naive token counting, no rate limits.
import { createServer } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { randomBytes, randomUUID } from 'node:crypto';
import { dirname, extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const APP_DIR = join(here, '..', 'dist', 'app');
const PORT = Number(process.env.MOCK_PORT ?? 5174);
const HOST = process.env.MOCK_HOST ?? '127.0.0.1';
const ACCESS_TTL = Number(process.env.MOCK_ACCESS_TTL ?? 300); // seconds
const ADMIN_EMAIL = process.env.ADMIN_EMAIL ?? 'admin@localhost';
const ADMIN_PASSWORD = process.env.ADMIN_PASSWORD ?? 'admin-password-123';
const STREAM_DELAY_MS = Number(process.env.MOCK_STREAM_DELAY_MS ?? 60);
const CHECKOUT = process.env.MOCK_CHECKOUT ?? 'off'; // 'off' → 503; 'on' → 200 with a fake URL
const AUTO_RECHARGE = process.env.MOCK_AUTO_RECHARGE === 'on';

const CSP =
  "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

// ---- money (integer micros, BigInt where products get large) ----
const usd = (micros) => {
  const neg = micros < 0;
  const a = BigInt(Math.abs(micros));
  const whole = a / 1000000n;
  const frac = (a % 1000000n).toString().padStart(6, '0').replace(/0+$/, '');
  return Number((neg ? '-' : '') + whole + (frac ? '.' + frac : ''));
};
const parseUsd = (v) => {
  const s = String(v).trim();
  const m = /^(-?)(\d+)(?:\.(\d{1,6}))?$/.exec(s);
  if (!m) return null;
  const micros = BigInt(m[2]) * 1000000n + BigInt((m[3] ?? '').padEnd(6, '0'));
  return Number(m[1] ? -micros : micros);
};
const ceilDiv = (a, b) => (a + b - 1n) / b;
const now = () => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
const id = (p) => `${p}_${randomBytes(8).toString('hex')}`;

// ---- catalogue ----
const MARKUP = { ULTRA_BUDGET: 100, BUDGET: 125, MID_RANGE: 150, PREMIUM: 55, ULTRA_PREMIUM: 35 };
const baseModels = [
  ['openai', 'gpt-4o-mini', 'GPT-4o mini', 128000, 16384, 150000, 600000],
  ['openai', 'gpt-4o', 'GPT-4o', 128000, 16384, 2500000, 10000000],
  ['openai', 'o3-mini', 'o3-mini', 200000, 100000, 1100000, 4400000],
  ['anthropic', 'claude-3-5-haiku-latest', 'Claude 3.5 Haiku', 200000, 8192, 800000, 4000000],
  ['anthropic', 'claude-sonnet-4-0', 'Claude Sonnet 4', 200000, 64000, 3000000, 15000000],
  ['google', 'gemini-2.0-flash', 'Gemini 2.0 Flash', 1048576, 8192, 100000, 400000],
  ['google', 'gemini-2.5-pro', 'Gemini 2.5 Pro', 1048576, 65536, 1250000, 10000000],
  ['deepseek', 'deepseek-chat', 'DeepSeek V3', 64000, 8192, 270000, 1100000],
  ['deepseek', 'deepseek-reasoner', 'DeepSeek R1', 64000, 8192, 550000, 2190000],
  ['perplexity', 'sonar', 'Sonar', 127072, 4096, 1000000, 1000000, 5000],
  ['xai', 'grok-3-mini', 'Grok 3 mini', 131072, 4096, 300000, 500000],
  ['xai', 'grok-3', 'Grok 3', 131072, 4096, 3000000, 15000000],
];
let priceVersion = 1;
const models = baseModels.map(([provider, name, display, ctx, maxOut, inP, outP, fee = 0]) => ({
  provider,
  name,
  display,
  ctx,
  maxOut,
  base: { in: inP, out: outP, fee },
  active: true,
  category: 'MID_RANGE',
  price: { in: inP, out: outP, fee },
}));
function reprice() {
  const act = models.filter((m) => m.active);
  const vals = act.map((m) => m.base.in + m.base.out).sort((a, b) => a - b);
  const P = (k) => vals[Math.max(0, Math.ceil((k / 100) * vals.length) - 1)];
  for (const m of models) {
    const v = m.base.in + m.base.out;
    m.category = v < P(20) ? 'ULTRA_BUDGET' : v < P(40) ? 'BUDGET' : v < P(60) ? 'MID_RANGE' : v < P(80) ? 'PREMIUM' : 'ULTRA_PREMIUM';
    const k = BigInt(1000 + MARKUP[m.category]);
    const up = (x) => Number(ceilDiv(BigInt(x) * k, 1000n));
    m.price = { in: up(m.base.in), out: up(m.base.out), fee: up(m.base.fee) };
  }
  priceVersion++;
}
reprice();
const modelJSON = (m) => ({
  id: `${m.provider}/${m.name}`,
  object: 'model',
  created: 1700000000,
  owned_by: m.provider,
  provider: m.provider,
  name: m.display,
  context_length: m.ctx,
  max_output_tokens: m.maxOut,
  capabilities: ['chat', 'streaming'],
  active: m.active,
  pricing: {
    input_per_million_usd: usd(m.price.in),
    output_per_million_usd: usd(m.price.out),
    request_fee_usd: usd(m.price.fee),
    input_per_million_micros: m.price.in,
    output_per_million_micros: m.price.out,
    request_fee_micros: m.price.fee,
    category: m.category,
    markup_permille: MARKUP[m.category],
    price_version: priceVersion,
  },
});
const adminModelJSON = (m) => ({
  ...modelJSON(m),
  base: {
    input_per_million_micros: m.base.in,
    output_per_million_micros: m.base.out,
    request_fee_micros: m.base.fee,
    input_per_million_usd: usd(m.base.in),
    output_per_million_usd: usd(m.base.out),
    request_fee_usd: usd(m.base.fee),
  },
  retired_at: null,
  replacement: null,
  aliases: [],
});
const findModel = (mid) => models.find((m) => `${m.provider}/${m.name}` === mid || m.name === mid);

// ---- state ----
const PLAN_LIMITS = { free: [60, 10000], pro: [600, 200000], enterprise: [5000, 5000000] };
const accounts = new Map(); // id → account
const ledger = []; // {id, account_id, type, amount_micros, balance_after_micros, reference, description, created_at}
const usageLogs = []; // {account_id, model, prompt_tokens, completion_tokens, cost_micros, date}
const keys = new Map(); // id → key
const sessions = new Map(); // session id → {account_id, refresh, alive}
const access = new Map(); // token → {session, exp}
const verifyTokens = new Map();
const resetTokens = new Map();
const idempotency = new Map();

function createAccount({ email, password, name = null, role = 'user', plan = 'free', verified = false }) {
  const a = {
    id: id('acc'),
    email: email.toLowerCase(),
    password,
    name,
    role,
    plan,
    active: true,
    email_verified: verified,
    low_balance_threshold_micros: null,
    rpm_override: null,
    monthly_override: null,
    created_at: now(),
  };
  accounts.set(a.id, a);
  return a;
}
createAccount({ email: ADMIN_EMAIL, password: ADMIN_PASSWORD, role: 'admin', verified: true, name: 'Admin' });

const balanceOf = (aid) => ledger.filter((t) => t.account_id === aid).reduce((s, t) => s + t.amount_micros, 0);
function addLedger(aid, type, amount, description, reference = null) {
  const t = {
    id: id('txn'),
    account_id: aid,
    type,
    amount_micros: amount,
    balance_after_micros: balanceOf(aid) + amount,
    reference,
    description,
    created_at: now(),
  };
  ledger.push(t);
  return t;
}
const txJSON = (t) => ({ ...t, account_id: undefined, amount_usd: usd(t.amount_micros) });
function accountJSON(a) {
  const bal = balanceOf(a.id);
  const [rpm, monthly] = PLAN_LIMITS[a.plan] ?? [0, 0];
  return {
    id: a.id,
    email: a.email,
    name: a.name,
    role: a.role,
    plan: a.plan,
    active: a.active,
    email_verified: a.email_verified,
    balance_micros: bal,
    balance_usd: usd(bal),
    low_balance_threshold_micros: a.low_balance_threshold_micros,
    low_balance_threshold_usd: a.low_balance_threshold_micros === null ? null : usd(a.low_balance_threshold_micros),
    usage_reports: a.usage_reports ?? 'monthly',
    rpm_limit: a.rpm_override ?? rpm,
    monthly_request_limit: a.monthly_override ?? monthly,
    created_at: a.created_at,
    billing_details: a.billing_details ?? { name: '', address: '', tax_id: '' },
  };
}
function keyJSON(k) {
  return {
    id: k.id,
    name: k.name,
    prefix: k.secret.slice(0, 14),
    active: k.active,
    created_at: k.created_at,
    last_used_at: k.last_used_at,
    expires_at: k.expires_at,
    spend_limit_usd: k.spend_limit_micros === null ? null : usd(k.spend_limit_micros),
    spend_limit_micros: k.spend_limit_micros,
    limit_reset: k.limit_reset,
    rpm_limit: k.rpm_limit,
    allowed_models: k.allowed_models,
    allowed_ips: k.allowed_ips,
  };
}
const newSecret = () => `sk-beaver-${randomBytes(24).toString('base64url')}`;

function issueSession(aid, sid = randomUUID()) {
  const at = `at_${randomBytes(24).toString('base64url')}`;
  const rt = `rt_${randomBytes(24).toString('base64url')}`;
  const s = sessions.get(sid) ?? { account_id: aid, alive: true, spent: new Set() };
  if (s.refresh) s.spent.add(s.refresh);
  s.refresh = rt;
  sessions.set(sid, s);
  access.set(at, { session: sid, exp: Date.now() + ACCESS_TTL * 1000 });
  return { access_token: at, refresh_token: rt, token_type: 'Bearer', expires_in: ACCESS_TTL };
}

// ---- HTTP helpers ----
class HttpError extends Error {
  constructor(status, code, message, extra = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.extra = extra;
  }
}
const typeFor = (status) =>
  status === 401 ? 'authentication_error' : status === 403 ? 'permission_error' : status === 404 ? 'not_found_error' : status === 429 ? 'rate_limit_error' : status >= 500 ? 'api_error' : 'invalid_request_error';
function send(res, status, body, headers = {}) {
  res.writeHead(status, { 'Content-Type': 'application/json', 'X-Request-Id': randomUUID(), ...headers });
  res.end(body === undefined ? '' : JSON.stringify(body));
}
function sendError(res, e) {
  send(res, e.status, { error: { message: e.message, type: typeFor(e.status), code: e.code, ...e.extra } });
}
async function readJSON(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text) return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, 'invalid_request', 'The request body is not valid JSON.');
  }
}
function auth(req, { sessionOnly = false, admin = false } = {}) {
  const h = req.headers.authorization ?? '';
  const tok = h.startsWith('Bearer ') ? h.slice(7) : '';
  if (!tok) throw new HttpError(401, 'unauthorized', 'Missing credentials.');
  if (tok.startsWith('sk-beaver-')) {
    const k = [...keys.values()].find((k) => k.secret === tok && !k.deleted);
    if (!k || !k.active || (k.expires_at && new Date(k.expires_at) < new Date())) throw new HttpError(401, 'invalid_api_key', 'Invalid API key.');
    if (sessionOnly || admin) throw new HttpError(403, 'forbidden', 'This route needs a session, not an API key.');
    k.last_used_at = now();
    return { account: accounts.get(k.account_id), key: k };
  }
  const a = access.get(tok);
  if (!a || a.exp < Date.now() || !sessions.get(a.session)?.alive) throw new HttpError(401, 'unauthorized', 'Invalid or expired access token.');
  const account = accounts.get(sessions.get(a.session).account_id);
  if (!account.active) throw new HttpError(403, 'account_disabled', 'This account is disabled.');
  if (admin && account.role !== 'admin') throw new HttpError(403, 'forbidden', 'Admins only.');
  return { account, session: a.session, token: tok };
}

function usageFor(aid, days) {
  if (![7, 30, 90].includes(days)) throw new HttpError(400, 'invalid_request', 'days must be 7, 30 or 90.');
  const since = new Date(Date.now() - (days - 1) * 86400000).toISOString().slice(0, 10);
  const logs = usageLogs.filter((u) => u.account_id === aid && u.date >= since);
  const agg = (list) => {
    const cost = list.reduce((s, u) => s + u.cost_micros, 0);
    return {
      requests: list.length,
      prompt_tokens: list.reduce((s, u) => s + u.prompt_tokens, 0),
      completion_tokens: list.reduce((s, u) => s + u.completion_tokens, 0),
      cost_micros: cost,
      cost_usd: usd(cost),
    };
  };
  const group = (f) => {
    const m = new Map();
    for (const u of logs) m.set(f(u), [...(m.get(f(u)) ?? []), u]);
    return m;
  };
  return {
    days,
    totals: agg(logs),
    by_model: [...group((u) => u.model)].map(([model, l]) => ({ model, ...agg(l) })),
    by_day: [...group((u) => u.date)].sort().map(([date, l]) => ({ date, ...agg(l) })),
  };
}

// Seed the admin with some history so the dashboard chart has something to draw.
(function seed() {
  const admin = [...accounts.values()][0];
  addLedger(admin.id, 'topup', 50_000_000, 'Initial credit', 'seed');
  for (let d = 27; d >= 0; d -= 1) {
    if (d % 3 === 1) continue;
    const date = new Date(Date.now() - d * 86400000).toISOString().slice(0, 10);
    const n = 1 + ((d * 7) % 5);
    for (let i = 0; i < n; i++) {
      const cost = 1500 + ((d * 131 + i * 977) % 9000);
      usageLogs.push({ account_id: admin.id, model: i % 2 ? 'anthropic/claude-3-5-haiku-latest' : 'openai/gpt-4o-mini', prompt_tokens: 420, completion_tokens: 180, cost_micros: cost, date });
    }
  }
})();

const WORDS = 'Beaver routes your request to the provider and streams every token back to you as it arrives, then bills the exact cost in micro dollars.'.split(' ');

async function chat(req, res, who, body) {
  const m = findModel(body.model);
  if (!m || !m.active) throw new HttpError(404, 'model_not_found', `Model '${body.model}' does not exist or is not active.`);
  if (who.key?.allowed_models && !who.key.allowed_models.includes(`${m.provider}/${m.name}`)) throw new HttpError(403, 'forbidden', 'This key may not use that model.');
  const messages = Array.isArray(body.messages) ? body.messages : [];
  if (!messages.length) throw new HttpError(400, 'invalid_request', 'messages must not be empty.');
  const promptTokens = messages.reduce((s, x) => s + String(x.content ?? '').split(/\s+/).filter(Boolean).length + 3, 0);
  const cost = (pt, ct) => Number(ceilDiv(BigInt(pt) * BigInt(m.price.in) + BigInt(ct) * BigInt(m.price.out), 1000000n)) + m.price.fee;
  const available = balanceOf(who.account.id);
  if (available < cost(promptTokens, 16)) throw new HttpError(402, 'insufficient_balance', 'Your balance is too low for this request. Add credits to continue.', { limit_source: 'balance' });
  const maxTokens = Math.min(Number(body.max_tokens ?? WORDS.length), WORDS.length);
  const rid = `chatcmpl-${randomBytes(8).toString('hex')}`;
  const created = Math.floor(Date.now() / 1000);
  const modelId = `${m.provider}/${m.name}`;
  let delivered = 0;
  let closed = false;
  req.on('close', () => (closed = true));
  const finish = () => {
    const c = cost(promptTokens, delivered);
    const t = addLedger(who.account.id, 'charge', -c, `${modelId}: ${promptTokens} + ${delivered} tokens`, rid);
    usageLogs.push({ account_id: who.account.id, model: modelId, prompt_tokens: promptTokens, completion_tokens: delivered, cost_micros: c, date: t.created_at.slice(0, 10) });
    return c;
  };
  if (!body.stream) {
    delivered = maxTokens;
    const c = finish();
    return send(
      res,
      200,
      {
        id: rid,
        object: 'chat.completion',
        created,
        model: modelId,
        choices: [{ index: 0, message: { role: 'assistant', content: WORDS.slice(0, delivered).join(' ') }, finish_reason: 'stop' }],
        usage: { prompt_tokens: promptTokens, completion_tokens: delivered, total_tokens: promptTokens + delivered, cost: usd(c), cost_micros: c },
      },
      { 'X-Beaver-Cost-Micros': String(c), 'X-Beaver-Balance-Micros': String(balanceOf(who.account.id)) },
    );
  }
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive', 'X-Request-Id': randomUUID() });
  const write = (obj) => res.write(`data: ${typeof obj === 'string' ? obj : JSON.stringify(obj)}\n\n`);
  const chunk = (delta, finish_reason = null) => ({ id: rid, object: 'chat.completion.chunk', created, model: modelId, choices: [{ index: 0, delta, finish_reason }] });
  write(chunk({ role: 'assistant', content: '' }));
  const failAt = String(messages.at(-1)?.content ?? '').includes('FAIL') ? 4 : -1;
  for (let i = 0; i < maxTokens && !closed; i++) {
    await new Promise((r) => setTimeout(r, STREAM_DELAY_MS));
    if (closed) break;
    if (i === failAt) {
      write({ ...chunk({}, 'error'), error: { message: 'The upstream provider closed the connection.', type: 'api_error', code: 'upstream_error' } });
      break;
    }
    // Split some writes mid-line to exercise the client's SSE buffering.
    const line = `data: ${JSON.stringify(chunk({ content: (i ? ' ' : '') + WORDS[i] }))}\n\n`;
    const cut = Math.floor(line.length / 2);
    res.write(line.slice(0, cut));
    res.write(line.slice(cut));
    delivered++;
  }
  const c = finish();
  if (closed) return;
  if (failAt < 0) write(chunk({}, 'stop'));
  write({
    id: rid,
    object: 'chat.completion.chunk',
    created,
    model: modelId,
    choices: [],
    usage: { prompt_tokens: promptTokens, completion_tokens: delivered, total_tokens: promptTokens + delivered, cost: usd(c), cost_micros: c },
  });
  write('[DONE]');
  res.end();
}

// ---- routes ----
async function api(req, res, url) {
  const p = url.pathname;
  const method = req.method;
  const route = (m, pattern) => {
    if (m !== method) return null;
    const pp = pattern.split('/');
    const sp = p.split('/');
    if (pp.length !== sp.length) return null;
    const params = {};
    for (let i = 0; i < pp.length; i++) {
      if (pp[i].startsWith(':')) params[pp[i].slice(1)] = decodeURIComponent(sp[i]);
      else if (pp[i] !== sp[i]) return null;
    }
    return params;
  };
  let r;
  if (route('GET', '/health')) return send(res, 200, { status: 'ok' });
  if (route('GET', '/v1/models')) return send(res, 200, { object: 'list', data: models.filter((m) => m.active).map(modelJSON) });
  if (route('POST', '/auth/register')) {
    const b = await readJSON(req);
    if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(b.email ?? '')) throw new HttpError(400, 'invalid_request', 'Enter a valid email address.');
    if (typeof b.password !== 'string' || b.password.length < 10 || b.password.length > 256) throw new HttpError(400, 'invalid_request', 'The password must be 10 to 256 characters long.');
    if (['password123', 'passwordpassword', '1234567890'].includes(b.password)) throw new HttpError(400, 'invalid_request', 'This password is too common.');
    if ([...accounts.values()].some((a) => a.email === b.email.toLowerCase())) throw new HttpError(409, 'conflict', 'An account with this email already exists.');
    const a = createAccount({ email: b.email, password: b.password, name: b.name ?? null });
    const tok = randomBytes(16).toString('hex');
    verifyTokens.set(tok, a.id);
    console.log(`mail to=${a.email} verify link: http://${HOST}:${PORT}/verify-email?token=${tok}`);
    return send(res, 201, { account: accountJSON(a) });
  }
  if (route('POST', '/auth/login')) {
    const b = await readJSON(req);
    const a = [...accounts.values()].find((a) => a.email === String(b.email ?? '').toLowerCase());
    if (!a || a.password !== b.password) throw new HttpError(401, 'unauthorized', 'Invalid email or password.');
    if (!a.active) throw new HttpError(403, 'account_disabled', 'This account is disabled.');
    return send(res, 200, { ...issueSession(a.id), account: accountJSON(a) });
  }
  if (route('POST', '/auth/refresh')) {
    const b = await readJSON(req);
    for (const [sid, s] of sessions) {
      if (s.alive && s.refresh === b.refresh_token) {
        console.log(`refresh: session ${sid.slice(0, 8)} rotated its refresh token`);
        return send(res, 200, issueSession(s.account_id, sid));
      }
      if (!s.alive) continue;
      if (s.spent?.has(b.refresh_token)) {
        // Reuse of a rotated-away refresh token revokes the whole session (contract).
        console.log(`refresh: session ${sid.slice(0, 8)} revoked (spent refresh token reused)`);
        s.alive = false;
        break;
      }
    }
    throw new HttpError(401, 'invalid_token', 'Invalid refresh token.');
  }
  if (route('POST', '/auth/verify-email')) {
    const b = await readJSON(req);
    const aid = verifyTokens.get(b.token);
    if (!aid) throw new HttpError(400, 'invalid_token', 'This link is invalid or has expired.');
    verifyTokens.delete(b.token);
    accounts.get(aid).email_verified = true;
    return send(res, 200, { verified: true });
  }
  if (route('POST', '/auth/password/forgot')) {
    const b = await readJSON(req);
    const a = [...accounts.values()].find((a) => a.email === String(b.email ?? '').toLowerCase());
    if (a) {
      const tok = randomBytes(16).toString('hex');
      resetTokens.set(tok, a.id);
      console.log(`mail to=${a.email} reset link: http://${HOST}:${PORT}/reset-password?token=${tok}`);
    }
    return send(res, 202, { status: 'accepted' });
  }
  if (route('POST', '/auth/password/reset')) {
    const b = await readJSON(req);
    const aid = resetTokens.get(b.token);
    if (!aid) throw new HttpError(400, 'invalid_token', 'This link is invalid or has expired.');
    resetTokens.delete(b.token);
    accounts.get(aid).password = b.password;
    for (const s of sessions.values()) if (s.account_id === aid) s.alive = false;
    return send(res, 200, { status: 'ok' });
  }
  if (route('POST', '/auth/logout')) {
    const who = auth(req, { sessionOnly: true });
    sessions.get(who.session).alive = false;
    res.writeHead(204);
    return res.end();
  }
  if (route('GET', '/auth/me') || route('GET', '/users/me')) return send(res, 200, { account: accountJSON(auth(req).account) });
  if (route('PATCH', '/users/me')) {
    const who = auth(req, { sessionOnly: true });
    const b = await readJSON(req);
    for (const k of Object.keys(b)) if (!['name', 'low_balance_threshold_usd', 'usage_reports', 'billing_details'].includes(k)) throw new HttpError(400, 'invalid_request', `Unknown or read-only field '${k}'.`);
    if ('usage_reports' in b && !['weekly', 'monthly', 'both', 'off'].includes(b.usage_reports)) throw new HttpError(400, 'invalid_request', 'usage_reports must be one of weekly, monthly, both, off');
    if ('name' in b) who.account.name = b.name;
    if ('usage_reports' in b) who.account.usage_reports = b.usage_reports;
    if ('billing_details' in b) who.account.billing_details = { name: '', address: '', tax_id: '', ...(b.billing_details ?? {}) };
    if ('low_balance_threshold_usd' in b) {
      if (b.low_balance_threshold_usd === null) who.account.low_balance_threshold_micros = null;
      else {
        const v = parseUsd(b.low_balance_threshold_usd);
        if (v === null || v < 0) throw new HttpError(400, 'invalid_request', 'low_balance_threshold_usd must be a non-negative amount with at most 6 decimals.');
        who.account.low_balance_threshold_micros = v;
      }
    }
    return send(res, 200, { account: accountJSON(who.account) });
  }
  // keys
  if (route('GET', '/api-keys')) {
    const who = auth(req);
    return send(res, 200, { data: [...keys.values()].filter((k) => k.account_id === who.account.id && !k.deleted).map(keyJSON) });
  }
  const applyPolicy = (k, b) => {
    const allowed = ['name', 'spend_limit_usd', 'limit_reset', 'rpm_limit', 'expires_at', 'allowed_models', 'allowed_ips', 'active'];
    for (const f of Object.keys(b)) if (!allowed.includes(f)) throw new HttpError(400, 'invalid_request', `Unknown field '${f}'.`);
    if ('name' in b) k.name = String(b.name);
    if ('spend_limit_usd' in b) {
      k.spend_limit_micros = b.spend_limit_usd === null ? null : parseUsd(b.spend_limit_usd);
      if (b.spend_limit_usd !== null && (k.spend_limit_micros === null || k.spend_limit_micros < 0)) throw new HttpError(400, 'invalid_request', 'Invalid spend_limit_usd.');
    }
    if ('limit_reset' in b) {
      if (!['none', 'daily', 'weekly', 'monthly'].includes(b.limit_reset)) throw new HttpError(400, 'invalid_request', 'Invalid limit_reset.');
      k.limit_reset = b.limit_reset;
    }
    if ('rpm_limit' in b) k.rpm_limit = b.rpm_limit;
    if ('expires_at' in b) {
      if (b.expires_at !== null && new Date(b.expires_at) < new Date()) throw new HttpError(400, 'invalid_request', 'expires_at is in the past.');
      k.expires_at = b.expires_at;
    }
    if ('allowed_models' in b) k.allowed_models = b.allowed_models;
    if ('allowed_ips' in b) k.allowed_ips = b.allowed_ips;
    if ('active' in b) k.active = !!b.active;
  };
  if (route('POST', '/api-keys') || route('POST', '/api-keys/generate')) {
    const who = auth(req, { sessionOnly: true });
    const b = await readJSON(req);
    if (!b.name && !p.endsWith('/generate')) throw new HttpError(400, 'invalid_request', 'name is required.');
    const k = {
      id: id('key'),
      account_id: who.account.id,
      name: b.name ?? 'Generated key',
      secret: newSecret(),
      active: true,
      created_at: now(),
      last_used_at: null,
      expires_at: null,
      spend_limit_micros: null,
      limit_reset: 'none',
      rpm_limit: null,
      allowed_models: null,
      allowed_ips: null,
    };
    applyPolicy(k, b);
    keys.set(k.id, k);
    return send(res, 201, { ...keyJSON(k), key: k.secret });
  }
  const ownKey = (who, kid) => {
    const k = keys.get(kid);
    if (!k || k.deleted || k.account_id !== who.account.id) throw new HttpError(404, 'not_found', 'No such API key.');
    return k;
  };
  if ((r = route('GET', '/api-keys/:id'))) {
    const who = auth(req);
    const k = ownKey(who, r.id);
    const spent = ledger.filter((t) => t.reference === k.id).reduce((s, t) => s - t.amount_micros, 0);
    return send(res, 200, { ...keyJSON(k), usage: { spent_micros: spent, spent_usd: usd(spent), period_start: k.limit_reset === 'none' ? null : now().slice(0, 10) + 'T00:00:00Z', requests_this_minute: 0 } });
  }
  if ((r = route('PATCH', '/api-keys/:id'))) {
    const who = auth(req, { sessionOnly: true });
    const k = ownKey(who, r.id);
    applyPolicy(k, await readJSON(req));
    return send(res, 200, keyJSON(k));
  }
  if ((r = route('DELETE', '/api-keys/:id'))) {
    const who = auth(req, { sessionOnly: true });
    ownKey(who, r.id).deleted = true;
    res.writeHead(204);
    return res.end();
  }
  if ((r = route('POST', '/api-keys/:id/rotate'))) {
    const who = auth(req, { sessionOnly: true });
    const k = ownKey(who, r.id);
    k.secret = newSecret();
    return send(res, 200, { ...keyJSON(k), key: k.secret });
  }
  // account
  if (route('GET', '/account/balance')) {
    const who = auth(req);
    const b = balanceOf(who.account.id);
    return send(res, 200, { balance_micros: b, balance_usd: usd(b), reserved_micros: 0, available_micros: b, available_usd: usd(b), currency: 'USD' });
  }
  if (route('GET', '/account/transactions')) {
    const who = auth(req);
    const limit = Math.min(100, Math.max(1, Number(url.searchParams.get('limit') ?? 50)));
    const all = ledger.filter((t) => t.account_id === who.account.id).slice().reverse();
    const start = url.searchParams.get('cursor') ? Number(Buffer.from(url.searchParams.get('cursor'), 'base64url').toString()) : 0;
    const page = all.slice(start, start + limit);
    const next = start + limit < all.length ? Buffer.from(String(start + limit)).toString('base64url') : null;
    return send(res, 200, { data: page.map(txJSON), next_cursor: next });
  }
  if (route('GET', '/account/usage')) {
    const who = auth(req);
    return send(res, 200, usageFor(who.account.id, Number(url.searchParams.get('days') ?? 30)));
  }
  if (route('GET', '/account/billing')) {
    const who = auth(req);
    const mine = ledger.filter((t) => t.account_id === who.account.id);
    const months = new Map();
    for (const t of mine.filter((t) => t.type === 'charge')) months.set(t.created_at.slice(0, 7), (months.get(t.created_at.slice(0, 7)) ?? 0) - t.amount_micros);
    return send(res, 200, {
      topups: mine.filter((t) => t.type === 'topup').map(txJSON),
      refunds: mine.filter((t) => t.type === 'refund').map(txJSON),
      monthly_charges: [...months].map(([month, c]) => ({ month, charges_micros: c, charges_usd: usd(c) })),
    });
  }
  if (route('GET', '/account/invoices')) {
    const who = auth(req);
    const data = ledger
      .filter((t) => t.account_id === who.account.id && t.type === 'topup')
      .map((t, i) => ({ id: `inv_${t.id}`, number: `BVR-2026-${String(i + 1).padStart(6, '0')}`, kind: 'invoice', issued_at: t.created_at,
        amount_micros: t.amount_micros, amount_usd: usd(t.amount_micros), top_up_id: null, refund_id: null }))
      .reverse();
    return send(res, 200, { data, next_cursor: null });
  }
  if ((r = route('GET', '/account/invoices/:id')) && r.id.endsWith('.pdf')) {
    auth(req);
    res.writeHead(200, { 'Content-Type': 'application/pdf', 'Content-Disposition': `attachment; filename="${r.id}"` });
    return res.end('%PDF-1.4\n% mock invoice\n');
  }
  if (route('POST', '/account/top-up/checkout')) {
    auth(req, { sessionOnly: true });
    const b = await readJSON(req);
    if (parseUsd(b.amount_usd) === null) throw new HttpError(400, 'invalid_request', 'Invalid amount_usd.');
    if (CHECKOUT !== 'on') throw new HttpError(503, 'service_unavailable', 'Card top-ups are not configured (STRIPE_SECRET_KEY is unset).');
    return send(res, 200, { checkout_url: `http://${HOST}:${PORT}/billing?checkout=success`, session_id: 'cs_test_mock' });
  }
  if (AUTO_RECHARGE && (route('GET', '/account/auto-recharge') || route('PUT', '/account/auto-recharge'))) {
    const who = auth(req);
    if (method === 'PUT') {
      const b = await readJSON(req);
      who.account.auto = { enabled: !!b.enabled, threshold_micros: b.threshold_usd ? parseUsd(b.threshold_usd) : null, amount_micros: b.amount_usd ? parseUsd(b.amount_usd) : null };
    }
    return send(res, 200, who.account.auto ?? { enabled: false, threshold_micros: null, amount_micros: null });
  }
  // inference
  if (route('POST', '/v1/chat/completions')) {
    const who = auth(req);
    return chat(req, res, who, await readJSON(req));
  }
  // admin
  if (route('GET', '/admin/accounts')) {
    auth(req, { admin: true });
    const q = (url.searchParams.get('email') ?? '').toLowerCase();
    return send(res, 200, { data: [...accounts.values()].filter((a) => !q || a.email.includes(q)).map(accountJSON) });
  }
  if (route('POST', '/admin/accounts')) {
    auth(req, { admin: true });
    const b = await readJSON(req);
    if ([...accounts.values()].some((a) => a.email === String(b.email).toLowerCase())) throw new HttpError(409, 'conflict', 'An account with this email already exists.');
    const a = createAccount({ email: b.email, password: b.password, plan: b.plan ?? 'free', role: b.role ?? 'user', verified: true });
    return send(res, 201, { account: accountJSON(a) });
  }
  if ((r = route('GET', '/admin/accounts/:id'))) {
    auth(req, { admin: true });
    const a = accounts.get(r.id);
    if (!a) throw new HttpError(404, 'not_found', 'No such account.');
    return send(res, 200, { account: accountJSON(a) });
  }
  if ((r = route('PATCH', '/admin/accounts/:id'))) {
    auth(req, { admin: true });
    const a = accounts.get(r.id);
    if (!a) throw new HttpError(404, 'not_found', 'No such account.');
    const b = await readJSON(req);
    for (const k of Object.keys(b)) if (!['plan', 'role', 'active', 'rpm_limit', 'monthly_request_limit'].includes(k)) throw new HttpError(400, 'invalid_request', `Unknown field '${k}'.`);
    if ('plan' in b) {
      if (!PLAN_LIMITS[b.plan]) throw new HttpError(400, 'invalid_request', 'Unknown plan.');
      a.plan = b.plan;
    }
    if ('role' in b) a.role = b.role;
    if ('active' in b) a.active = !!b.active;
    if ('rpm_limit' in b) a.rpm_override = b.rpm_limit;
    if ('monthly_request_limit' in b) a.monthly_override = b.monthly_request_limit;
    return send(res, 200, { account: accountJSON(a) });
  }
  if (route('POST', '/admin/top-up')) {
    auth(req, { admin: true });
    const b = await readJSON(req);
    const a = accounts.get(b.account_id);
    if (!a) throw new HttpError(404, 'not_found', 'No such account.');
    const amount = parseUsd(b.amount_usd);
    if (amount === null || amount <= 0) throw new HttpError(400, 'invalid_request', 'amount_usd must be a positive amount with at most 6 decimals.');
    const ik = req.headers['idempotency-key'];
    if (ik && idempotency.has(ik)) return send(res, 201, idempotency.get(ik));
    const t = addLedger(a.id, 'topup', amount, b.note ? `Admin top-up: ${b.note}` : 'Admin top-up', ik ?? null);
    const out = { transaction: txJSON(t), balance_micros: balanceOf(a.id), balance_usd: usd(balanceOf(a.id)) };
    if (ik) idempotency.set(ik, out);
    return send(res, 201, out);
  }
  if (route('POST', '/admin/api-keys')) {
    auth(req, { admin: true });
    const b = await readJSON(req);
    if (!accounts.has(b.account_id)) throw new HttpError(404, 'not_found', 'No such account.');
    const k = { id: id('key'), account_id: b.account_id, name: b.name, secret: newSecret(), active: true, created_at: now(), last_used_at: null, expires_at: null, spend_limit_micros: null, limit_reset: 'none', rpm_limit: null, allowed_models: null, allowed_ips: null };
    keys.set(k.id, k);
    return send(res, 201, { ...keyJSON(k), key: k.secret });
  }
  if (route('POST', '/admin/pricing/recalculate')) {
    auth(req, { admin: true });
    reprice();
    return send(res, 202, { workflow_id: `repricing-manual-${Date.now()}` });
  }
  // Enough of /admin/providers and /status/providers for the providers page to list the built-ins
  // (the mock does not add, test or import: the real API is tested by e2e/catalog.mjs).
  if (route('GET', '/admin/providers')) {
    auth(req, { admin: true });
    const ids = [...new Set(models.map((m) => m.provider))].sort();
    return send(res, 200, {
      data: ids.map((id) => ({ id, format: 'openai', base_urls: [`https://api.${id}.example`], weights: [], builtin: true, has_key: true, headers: [], usage_semantics: null, created_at: null, updated_at: null })),
    });
  }
  if (route('GET', '/status/providers')) {
    const ids = [...new Set(models.map((m) => m.provider))];
    return send(res, 200, { providers: Object.fromEntries(ids.map((id) => [id, { state: 'closed', endpoints: [] }])), fallbacks: {} });
  }
  if (route('GET', '/admin/models')) {
    auth(req, { admin: true });
    return send(res, 200, { data: models.map(adminModelJSON) });
  }
  if ((r = route('PATCH', '/admin/models/:provider/:model'))) {
    auth(req, { admin: true });
    const m = models.find((x) => x.provider === r.provider && x.name === r.model);
    if (!m) throw new HttpError(404, 'not_found', 'No such model.');
    const b = await readJSON(req);
    const set = (f, k) => {
      if (f in b) {
        const v = parseUsd(b[f]);
        if (v === null || v < 0) throw new HttpError(400, 'invalid_request', `Invalid ${f}.`);
        m.base[k] = v;
      }
    };
    set('input_per_million_usd', 'in');
    set('output_per_million_usd', 'out');
    set('request_fee_usd', 'fee');
    if ('active' in b) m.active = !!b.active;
    setTimeout(reprice, 300);
    return send(res, 200, modelJSON(m));
  }
  throw new HttpError(404, 'not_found', `Unknown route ${method} ${p}.`);
}

const API_PREFIXES = ['/v1', '/auth', '/users', '/api-keys', '/account', '/admin', '/webhooks', '/health', '/status', '/metrics'];
const isApi = (p) => API_PREFIXES.some((x) => p === x || p.startsWith(x + '/'));
const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml', '.png': 'image/png', '.json': 'application/json' };

async function staticFile(req, res, url) {
  const headers = {
    'Content-Security-Policy': CSP,
    'X-Content-Type-Options': 'nosniff',
    'X-Frame-Options': 'DENY',
    'Referrer-Policy': 'no-referrer',
  };
  const rel = normalize(decodeURIComponent(url.pathname)).replace(/^(\.\.[/\\])+/, '').replace(/^[/\\]+/, '');
  let file = join(APP_DIR, rel || 'index.html');
  let cache = rel.startsWith('assets/') ? 'public, max-age=31536000, immutable' : 'no-cache';
  try {
    if (!(await stat(file)).isFile()) throw new Error('dir');
  } catch {
    if (rel.startsWith('assets/') || extname(rel)) {
      res.writeHead(404, { ...headers, 'Content-Type': 'text/plain' });
      return res.end('404 page not found');
    }
    file = join(APP_DIR, 'index.html');
    cache = 'no-cache';
  }
  try {
    const data = await readFile(file);
    res.writeHead(200, { ...headers, 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream', 'Cache-Control': cache });
    res.end(req.method === 'HEAD' ? undefined : data);
  } catch {
    res.writeHead(503, { ...headers, 'Content-Type': 'text/plain' });
    res.end('The web app is not built: run `npm run build` in web/.');
  }
}

const server = createServer(async (req, res) => {
  const url = new URL(req.url, `http://${req.headers.host ?? 'localhost'}`);
  try {
    if (isApi(url.pathname)) await api(req, res, url);
    else await staticFile(req, res, url);
  } catch (e) {
    if (e instanceof HttpError) sendError(res, e);
    else {
      console.error(e);
      if (!res.headersSent) sendError(res, new HttpError(500, 'internal_error', 'Mock server error.'));
      else res.end();
    }
  }
});
server.listen(PORT, HOST, () => {
  console.log(`beaver mock API + web app on http://${HOST}:${PORT} (admin ${ADMIN_EMAIL} / ${ADMIN_PASSWORD}, access TTL ${ACCESS_TTL}s)`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
