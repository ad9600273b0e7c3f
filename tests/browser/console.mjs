// End-to-end test of the console page (GET /) in Debian's Chromium, driven by
// playwright-core. Run by tests/console_browser.rs against the quickstart:
//
//   node tests/browser/console.mjs http://127.0.0.1:PORT/ [SCREENSHOT.png]
//
// Needs /usr/bin/chromium (or CHROMIUM_PATH) and `npm ci --prefix tests/browser`
// (.ci/browser-setup does both). Exits 0 when every check passed, 1 otherwise,
// printing each step so a failure says where it stopped.

import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { chromium } from 'playwright-core';

const base = process.argv[2];
const screenshot = resolve(process.argv[3] ?? 'target/console.png');
const executablePath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const WAIT_MS = 15_000;
const DEADLINE_MS = 50_000; // the Rust test kills us at 60 s

if (!base) {
  console.error('usage: node console.mjs http://127.0.0.1:PORT/ [screenshot.png]');
  process.exit(2);
}

const step = (text) => console.log(`[console.mjs] ${text}`);
let browser;
const pageProblems = [];

const watchdog = setTimeout(async () => {
  console.error(`[console.mjs] FAILED: the whole run took more than ${DEADLINE_MS / 1000} s`);
  await browser?.close().catch(() => {});
  process.exit(1);
}, DEADLINE_MS);

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function postFrame(frame) {
  const response = await fetch(base, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(frame),
    signal: AbortSignal.timeout(WAIT_MS),
  });
  const text = await response.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: response.status, text, body };
}

/** The log entries as plain data, for assertions and failure messages. */
async function entries(page) {
  return page.$$eval('#log .entry', (nodes) =>
    nodes.map((n) => ({ kind: n.dataset.kind, classes: n.className, event: n.dataset.event ?? null, text: n.textContent })),
  );
}

/** Waits until an entry of `kind` (`reply`, `push`, ...) matches; returns it. */
async function waitForEntry(page, kind, { event, contains = [] }, what) {
  try {
    await page.waitForFunction(
      ({ kind, event, contains }) =>
        [...document.querySelectorAll(`#log .entry.${kind}`)].some(
          (n) => (event === undefined || n.dataset.event === event) && contains.every((c) => n.textContent.includes(c)),
        ),
      { kind, event, contains },
      { timeout: WAIT_MS, polling: 50 },
    );
  } catch (err) {
    const log = (await entries(page).catch(() => []))
      .map((e) => `  ${e.classes} | ${e.event} | ${e.text.replace(/\s+/g, ' ').slice(0, 300)}`)
      .join('\n');
    throw new Error(`${what}: no .entry.${kind} with event ${event} containing ${JSON.stringify(contains)} within ${WAIT_MS} ms; the log:\n${log || '  (empty)'}`);
  }
  step(`ok: ${what}`);
}

async function sendExample(page, name, event) {
  await page.click(`#example-${name}`);
  const frame = JSON.parse(await page.inputValue('#frame'));
  check(frame.event === event, `the ${name} example loads ${JSON.stringify(frame)}, expected event ${event}`);
  await page.click('#send');
}

