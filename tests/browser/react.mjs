// The React hooks (GET /channels-binding-react.mjs) render a live page in
// Debian's Chromium against the quickstart. React comes from the npm
// registry (pinned in package-lock.json); esbuild bundles the page with the
// hooks module downloaded from the server, and the client module is loaded
// by the browser from the server itself. Run by tests/client_browser.rs:
//
//   node tests/browser/react.mjs http://127.0.0.1:PORT/

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { chromium } from 'playwright-core';

const base = process.argv[2];
if (!base) {
  console.error('usage: node react.mjs http://127.0.0.1:PORT/');
  process.exit(2);
}
const here = dirname(fileURLToPath(import.meta.url));
const executablePath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const step = (text) => console.log(`[react.mjs] ${text}`);
const WAIT_MS = 15_000;
let browser;

const watchdog = setTimeout(async () => {
  console.error('[react.mjs] FAILED: the whole run took more than 70 s');
  await browser?.close().catch(() => {});
  process.exit(1);
}, 70_000);

const PAGE = `
import { createElement as h, StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { connect } from '/channels-binding.mjs';
import { useRetrieve, useSearch, useEvent } from './channels-binding-react.mjs';

const client = connect('/', { heartbeatInterval: 0 });
window.client = client;

function User() {
  const { data, error, loading, deleted } = useRetrieve(client, 'auth.User', 7);
  const text = loading ? 'loading' : error ? 'error ' + error.code : deleted ? 'deleted' : data.username;
  return h('p', { id: 'user' }, text);
}

function Users() {
  const { data, error, loading } = useSearch(client, 'auth.User', { order: '-id', limit: 5 });
  if (loading) return h('p', { id: 'users-loading' }, 'loading');
  if (error) return h('p', { id: 'users-error' }, error.code);
  return h('ul', { id: 'users', 'data-count': data.count }, data.rows.map((row) => h('li', { key: row.id }, row.id + ':' + row.username)));
}

function LastDeleted() {
  const push = useEvent(client, 'auth.User.deleted');
  return h('p', { id: 'deleted' }, push ? 'deleted ' + push.data.id : 'none');
}

createRoot(document.getElementById('root')).render(h(StrictMode, null, h(User), h(Users), h(LastDeleted)));
`;

async function api(method, path, body) {
  const response = await fetch(new URL(path, base), {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(WAIT_MS),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: HTTP ${response.status} ${text}`);
  return JSON.parse(text);
}

async function text(page, selector) {
  return page.$eval(selector, (node) => node.textContent).catch(() => null);
}

async function until(page, what, fn, arg) {
  try {
    await page.waitForFunction(fn, arg, { timeout: WAIT_MS, polling: 50 });
  } catch {
    const html = await page.$eval('#root', (n) => n.innerHTML).catch(() => '?');
    throw new Error(`${what}: not within ${WAIT_MS} ms; the page: ${html}`);
  }
  step(`ok: ${what}`);
}

const dir = mkdtempSync(join(tmpdir(), 'channels-binding-react-'));
let exitCode = 0;
try {
  const hooks = await fetch(new URL('channels-binding-react.mjs', base)).then((r) => r.text());
  writeFileSync(join(dir, 'channels-binding-react.mjs'), hooks);
  writeFileSync(join(dir, 'page.mjs'), PAGE);
  const bundled = await build({
    entryPoints: [join(dir, 'page.mjs')],
    bundle: true,
    write: false,
    format: 'esm',
    external: ['/channels-binding.mjs'],
    nodePaths: [join(here, 'node_modules')],
    define: { 'process.env.NODE_ENV': '"development"' },
    logLevel: 'silent',
  });
  const bundle = bundled.outputFiles[0].text;
  step(`bundled React with the served hooks (${(bundle.length / 1024).toFixed(0)} KiB)`);

  browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
  const page = await browser.newPage();
  const problems = [];
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    // The browser asks for /favicon.ico by itself; that 404 is not the page's.
    if (msg.type() === 'error' && !msg.location().url.endsWith('/favicon.ico')) problems.push(`console: ${msg.text()} (${msg.location().url})`);
  });
  // A document of the server's origin, so the page may open sockets to it.
  await page.goto(new URL('channels-binding.mjs', base).href);
  await page.evaluate(() => {
    document.documentElement.innerHTML = '<head><title>hooks</title></head><body><div id="root"></div></body>';
  });
  await page.addScriptTag({ content: bundle, type: 'module' });

  await until(page, 'useRetrieve renders user 7', () => document.querySelector('#user')?.textContent === 'user7');
  await until(page, 'useSearch renders the newest five users', () => document.querySelectorAll('#users li').length === 5);
  const first = await page.$$eval('#users li', (items) => items.map((i) => i.textContent));
  if (first.join(',') !== '5763:Admin,101:user101,100:user100,99:user99,98:user98') throw new Error(`first page: ${first}`);

  await api('PATCH', 'api/auth.User/7', { username: 'seven-renamed' });
  await until(page, 'an update replaces the retrieved object', () => document.querySelector('#user')?.textContent === 'seven-renamed');
  await api('PATCH', 'api/auth.User/100', { username: 'hundred-renamed' });
  await until(page, 'an update replaces its row in the page', () =>
    [...document.querySelectorAll('#users li')].some((li) => li.textContent === '100:hundred-renamed'),
  );
  await api('DELETE', 'api/auth.User/99');
  await until(page, 'a delete removes its row', () =>
    ![...document.querySelectorAll('#users li')].some((li) => li.textContent.startsWith('99:')),
  );
  await until(page, 'useEvent sees the deleted push', () => document.querySelector('#deleted')?.textContent === 'deleted 99');
  const created = await api('POST', 'api/auth.User', { username: 'brand-new', email: 'brand-new@example.com' });
  await until(page, 'a create refetches the page', (id) =>
    document.querySelector('#users li')?.textContent === `${id}:brand-new`, created.id,
  );
  await api('DELETE', 'api/auth.User/7');
  await until(page, 'a delete of the retrieved object shows it deleted', () => document.querySelector('#user')?.textContent === 'deleted');
  const last = await text(page, '#users');
  step(`final page: ${last}`);
  if (problems.length) throw new Error(`errors in the page: ${problems.join('; ')}`);
  step('PASSED');
} catch (err) {
  console.error(`[react.mjs] FAILED: ${err.stack || err}`);
  exitCode = 1;
} finally {
  clearTimeout(watchdog);
  await browser?.close().catch(() => {});
  rmSync(dir, { recursive: true, force: true });
}
process.exit(exitCode);
