import { defineConfig } from 'vitest/config';

// The API the dev server proxies to (`npm run dev`); the production build is
// served by the Go binary on the same origin as the API, so no proxy there.
const api = process.env.BEAVER_API ?? 'http://127.0.0.1:8080';
const apiPaths = ['/v1', '/auth', '/users', '/api-keys', '/account', '/admin', '/webhooks', '/health', '/status', '/metrics'];

export default defineConfig({
  // JSX via Preact's automatic runtime (no Babel preset needed).
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: 'dist/app',
    emptyOutDir: true,
    assetsDir: 'assets',
    // Everything as files: the CSP forbids inline scripts/styles and data: fonts.
    assetsInlineLimit: 0,
    sourcemap: false,
    modulePreload: { polyfill: false },
    target: 'es2022',
  },
  server: {
    proxy: Object.fromEntries(apiPaths.map((p) => [p, { target: api, changeOrigin: false }])),
  },
  test: {
    environment: 'node',
    include: ['src/**/*.test.ts'],
  },
});