async function run() {
  step(`GET ${base}`);
  const home = await fetch(base, { signal: AbortSignal.timeout(WAIT_MS) }).catch((err) => {
    throw new Error(`cannot reach ${base}: ${err.cause?.message ?? err.message}`);
  });
  const homeText = await home.text();
  check(
    home.status === 200 && /text\/html/.test(home.headers.get('content-type') ?? '') && homeText.includes('id="log"'),
    `GET ${base} should serve the console page (200, text/html), got ${home.status} ` +
      `${home.headers.get('content-type')}: ${homeText.slice(0, 200)}`,
  );

  step(`launching ${executablePath}`);
  browser = await chromium.launch({
    executablePath,
    headless: true,
    timeout: WAIT_MS,
    // Playwright gives every launch a fresh, temporary --user-data-dir.
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.setDefaultTimeout(WAIT_MS);
  page.on('pageerror', (err) => pageProblems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') pageProblems.push(`console error: ${msg.text()}`);
  });
  page.on('dialog', (dialog) => {
    pageProblems.push(`unexpected dialog: ${dialog.message()}`);
    dialog.dismiss().catch(() => {});
  });

  await page.goto(base, { waitUntil: 'load' });
  await page.waitForSelector('#status[data-state="connected"]');
  check((await page.textContent('#status')).trim() === 'connected', '#status should say connected');
  step('ok: #status says connected');

  // The seed's first exchange: search page 2.
  await sendExample(page, 'search', 'auth.User.search');
  await waitForEntry(page, 'sent', { event: 'auth.User.search' }, 'the sent search is logged');
  await waitForEntry(page, 'reply', { event: 'auth.User.search', contains: ['"rows"', '"count": 102', '"page": 2'] }, 'search reply with rows');

  // retrieve 5763 subscribes this socket to user 5763 (PROTOCOL §3).
  await sendExample(page, 'retrieve', 'auth.User.retrieve');
  await waitForEntry(page, 'reply', { event: 'auth.User.retrieve', contains: ['"id": 5763'] }, 'retrieve reply');

  // A change over HTTP (POST /, PROTOCOL §4) while the page is open...
  step('POST / auth.User.update {id: 5763, username: "from-http"}');
  const posted = await postFrame({ event: 'auth.User.update', data: { id: 5763, username: 'from-http' } });
  check(
    posted.status === 200 && posted.body?.event === 'auth.User.update' && posted.body?.data?.username === 'from-http',
    `POST ${base} should answer 200 with the updated user, got ${posted.status}: ${posted.text.slice(0, 300)}`,
  );
  step('ok: POST / answered 200');
  // ...reaches the page as a push, marked as one and named by its event.
  await waitForEntry(page, 'push', { event: 'auth.User.retrieve', contains: ['from-http'] }, 'push of the HTTP change (retrieve subscription)');
  const push = (await entries(page)).find((e) => e.kind === 'push' && e.text.includes('from-http'));
  check(!/request_id/.test(push.text), `a push never carries a request_id: ${push.text}`);
  // The picture a person would want: the reply with rows and the pushed change.
  mkdirSync(dirname(screenshot), { recursive: true });
  await page.screenshot({ path: screenshot, fullPage: true });
  step(`screenshot: ${screenshot}`);

  // Server text is shown as text, never as markup.
  const hostile = '<img src=x id=xss onerror="window.__xss=1"></pre><b>bold</b>';
  await page.fill('#frame', JSON.stringify({ event: 'auth.User.save', data: { id: 5763, username: hostile } }));
  await page.click('#send');
  await waitForEntry(page, 'reply', { event: 'auth.User.save', contains: ['"success": true'] }, 'save reply');
  // The log shows pretty-printed JSON, so the string appears JSON-escaped.
  await waitForEntry(page, 'push', { event: 'auth.User.retrieve', contains: [JSON.stringify(hostile)] }, 'push with markup in it, as text');
  check((await page.$('#log img, #log b, #xss')) === null, 'server text must not become elements in the log');
  check((await page.evaluate(() => window.__xss)) === undefined, 'server text must not run as script');
  step('ok: server text is escaped');

  // A bad frame gets an error reply and the socket stays open (PROTOCOL §1).
  await page.fill('#frame', JSON.stringify({ event: 'no.such.thing', data: {} }));
  await page.click('#send');
  await waitForEntry(page, 'reply', { event: 'no.such.thing', contains: ['unknown_event'] }, 'error reply is logged');
  check(
    (await page.$('#log .entry.reply.error[data-event="no.such.thing"]')) !== null,
    'an error reply is marked as an error',
  );
  check((await page.textContent('#status')).trim() === 'connected', 'still connected after an error reply');

  // Newest entry last.
  const all = await entries(page);
  check(all.at(-1).event === 'no.such.thing', `the newest entry is last, got ${all.at(-1).event}`);

  check(pageProblems.length === 0, `the page reported problems:\n  ${pageProblems.join('\n  ')}`);
}

try {
  await run();
  step('PASSED');
  await browser?.close();
  clearTimeout(watchdog);
  process.exit(0);
} catch (err) {
  console.error(`[console.mjs] FAILED: ${err?.stack ?? err}`);
  if (pageProblems.length) console.error(`[console.mjs] the page reported:\n  ${pageProblems.join('\n  ')}`);
  if (browser) {
    try {
      const pages = browser.contexts().flatMap((c) => c.pages());
      if (pages[0]) {
        mkdirSync(dirname(screenshot), { recursive: true });
        await pages[0].screenshot({ path: screenshot, fullPage: true });
        console.error(`[console.mjs] screenshot of the failure: ${screenshot}`);
      }
    } catch {
      // best effort
    }
    await browser.close().catch(() => {});
  }
  clearTimeout(watchdog);
  process.exit(1);
}
