// The JavaScript client (GET /channels-binding.mjs) in Debian's Chromium,
// against a real quickstart process. Run by tests/client_browser.rs:
//
//   node tests/browser/client.mjs SCENARIO http://127.0.0.1:PORT/ [OTHER_BASE]
//
// Scenarios: calls, pushes, restart, replay, token, heartbeat, http.
// When a scenario needs the server changed (stopped, restarted, frozen) it
// prints one line `@<command>` and waits for the Rust side to answer `@ok`
// on stdin. Exits 0 when every check passed, 1 otherwise, printing each step.

import { createHmac } from 'node:crypto';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const [scenario, base, other] = process.argv.slice(2);
const executablePath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const DEADLINE_MS = Number(process.env.CLIENT_TEST_DEADLINE_MS || 80_000);

if (!scenario || !base) {
  console.error('usage: node client.mjs SCENARIO http://127.0.0.1:PORT/ [OTHER_BASE]');
  process.exit(2);
}

const step = (text) => console.log(`[client.mjs ${scenario}] ${text}`);
let browser;

const watchdog = setTimeout(async () => {
  console.error(`[client.mjs] FAILED: ${scenario} took more than ${DEADLINE_MS / 1000} s`);
  await browser?.close().catch(() => {});
  process.exit(1);
}, DEADLINE_MS);

// ---- the control channel to the Rust test ---------------------------------

const stdinLines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

/** Asks the Rust side to act on the server (`restart`, `stop`, `cont`, ...). */
async function control(command) {
  console.log(`@${command}`);
  const { value, done } = await stdinLines.next();
  if (done || !value.startsWith('@ok')) throw new Error(`control ${command}: got ${done ? 'end of input' : value}`);
  step(`server: ${command} done`);
  return value.slice(3).trim();
}

// ---- tokens (HS256, as DEMO.md's CHANNELS_BINDING_JWT_SECRET) -------------

const b64url = (buffer) => Buffer.from(buffer).toString('base64url');
function mintToken(sub, seconds) {
  const secret = process.env.CLIENT_TEST_JWT_SECRET;
  if (!secret) throw new Error('CLIENT_TEST_JWT_SECRET is not set');
  const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const now = Math.floor(Date.now() / 1000);
  const payload = b64url(JSON.stringify({ sub, iat: now, exp: now + seconds }));
  const signature = createHmac('sha256', secret).update(`${header}.${payload}`).digest('base64url');
  return `${header}.${payload}.${signature}`;
}

// ---- the page -----------------------------------------------------------

/** A page on the server's origin with the client module loaded as `window.cb`. */
async function openPage() {
  browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
  const page = await browser.newPage();
  const problems = [];
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
  });
  // A document of the server's own origin (the module itself, shown as text):
  // a page fulfilled by the test would count as public, and Chromium's local
  // network access checks would block its sockets to 127.0.0.1.
  await page.goto(new URL('channels-binding.mjs', base).href);
  await page.exposeFunction('mintToken', (sub, seconds) => mintToken(sub, seconds));
  await page.evaluate(async () => {
    window.cb = await import('/channels-binding.mjs');
    window.log = [];
  });
  step('page loaded the client from /channels-binding.mjs');
  return { page, problems };
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

/** Polls `fn` in the page until it returns truthy; returns that value. */
async function until(page, fn, arg, what, timeout = 20_000) {
  try {
    const handle = await page.waitForFunction(fn, arg, { timeout, polling: 50 });
    const value = await handle.jsonValue();
    step(`ok: ${what}`);
    return value;
  } catch (err) {
    const log = await page.evaluate(() => JSON.stringify(window.log?.slice(-30) ?? [])).catch(() => '?');
    throw new Error(`${what}: not within ${timeout} ms (${err.message.split('\n')[0]}); page log tail: ${log}`);
  }
}

// ---- scenarios ----------------------------------------------------------

