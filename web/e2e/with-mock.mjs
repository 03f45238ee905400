#!/usr/bin/env node
// Development helper: builds nothing, starts e2e/mock-server.mjs on a free port,
// runs e2e/run.mjs against it, stops the mock. Needs `npm run build` first.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const port = await new Promise((resolve) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const p = s.address().port;
    s.close(() => resolve(p));
  });
});
const env = {
  ...process.env,
  MOCK_PORT: String(port),
  ADMIN_EMAIL: 'admin@localhost',
  ADMIN_PASSWORD: 'admin-password-123',
  // Short-lived access tokens so the run exercises the refresh-on-401 path.
  MOCK_ACCESS_TTL: process.env.MOCK_ACCESS_TTL ?? '8',
};
const mock = spawn(process.execPath, [join(here, 'mock-server.mjs')], { env, stdio: ['ignore', 'inherit', 'inherit'] });
const url = `http://127.0.0.1:${port}`;
for (let i = 0; i < 50; i++) {
  try {
    if ((await fetch(`${url}/health`)).ok) break;
  } catch {
    await new Promise((r) => setTimeout(r, 100));
  }
}
const run = spawn(process.execPath, [join(here, 'run.mjs')], { env: { ...env, BEAVER_URL: url }, stdio: 'inherit' });
const code = await new Promise((r) => run.on('exit', (c) => r(c ?? 1)));
mock.kill('SIGTERM');
process.exit(code);