const scenarios = {
  /** 200 concurrent calls matched by request_id; error replies reject with their code. */
  async calls(page) {
    const result = await page.evaluate(async () => {
      const client = cb.connect('/', { heartbeatInterval: 0 });
      const ids = Array.from({ length: 200 }, (_, i) => (i % 101) + 1);
      const t0 = performance.now();
      // Half retrieve, half search with a filter: different work, different reply times.
      const replies = await Promise.all(
        ids.map((id, i) =>
          i % 2 === 0
            ? client.call('auth.User.retrieve', { id })
            : client.call('auth.User.search', { query: `user${id}@`, limit: 5 }),
        ),
      );
      const ms = performance.now() - t0;
      const mismatched = replies
        .map((reply, i) => {
          const id = ids[i];
          if (i % 2 === 0) return reply?.id === id ? null : `retrieve ${id} got ${JSON.stringify(reply)}`;
          const emails = (reply?.rows ?? []).map((r) => r.email);
          return emails.includes(`user${id}@example.com`) ? null : `search user${id}@ got ${JSON.stringify(emails)}`;
        })
        .filter(Boolean);
      const codeOf = (promise) =>
        promise.then(
          () => ({ ok: true }),
          (err) => ({ name: err.name, isError: err instanceof Error, code: err.code, fields: err.fields, message: err.message }),
        );
      const notFound = await codeOf(client.call('auth.User.retrieve', { id: 987654 }));
      const validation = await codeOf(client.call('auth.User.update', { id: 3, is_superuser: true }));
      const unknown = await codeOf(client.call('nothing.Here.retrieve', { id: 1 }));
      const timeout = await codeOf(client.call('auth.User.search', {}, { timeout: 0 }));
      client.close();
      const closed = await codeOf(client.call('auth.User.retrieve', { id: 1 }));
      return { count: replies.length, mismatched, ms, notFound, validation, unknown, timeout, closed, state: client.state };
    });
    step(`200 concurrent calls in ${result.ms.toFixed(0)} ms`);
    check(result.count === 200 && result.mismatched.length === 0, `mismatched replies: ${JSON.stringify(result.mismatched.slice(0, 5))}`);
    check(result.notFound.code === 'not_found' && result.notFound.isError, `missing object: ${JSON.stringify(result.notFound)}`);
    check(
      result.validation.code === 'validation' && result.validation.fields && 'is_superuser' in result.validation.fields,
      `unknown field: ${JSON.stringify(result.validation)}`,
    );
    check(result.unknown.code === 'unknown_event', `unknown event: ${JSON.stringify(result.unknown)}`);
    check(result.timeout.code === 'timeout', `zero timeout: ${JSON.stringify(result.timeout)}`);
    check(result.closed.code === 'closed' && result.state === 'closed', `after close: ${JSON.stringify(result.closed)}`);
    step('ok: replies correlated; not_found, validation (with fields), unknown_event, timeout, closed reject with their code');
  },

  /** 1000 changes reach a subscriber in order, each once. */
  async pushes(page) {
    const result = await page.evaluate(async () => {
      const reader = cb.connect('/', { heartbeatInterval: 0 });
      const writer = cb.connect('/', { heartbeatInterval: 0 });
      const seen = [];
      const sub = reader.subscribe('auth.User', (push) => seen.push([push.seq, push.event, push.data?.username]));
      await sub.ready;
      const start = sub.position;
      const N = 1000;
      const t0 = performance.now();
      for (let i = 0; i < N; i += 50) {
        await Promise.all(
          Array.from({ length: 50 }, (_, j) =>
            writer.call('auth.User.update', { id: ((i + j) % 100) + 1, username: `bulk${i + j}` }),
          ),
        );
      }
      const deadline = Date.now() + 20_000;
      while (seen.length < N && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 300)); // any extra (duplicate) push would show up here
      const ms = performance.now() - t0;
      reader.close();
      writer.close();
      return { start, seen, ms };
    });
    const { seen, start } = result;
    step(`${seen.length} pushes in ${result.ms.toFixed(0)} ms, from position ${JSON.stringify(start)}`);
    check(seen.length === 1000, `expected 1000 pushes, got ${seen.length}`);
    for (let i = 0; i < seen.length; i++) {
      check(seen[i][0] === start.seq + 1 + i, `push ${i} has seq ${seen[i][0]}, expected ${start.seq + 1 + i} (gap or duplicate)`);
      check(seen[i][1].startsWith('auth.User.updated#'), `push ${i} is ${seen[i][1]}`);
    }
    const names = new Set(seen.map((s) => s[2]));
    check(names.size === 1000, `each write seen once: ${names.size} distinct usernames`);
    step('ok: 1000 pushes, consecutive seq, no gap, no duplicate');
  },

  /** The server restarts on the same port (memory layer): reconnect, renew, resync, next change. */
  async restart(page) {
    await page.evaluate(async () => {
      const client = cb.connect('/', { reconnectDelay: 100, reconnectMaxDelay: 500, heartbeatInterval: 1000, heartbeatTimeout: 1000 });
      window.client = client;
      window.states = [];
      window.resyncs = [];
      window.pushes = [];
      client.on('state', (s) => { states.push(s); log.push(['state', s]); });
      client.on('resync', (stream, info) => { resyncs.push([stream, info]); log.push(['resync', stream]); });
      client.on('disconnect', (d) => log.push(['disconnect', d.code]));
      const sub = client.subscribe('auth.User', (p) => { pushes.push([p.event, p.seq, p.epoch, p.data?.username]); log.push(['push', p.event, p.seq]); });
      await sub.ready;
      window.sub = sub;
      await client.call('auth.User.update', { id: 5, username: 'before-restart' });
    });
    await until(page, () => window.pushes.some((p) => p[3] === 'before-restart'), null, 'push before the restart');
    const before = await page.evaluate(() => window.sub.position);
    await control('restart');
    await until(page, () => window.states.includes('reconnecting') && window.client.state === 'open', null, 'reconnecting -> open');
    await until(page, () => window.resyncs.length > 0, null, 'resync reported (the memory layer lost its history)');
    const info = await page.evaluate(async () => {
      // A call made right after reopening: answered on the new process.
      await client.call('auth.User.update', { id: 6, username: 'after-restart' });
      return { resync: resyncs[0], position: sub.position };
    });
    check(info.resync[0] === 'auth.User', `resync names the stream: ${JSON.stringify(info.resync)}`);
    check(info.resync[1].epoch !== before.epoch, `a new epoch: before ${JSON.stringify(before)}, resync ${JSON.stringify(info.resync)}`);
    await until(page, () => window.pushes.some((p) => p[3] === 'after-restart'), null, 'the next change after the restart arrives');
    const states = await page.evaluate(() => window.states);
    check(states[0] === 'open' && states.includes('reconnecting'), `states: ${states}`);
    step(`states: ${states.join(' -> ')}`);

    // Calls made while the server is down wait in the queue, then succeed.
    await control('stop');
    await until(page, () => window.client.state === 'reconnecting', null, 'reconnecting while the server is down');
    await page.evaluate(() => {
      window.queued = client.call('auth.User.retrieve', { id: 7 }, { timeout: 20_000 }).then(
        (u) => ['ok', u.id],
        (e) => ['err', e.code],
      );
      window.timedOut = client.call('auth.User.retrieve', { id: 8 }, { timeout: 100 }).then(
        () => ['ok'],
        (e) => ['err', e.code],
      );
    });
    await until(page, async () => (await window.timedOut)?.[1] === 'timeout', null, 'a queued call with a short timeout fails with timeout');
    await control('start');
    const queued = await until(page, () => window.queued, null, 'the queued call is answered after the server came back');
    check(queued[0] === 'ok' && queued[1] === 7, `queued call: ${JSON.stringify(queued)}`);
  },

  /** Redis layer: changes made on another process while this one restarts are replayed, not resynced. */
  async replay(page) {
    await page.evaluate(async () => {
      const client = cb.connect('/', { reconnectDelay: 100, reconnectMaxDelay: 500, heartbeatInterval: 1000, heartbeatTimeout: 1000 });
      window.client = client;
      window.states = [];
      window.resyncs = [];
      window.pushes = [];
      client.on('state', (s) => { states.push(s); log.push(['state', s]); });
      client.on('resync', (stream) => { resyncs.push(stream); log.push(['resync', stream]); });
      const sub = client.subscribe('auth.User', (p) => { pushes.push([p.event, p.seq, p.epoch, p.data?.username]); log.push(['push', p.event, p.seq]); });
      await sub.ready;
      window.sub = sub;
      await client.call('auth.User.update', { id: 5, username: 'replay-before' });
    });
    await until(page, () => window.pushes.some((p) => p[3] === 'replay-before'), null, 'push before the restart');
    await control('stop');
    await until(page, () => window.client.state === 'reconnecting', null, 'reconnecting while this process is down');
    // Writes through the other process, while this client is disconnected.
    const writes = [];
    for (let i = 0; i < 5; i++) {
      const response = await fetch(new URL('api/auth.User/9', other), {
        method: 'PATCH',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: `missed${i}` }),
      });
      check(response.ok, `write ${i} on the other process: HTTP ${response.status} ${await response.text()}`);
      writes.push(`missed${i}`);
    }
    step('5 writes on the other process while disconnected');
    await control('start');
    await until(page, () => window.client.state === 'open', null, 'reopened');
    await until(page, () => window.pushes.filter((p) => p[3]?.startsWith('missed')).length === 5, null, 'the 5 missed changes are replayed');
    await page.evaluate(() => client.call('auth.User.update', { id: 6, username: 'replay-after' }));
    await until(page, () => window.pushes.some((p) => p[3] === 'replay-after'), null, 'the next change arrives');
    const { pushes, resyncs } = await page.evaluate(() => ({ pushes: window.pushes, resyncs: window.resyncs }));
    check(resyncs.length === 0, `no resync with a shared history: ${JSON.stringify(resyncs)}`);
    const missed = pushes.filter((p) => p[3]?.startsWith('missed')).map((p) => p[3]);
    check(JSON.stringify(missed) === JSON.stringify(writes), `replayed in order: ${JSON.stringify(missed)}`);
    for (let i = 1; i < pushes.length; i++) {
      check(pushes[i][2] === pushes[0][2] && pushes[i][1] === pushes[i - 1][1] + 1, `consecutive seq in one epoch: ${JSON.stringify(pushes)}`);
    }
    step('ok: replayed in order, consecutive seq, no resync');
  },

  /** The token function runs before every connect; an expired token (1008) is replaced. */
  async token(page) {
    await page.evaluate(async () => {
      window.minted = 0;
      window.states = [];
      window.closes = [];
      const client = cb.connect('/', {
        reconnectDelay: 100,
        reconnectMaxDelay: 500,
        heartbeatInterval: 0,
        token: async () => {
          window.minted += 1;
          // The first token lives 2 seconds; later ones an hour.
          return window.mintToken('1', window.minted === 1 ? 2 : 3600);
        },
      });
      window.client = client;
      client.on('state', (s) => { states.push(s); log.push(['state', s]); });
      client.on('disconnect', (d) => { closes.push(d.code); log.push(['disconnect', d.code, d.reason]); });
      // Updating yourself needs your identity: the token is really used.
      await client.call('auth.User.update', { id: 1, username: 'token-one' });
    });
    step('authenticated as user 1 with a 2-second token');
    await until(page, () => window.closes.includes(1008), null, 'the server closes with 1008 when the token expires', 10_000);
    await until(page, () => window.client.state === 'open' && window.minted >= 2, null, 'reconnected with a fresh token');
    const after = await page.evaluate(async () => {
      const user = await client.call('auth.User.update', { id: 1, username: 'token-two' });
      const other = await client.call('auth.User.update', { id: 2, username: 'not-mine' }).then(
        () => 'ok',
        (e) => e.code,
      );
      return { user, other, minted: window.minted, states: window.states };
    });
    check(after.user.username === 'token-two', `write as user 1 after the refresh: ${JSON.stringify(after.user)}`);
    check(after.other === 'forbidden', `still user 1, not staff: ${after.other}`);
    step(`token function called ${after.minted} times; states ${after.states.join(' -> ')}`);
  },

  /** A frozen server (SIGSTOP) is noticed by the heartbeat within its bound. */
  async heartbeat(page) {
    await page.evaluate(async () => {
      const client = cb.connect('/', { reconnectDelay: 100, reconnectMaxDelay: 300, heartbeatInterval: 500, heartbeatTimeout: 1000 });
      window.client = client;
      window.states = [];
      client.on('state', (s) => { states.push([s, Date.now()]); log.push(['state', s]); });
      client.on('disconnect', (d) => log.push(['disconnect', d.code, d.reason]));
      await client.call('auth.User.retrieve', { id: 1 });
    });
    await control('freeze');
    const frozenAt = await page.evaluate(() => Date.now());
    const noticed = await until(
      page,
      () => window.states.find(([s]) => s === 'reconnecting')?.[1],
      null,
      'the frozen server is noticed',
      6_000,
    );
    const ms = noticed - frozenAt;
    step(`noticed after ${ms} ms (interval 500 + timeout 1000)`);
    check(ms <= 2_500, `noticed after ${ms} ms, bound is 500 + 1000 + one tick`);
    await control('thaw');
    await until(page, () => window.client.state === 'open', null, 'open again after the server resumed');
    const user = await page.evaluate(() => client.call('auth.User.retrieve', { id: 1 }));
    check(user.id === 1, 'calls work again');
  },

  /** A socket the server closes as a slow consumer (1013) resumes with `since` and loses nothing. */
  async slow(page) {
    const token = mintToken('1', 3600);
    const write = async (method, path, body) => {
      const response = await fetch(new URL(path, base), {
        method,
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify(body),
      });
      const text = await response.text();
      if (!response.ok) throw new Error(`${method} ${path}: HTTP ${response.status} ${text}`);
      return JSON.parse(text);
    };
    const note = await write('POST', 'api/notes.Note', { title: 'big', body: 'x' });
    await page.evaluate(async (id) => {
      const client = cb.connect('/', { reconnectDelay: 100, reconnectMaxDelay: 500, heartbeatInterval: 0, token: () => window.mintToken('1', 3600) });
      window.client = client;
      window.closes = [];
      window.resyncs = [];
      window.feed = [];
      window.object = [];
      client.on('disconnect', (d) => { closes.push(d.code); log.push(['disconnect', d.code, d.reason]); });
      client.on('resync', (stream, info) => { resyncs.push(stream); log.push(['resync', stream, info]); });
      client.on('state', (s) => log.push(['state', s, window.feed.length, window.feed.at(-1)?.[0]]));
      client.on('error', (e) => log.push(['error', String(e)]));
      const feedSub = client.subscribe('notes.Note', (p) => window.feed.push([p.seq, p.data?.title]));
      const objectSub = client.subscribe(`notes.Note#${id}`, (p) => window.object.push([p.seq, p.data?.title]));
      await Promise.all([feedSub.ready, objectSub.ready]);
      // A retrieve subscribes too: three frames per change for this socket.
      await client.call('notes.Note.retrieve', { id });
    }, note.id);
    // Big pushes, so that the socket's buffers and queue fill fast.
    const body = 'y'.repeat(10_000);
    const N = 900;
    // The page stops reading (its main thread is busy) while the writes go on.
    const busy = page.evaluate(() => {
      const end = Date.now() + 12_000;
      while (Date.now() < end) {
        // busy: no frame is read
      }
    });
    await new Promise((r) => setTimeout(r, 200));
    const t0 = Date.now();
    for (let i = 0; i < N; i += 30) {
      await Promise.all(Array.from({ length: 30 }, (_, j) => write('PATCH', `api/notes.Note/${note.id}`, { title: `t${i + j}`, body })));
    }
    step(`${N} updates of ${body.length} bytes in ${Date.now() - t0} ms while the page was busy`);
    await busy;
    await until(page, () => window.closes.includes(1013) || window.closes.length > 0, null, 'the server dropped the slow socket');
    await until(page, () => window.client.state === 'open', null, 'reconnected');
    try {
      await until(page, (n) => window.feed.filter((f) => f[1]?.startsWith('t')).length >= n, N, `the feed saw all ${N} changes`);
    } catch (err) {
      const seen = await page.evaluate(() => ({ n: window.feed.length, first: window.feed.slice(0, 3), last: window.feed.slice(-3), gaps: window.feed.filter((f, i) => i > 0 && f[0] !== window.feed[i - 1][0] + 1).slice(0, 5) }));
      throw new Error(`${err.message}; feed: ${JSON.stringify(seen)}`);
    }
    const { feed, object, closes, resyncs } = await page.evaluate(() => ({ feed: window.feed, object: window.object, closes: window.closes, resyncs: window.resyncs }));
    step(`closes: ${closes.join(', ')}; feed pushes: ${feed.length}; object pushes: ${object.length}; resyncs: ${resyncs.length}`);
    check(closes.includes(1013), `closed as a slow consumer (1013): ${closes}`);
    check(resyncs.length === 0, `resumed from history, no resync: ${resyncs}`);
    for (let i = 1; i < feed.length; i++) check(feed[i][0] === feed[i - 1][0] + 1, `feed seq ${feed[i - 1][0]} then ${feed[i][0]}: a gap or a duplicate`);
    const titles = feed.map((f) => f[1]).filter((t) => t?.startsWith('t'));
    check(titles.length === N && new Set(titles).size === N, `each change once: ${titles.length} seen, ${new Set(titles).size} distinct`);
    await until(page, (n) => window.object.filter((f) => f[1]?.startsWith('t')).length >= n, N, `the object subscription saw all ${N} changes`);
  },

  /** Without WebSocket: calls over POST /, subscriptions over SSE resuming with Last-Event-ID. */
  async http(page) {
    await page.evaluate(async () => {
      window.feedOpens = [];
      const countingFetch = (url, init) => {
        if (String(url).includes('/events')) window.feedOpens.push(String(url));
        return fetch(url, init);
      };
      const client = cb.connect('/', { transport: 'http', fetch: countingFetch, reconnectDelay: 100, reconnectMaxDelay: 500, heartbeatInterval: 2000, heartbeatTimeout: 2000 });
      window.client = client;
      window.pushes = [];
      window.resyncs = [];
      client.on('resync', (stream) => { resyncs.push(stream); log.push(['resync', stream]); });
      client.subscribe('auth.User', (p) => { pushes.push([p.event, p.seq, p.epoch, p.data?.username]); log.push(['push', p.event, p.seq]); });
      client.subscribe('auth.User#12', (p) => log.push(['object', p.event, p.seq]));
    });
    const result = await page.evaluate(async () => {
      const user = await client.call('auth.User.retrieve', { id: 3 });
      const missing = await client.call('auth.User.retrieve', { id: 987654 }).then(
        () => null,
        (e) => ({ code: e.code, status: e.status }),
      );
      return { user, missing, transport: client.transport };
    });
    check(result.transport === 'http' && result.user.id === 3, `call over POST /: ${JSON.stringify(result)}`);
    check(result.missing.code === 'not_found' && result.missing.status === 404, `error over HTTP: ${JSON.stringify(result.missing)}`);
    // The feed is open once a push arrives; write until one does (the first may precede the feed).
    for (let i = 0; i < 50; i++) {
      await page.evaluate((i) => client.call('auth.User.update', { id: 12, username: `sse${i}` }), i);
      if (await page.evaluate(() => window.pushes.length > 0)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await until(page, () => window.pushes.length > 0, null, 'a push over SSE');
    await until(page, () => window.log.some((l) => l[0] === 'object'), null, 'the object subscription (auth.User#12) gets its push');
    const feeds = await page.evaluate(() => window.feedOpens);
    check(feeds.length === 1, `one SSE feed for the stream and the object subscription: ${JSON.stringify(feeds)}`);
    step('ok: both subscriptions share one SSE connection');
    await control('restart');
    await page.evaluate(() => client.call('auth.User.update', { id: 12, username: 'sse-after' }, { timeout: 15_000 }));
    await until(page, () => window.resyncs.length > 0, null, 'resync over SSE after the restart (Last-Event-ID of a lost epoch)');
    await until(page, () => window.pushes.some((p) => p[3] === 'sse-after') || window.resyncs.length > 0, null, 'follows the new process');
    await page.evaluate(() => client.call('auth.User.update', { id: 12, username: 'sse-later' }));
    await until(page, () => window.pushes.some((p) => p[3] === 'sse-later'), null, 'the next change arrives over the new feed');
  },
};

// ---- main ---------------------------------------------------------------

let exitCode = 0;
try {
  const run = scenarios[scenario];
  if (!run) throw new Error(`no scenario ${scenario}; have ${Object.keys(scenarios).join(', ')}`);
  const { page, problems } = await openPage();
  await run(page);
  const serious = problems.filter((p) => !/WebSocket connection to .* failed|ERR_CONNECTION_REFUSED|Failed to load resource/.test(p));
  check(serious.length === 0, `errors in the page: ${serious.join('; ')}`);
  step('PASSED');
} catch (err) {
  console.error(`[client.mjs ${scenario}] FAILED: ${err.stack || err}`);
  exitCode = 1;
} finally {
  clearTimeout(watchdog);
  await browser?.close().catch(() => {});
}
console.log('@end');
process.exit(exitCode);
