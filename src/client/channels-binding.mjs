// channels-binding client: one ES module, no dependencies, no build step.
//
//   import { connect } from '/channels-binding.mjs';
//   const client = connect('/', { token: async () => fetchToken() });
//   const user = await client.call('auth.User.retrieve', { id: 5763 });
//   const sub = client.subscribe('auth.User', (push) => console.log(push.event, push.data));
//   client.on('resync', (stream) => refetch(stream));
//
// The wire protocol is PROTOCOL.md (v1): frames {event, data, request_id},
// replies matched by request_id, pushes carrying {seq, epoch}, `since` to
// resume a subscription, `resync` when the server cannot. Every option is
// documented in README.md next to this file.

/** The four states a client goes through; `closed` is final. */
export const STATES = Object.freeze(['connecting', 'open', 'reconnecting', 'closed']);

/** Defaults of every option (README.md explains each one). */
export const DEFAULTS = Object.freeze({
  transport: 'auto',
  timeout: 10_000,
  maxQueue: 1000,
  reconnectDelay: 250,
  reconnectMaxDelay: 15_000,
  heartbeatInterval: 20_000,
  heartbeatTimeout: 10_000,
  heartbeatEvent: 'channels_binding.heartbeat',
  workerTimers: true,
});

/**
 * An error reply (or a local failure) as an `Error`: `code` is one of the
 * protocol's codes (`validation`, `not_found`, ...) or, for failures on this
 * side, `timeout`, `closed`, `queue_full`, `connection_lost`, `network`.
 */
export class ChannelsBindingError extends Error {
  constructor(code, message, extra = {}) {
    super(message || code);
    this.name = 'ChannelsBindingError';
    this.code = code;
    this.event = extra.event ?? null;
    this.fields = extra.fields ?? null;
    this.retryAfterMs = extra.retry_after_ms ?? extra.retryAfterMs ?? null;
    this.status = extra.status ?? null;
    this.details = extra;
  }
}

function errorFrom(error, event, status) {
  const { code = 'internal', message = '', ...rest } = error && typeof error === 'object' ? error : {};
  return new ChannelsBindingError(code, message, { ...rest, event, status });
}

/** Splits `stream.action#hash` into its parts (the action is the last dot-separated segment). */
export function parseEvent(event) {
  const at = event.indexOf('#');
  const name = at < 0 ? event : event.slice(0, at);
  const hash = at < 0 ? null : event.slice(at + 1);
  const dot = name.lastIndexOf('.');
  return { stream: dot < 0 ? name : name.slice(0, dot), action: dot < 0 ? '' : name.slice(dot + 1), hash };
}

/** Splits a subscription target `stream` or `stream#id`. */
function parseTarget(target) {
  const at = target.indexOf('#');
  return at < 0 ? { stream: target, hash: null } : { stream: target.slice(0, at), hash: target.slice(at + 1) };
}

/**
 * A periodic tick that background tabs do not slow to once a minute: timers
 * of a dedicated worker are not subject to the intensive throttling of hidden
 * pages, so the tick runs in a tiny worker when one can be made (a CSP
 * without `worker-src blob:` forbids it), else with `setInterval`.
 */
function startTicker(every, onTick, useWorker) {
  if (useWorker && typeof Worker === 'function' && typeof Blob === 'function' && typeof URL?.createObjectURL === 'function') {
    try {
      const source = `setInterval(() => postMessage(0), ${Math.max(50, Math.floor(every))});`;
      const url = URL.createObjectURL(new Blob([source], { type: 'text/javascript' }));
      const worker = new Worker(url);
      URL.revokeObjectURL(url);
      worker.onmessage = () => onTick();
      return () => worker.terminate();
    } catch {
      // fall through to a plain interval
    }
  }
  const id = setInterval(onTick, every);
  return () => clearInterval(id);
}

/** The HTTP root (`http(s)://host/path/`) and WebSocket URL for `url`. */
function endpoints(url) {
  const base = typeof location === 'object' && location?.href ? location.href : undefined;
  const parsed = new URL(url, base);
  if (parsed.protocol === 'ws:') parsed.protocol = 'http:';
  if (parsed.protocol === 'wss:') parsed.protocol = 'https:';
  if (!parsed.pathname.endsWith('/')) parsed.pathname += '/';
  parsed.hash = '';
  const http = new URL(parsed.href);
  const ws = new URL(parsed.href);
  ws.protocol = parsed.protocol === 'https:' ? 'wss:' : 'ws:';
  return { http, ws };
}

/** Full jitter: a random delay in `[0, min(max, base * 2^attempt)]`. */
export function backoffDelay(attempt, base, max) {
  const ceiling = Math.min(max, base * 2 ** Math.min(attempt, 30));
  return Math.floor(Math.random() * ceiling);
}

/** One subscription target (`auth.User` or `auth.User#5`), shared by its handlers. */
class Subscription {
  constructor(client, target) {
    this.client = client;
    this.target = target;
    const { stream, hash } = parseTarget(target);
    this.stream = stream;
    this.hash = hash;
    this.handlers = new Set();
    /** The last position seen: `{epoch, seq}` or null before the first reply. */
    this.position = null;
    this.active = false;
    /** Settles with the first subscribe reply (or the first server refusal). */
    this.ready = new Promise((resolve, reject) => {
      this._resolveReady = resolve;
      this._rejectReady = reject;
    });
    this.ready.catch(() => {});
  }

  /** Applies a push; false when it is one already delivered (same epoch, seq not past ours). */
  accept(push) {
    if (typeof push.seq === 'number' && push.epoch != null) {
      const at = this.position;
      if (at && at.epoch === push.epoch && push.seq <= at.seq) return false;
      this.position = { epoch: push.epoch, seq: push.seq };
    }
    return true;
  }

  /** Whether a push event (`auth.User.updated#5`) is for this target. */
  matches(parsed) {
    return parsed.stream === this.stream && (this.hash === null || parsed.hash === this.hash);
  }
}

/** The handle `subscribe` returns. */
class SubscriptionHandle {
  constructor(sub, handler) {
    this.target = sub.target;
    this._sub = sub;
    this._handler = handler;
    /** Resolves with the subscribe reply's data once the server confirmed (WebSocket). */
    this.ready = sub.ready;
  }
  /** The last position this subscription saw (`{epoch, seq}`), or null. */
  get position() {
    return this._sub.position;
  }
  /** Stops this handler; the server subscription ends with the last one. */
  unsubscribe() {
    this._sub.client._unsubscribe(this._sub, this._handler);
  }
}

/**
 * A connection to a channels-binding server that survives reconnects. Make
 * one with {@link connect}.
 */
export class Client {
  constructor(url, options = {}) {
    this.options = { ...DEFAULTS, ...options };
    this.endpoints = endpoints(url);
    this.state = 'connecting';
    this._listeners = new Map();
    this._pending = new Map(); // request_id -> entry (sent, waiting for the reply)
    this._queue = []; // entries waiting for an open socket
    this._subs = new Map(); // target -> Subscription
    this._feeds = new Map(); // stream -> SSE feed (HTTP transport)
    this._nextId = 0;
    this._attempt = 0;
    this._socket = null;
    this._retryTimer = null;
    this._lastHeard = Date.now();
    this._probe = null;
    this._stopTicker = null;
    this._everOpened = false;
    const WS = this.options.WebSocket ?? globalThis.WebSocket;
    const transport = this.options.transport;
    this.transport = transport === 'http' || (transport === 'auto' && typeof WS !== 'function') ? 'http' : 'websocket';
    this._WebSocket = WS;
    this._fetch = this.options.fetch ?? globalThis.fetch?.bind(globalThis);
    this._onPageEvent = (e) => this._pageEvent(e);
    if (typeof addEventListener === 'function') {
      addEventListener('online', this._onPageEvent);
      addEventListener('offline', this._onPageEvent);
    }
    if (typeof document === 'object' && document?.addEventListener) {
      document.addEventListener('visibilitychange', this._onPageEvent);
    }
    if (this.transport === 'websocket') {
      this._open();
    } else {
      // HTTP has no connection to open: calls are requests, subscriptions SSE feeds.
      queueMicrotask(() => this._setState('open'));
    }
  }

  // ---- events ------------------------------------------------------------

  /**
   * Listens to `state` (state, info), `resync` (stream, {target, epoch, seq}),
   * `push` (every push), `disconnect` ({code, reason}), `error` (Error).
   * Returns a function that removes the listener.
   */
  on(name, fn) {
    if (!this._listeners.has(name)) this._listeners.set(name, new Set());
    this._listeners.get(name).add(fn);
    return () => this.off(name, fn);
  }

  /** Removes a listener added with {@link Client#on}. */
  off(name, fn) {
    this._listeners.get(name)?.delete(fn);
  }

  _emit(name, ...args) {
    for (const fn of [...(this._listeners.get(name) ?? [])]) {
      try {
        fn(...args);
      } catch (err) {
        if (name !== 'error') this._emit('error', err);
      }
    }
  }

  _setState(state, info = {}) {
    if (this.state === state) return;
    this.state = state;
    this._emit('state', state, info);
  }

  // ---- calls -------------------------------------------------------------

  /**
   * Sends `event` with `data`; resolves with the reply's `data`, rejects with
   * a {@link ChannelsBindingError} carrying the reply's `code`, `fields` and
   * `retryAfterMs`. `options.timeout` (ms) bounds the wait, queueing included.
   */
  async call(event, data = {}, options = {}) {
    const reply = await this.request({ event, data }, options);
    return reply.data;
  }

  /**
   * Like {@link Client#call}, resolving with the whole reply frame
   * (`{event, data, epoch?, seq?, resync?}`).
   */
  request(frame, options = {}) {
    if (this.state === 'closed') {
      return Promise.reject(new ChannelsBindingError('closed', 'the client is closed', { event: frame.event }));
    }
    const timeout = options.timeout ?? this.options.timeout;
    if (this.transport === 'http') return this._httpRequest(frame, timeout);
    return new Promise((resolve, reject) => {
      const id = `c${++this._nextId}`;
      const entry = { id, frame: { ...frame, request_id: id }, resolve, reject, timer: null };
      entry.timer = setTimeout(() => {
        this._pending.delete(id);
        const at = this._queue.indexOf(entry);
        if (at >= 0) this._queue.splice(at, 1);
        reject(new ChannelsBindingError('timeout', `no reply to ${frame.event} within ${timeout} ms`, { event: frame.event }));
      }, timeout);
      if (this.state === 'open' && this._socket?.readyState === 1) {
        this._send(entry);
      } else if (this._queue.length >= this.options.maxQueue) {
        clearTimeout(entry.timer);
        reject(new ChannelsBindingError('queue_full', `${this._queue.length} calls already wait for the connection`, { event: frame.event }));
      } else {
        this._queue.push(entry);
      }
    });
  }

  _send(entry) {
    this._pending.set(entry.id, entry);
    this._socket.send(JSON.stringify(entry.frame));
  }

  _settle(entry, frame) {
    clearTimeout(entry.timer);
    this._pending.delete(entry.id);
    if (frame.error) entry.reject(errorFrom(frame.error, frame.event, null));
    else entry.resolve(frame);
  }

  async _httpRequest(frame, timeout) {
    const headers = { 'content-type': 'application/json' };
    const token = await this._token();
    if (token) headers.authorization = `Bearer ${token}`;
    let response;
    try {
      response = await this._fetch(this.endpoints.http.href, {
        method: 'POST',
        headers,
        body: JSON.stringify(frame),
        signal: AbortSignal.timeout(timeout),
      });
    } catch (err) {
      const code = err?.name === 'TimeoutError' ? 'timeout' : 'network';
      throw new ChannelsBindingError(code, `${frame.event}: ${err?.message ?? err}`, { event: frame.event });
    }
    let body;
    try {
      body = await response.json();
    } catch {
      throw new ChannelsBindingError('internal', `${frame.event}: the reply is not JSON (HTTP ${response.status})`, {
        event: frame.event,
        status: response.status,
      });
    }
    if (body?.error) throw errorFrom(body.error, frame.event, response.status);
    return body;
  }

  async _token() {
    const { token } = this.options;
    if (typeof token === 'function') return await token();
    return token ?? null;
  }

  // ---- subscriptions -----------------------------------------------------

  /**
   * Follows `target` (`auth.User` for the change feed, `auth.User#5` for one
   * object); `onPush({event, data, seq, epoch})` gets each push once, in
   * order. Renewed with `since` after every reconnect; when the server cannot
   * replay, a `resync` is emitted (and `options.onResync` called) instead.
   */
  subscribe(target, onPush, options = {}) {
    if (this.state === 'closed') throw new ChannelsBindingError('closed', 'the client is closed');
    let sub = this._subs.get(target);
    const handler = { onPush, onResync: options.onResync };
    if (!sub) {
      sub = new Subscription(this, target);
      this._subs.set(target, sub);
      sub.handlers.add(handler);
      // While connecting, the socket's opening renews every subscription.
      if (this.transport === 'http' || this.state === 'open') this._renew(sub);
    } else {
      sub.handlers.add(handler);
    }
    return new SubscriptionHandle(sub, handler);
  }

  _unsubscribe(sub, handler) {
    sub.handlers.delete(handler);
    if (sub.handlers.size > 0 || this._subs.get(sub.target) !== sub) return;
    this._subs.delete(sub.target);
    sub.active = false;
    if (this.transport === 'http') {
      const feed = this._feeds.get(sub.stream);
      feed?.subs.delete(sub);
      if (feed && feed.subs.size === 0) {
        this._feeds.delete(sub.stream);
        feed.controller?.abort();
      }
      return;
    }
    if (this.state === 'open') {
      const event = `${sub.stream}.unsubscribe${sub.hash === null ? '' : `#${sub.hash}`}`;
      this.request({ event, data: {} }).catch(() => {});
    }
  }

  /** (Re)subscribes on the server, from the last position seen. */
  _renew(sub) {
    if (this.transport === 'http') {
      // One SSE feed per stream, shared by its subscriptions: browsers allow
      // few HTTP/1.1 connections per origin.
      let feed = this._feeds.get(sub.stream);
      if (!feed) {
        feed = { stream: sub.stream, subs: new Set(), position: sub.position, controller: null };
        this._feeds.set(sub.stream, feed);
        this._openFeed(feed);
      }
      feed.subs.add(sub);
      sub._resolveReady({ subscribed: sub.target });
      return;
    }
    const event = `${sub.stream}.subscribe${sub.hash === null ? '' : `#${sub.hash}`}`;
    const since = sub.position;
    const data = since ? { since } : {};
    this.request({ event, data }).then(
      (reply) => {
        if (this._subs.get(sub.target) !== sub) return;
        sub.active = true;
        const at = reply.epoch != null && typeof reply.seq === 'number' ? { epoch: reply.epoch, seq: reply.seq } : null;
        if (reply.resync) {
          // The server lost the history after our position: say so, never fake continuity.
          sub.position = at;
          this._resync(sub, at);
        } else if (at && (!sub.position || sub.position.epoch !== at.epoch)) {
          sub.position = at;
        }
        sub._resolveReady(reply.data);
      },
      (err) => {
        // A lost connection renews it again on the next opening; a refusal ends it.
        if (['connection_lost', 'closed', 'timeout', 'queue_full'].includes(err.code)) return;
        if (this._subs.get(sub.target) === sub) this._subs.delete(sub.target);
        sub._rejectReady(err);
        this._emit('error', err);
      },
    );
  }

  _resync(sub, at) {
    for (const handler of [...sub.handlers]) {
      try {
        handler.onResync?.(at);
      } catch (err) {
        this._emit('error', err);
      }
    }
    this._emit('resync', sub.stream, { target: sub.target, epoch: at?.epoch ?? null, seq: at?.seq ?? null });
  }

  _push(frame) {
    const parsed = parseEvent(frame.event);
    const push = { event: frame.event, data: frame.data, seq: frame.seq, epoch: frame.epoch };
    if (frame.resync === true && parsed.action === 'resync') {
      // The stream lost changes while we stayed subscribed.
      const at = frame.data && typeof frame.data.seq === 'number' ? { epoch: frame.data.epoch, seq: frame.data.seq } : null;
      for (const sub of this._subs.values()) {
        if (sub.stream !== parsed.stream) continue;
        if (at) sub.position = at;
        this._resync(sub, at);
      }
      this._emit('push', push);
      return;
    }
    let fresh = true;
    for (const sub of this._subs.values()) {
      if (!sub.matches(parsed)) continue;
      if (!sub.accept(push)) {
        fresh = false;
        continue;
      }
      for (const handler of [...sub.handlers]) {
        try {
          handler.onPush?.(push);
        } catch (err) {
          this._emit('error', err);
        }
      }
    }
    if (fresh) this._emit('push', push);
  }

  // ---- the WebSocket -----------------------------------------------------

  async _open() {
    if (this.state === 'closed') return;
    let token;
    try {
      token = await this._token();
    } catch (err) {
      this._emit('error', err);
      this._scheduleReconnect();
      return;
    }
    if (this.state === 'closed') return;
    const url = new URL(this.endpoints.ws.href);
    if (token) url.searchParams.set('access_token', token);
    let socket;
    try {
      socket = new this._WebSocket(url.href);
    } catch (err) {
      this._emit('error', err);
      this._scheduleReconnect();
      return;
    }
    this._socket = socket;
    socket.onopen = () => this._opened(socket);
    socket.onmessage = (message) => this._message(socket, message);
    socket.onclose = (close) => this._lost(socket, close.code, close.reason);
    socket.onerror = () => {}; // a close event always follows
  }

  _opened(socket) {
    if (socket !== this._socket) return;
    this._attempt = 0;
    this._lastHeard = Date.now();
    this._probe = null;
    this._everOpened = true;
    // Open before anyone hears of it: subscriptions are renewed first, then
    // the queued calls go out in order, then listeners learn the state.
    this.state = 'open';
    this._startHeartbeat();
    for (const sub of this._subs.values()) this._renew(sub);
    const queued = this._queue.splice(0);
    for (const entry of queued) this._send(entry);
    this._emit('state', 'open', {});
  }

  _message(socket, message) {
    if (socket !== this._socket) return;
    this._lastHeard = Date.now();
    this._probe = null;
    if (typeof message.data !== 'string') return;
    let frame;
    try {
      frame = JSON.parse(message.data);
    } catch {
      this._emit('error', new ChannelsBindingError('bad_request', 'the server sent a frame that is not JSON'));
      return;
    }
    if (!frame || typeof frame !== 'object') return;
    if (frame.request_id != null) {
      const entry = this._pending.get(String(frame.request_id));
      if (entry) this._settle(entry, frame);
      return; // heartbeat replies and late replies end here
    }
    if (typeof frame.event === 'string') this._push(frame);
  }

  /** The socket ended (closed by either side, or declared dead). */
  _lost(socket, code, reason) {
    if (socket !== this._socket) return;
    this._socket = null;
    this._stopHeartbeat();
    socket.onopen = socket.onmessage = socket.onclose = null;
    for (const sub of this._subs.values()) sub.active = false;
    // A call already sent may or may not have run: fail it rather than run it twice.
    for (const entry of [...this._pending.values()]) {
      clearTimeout(entry.timer);
      this._pending.delete(entry.id);
      if (entry.frame.event === this.options.heartbeatEvent) continue;
      entry.reject(new ChannelsBindingError('connection_lost', `the connection closed before ${entry.frame.event} was answered`, { event: entry.frame.event }));
    }
    this._emit('disconnect', { code, reason });
    if (this.state === 'closed') return;
    this._setState(this._everOpened ? 'reconnecting' : 'connecting', { code, reason });
    this._scheduleReconnect();
  }

  _scheduleReconnect() {
    if (this.state === 'closed' || this._retryTimer) return;
    const delay = backoffDelay(this._attempt++, this.options.reconnectDelay, this.options.reconnectMaxDelay);
    this._retryTimer = setTimeout(() => {
      this._retryTimer = null;
      this._open();
    }, delay);
  }

  /** Reconnects now (skipping the backoff wait), e.g. when the network came back. */
  reconnect() {
    if (this.state === 'closed' || this.transport === 'http') return;
    if (this._retryTimer) {
      clearTimeout(this._retryTimer);
      this._retryTimer = null;
      this._open();
    } else if (this._socket) {
      this._declareDead(4000, 'reconnect requested');
    }
  }

  _declareDead(code, reason) {
    const socket = this._socket;
    if (!socket) return;
    try {
      socket.close(code, reason);
    } catch {
      // already closing
    }
    // A dead TCP connection never completes the closing handshake: do not wait for it.
    this._lost(socket, code, reason);
  }

  // ---- heartbeat ---------------------------------------------------------

  _startHeartbeat() {
    this._stopHeartbeat();
    const { heartbeatInterval, heartbeatTimeout, workerTimers } = this.options;
    if (!(heartbeatInterval > 0)) return;
    const every = Math.max(50, Math.min(heartbeatInterval, heartbeatTimeout) / 4);
    this._stopTicker = startTicker(every, () => this._heartbeat(), workerTimers);
  }

  _stopHeartbeat() {
    this._stopTicker?.();
    this._stopTicker = null;
    this._probe = null;
  }

  /**
   * Any frame from the server proves the connection alive. After
   * `heartbeatInterval` of silence a probe goes out (any reply, even an
   * error, counts); no frame within `heartbeatTimeout` after it and the
   * connection is declared dead and replaced.
   */
  _heartbeat() {
    if (this.state !== 'open' || !this._socket) return;
    const now = Date.now();
    if (this._probe) {
      if (now - this._probe >= this.options.heartbeatTimeout) this._declareDead(4001, 'heartbeat timeout');
      return;
    }
    if (now - this._lastHeard >= this.options.heartbeatInterval) this._sendProbe(now);
  }

  _sendProbe(now = Date.now()) {
    if (this._probe || !this._socket || this._socket.readyState !== 1) return;
    this._probe = now;
    const id = `hb${++this._nextId}`;
    const entry = { id, frame: { event: this.options.heartbeatEvent, data: {}, request_id: id }, resolve() {}, reject() {}, timer: null };
    entry.timer = setTimeout(() => this._pending.delete(id), this.options.heartbeatTimeout * 2);
    this._send(entry);
  }

  _pageEvent(event) {
    if (this.state === 'closed' || this.transport === 'http') return;
    if (event.type === 'offline') {
      this._declareDead(4002, 'the browser went offline');
    } else if (event.type === 'online') {
      this.reconnect();
    } else if (event.type === 'visibilitychange' && typeof document === 'object' && document.visibilityState === 'visible') {
      // Coming back to the tab: check now rather than at the next tick.
      if (this.state === 'open') this._sendProbe();
    }
  }

  // ---- HTTP fallback: the SSE change feed --------------------------------

  async _openFeed(feed) {
    let attempt = 0;
    const current = () => this._feeds.get(feed.stream) === feed && this.state !== 'closed';
    while (current()) {
      const controller = new AbortController();
      feed.controller = controller;
      let ok = false;
      try {
        ok = await this._readFeed(feed, controller);
      } catch (err) {
        if (!current()) return;
        this._emit('error', err);
      }
      if (!current()) return;
      attempt = ok ? 0 : attempt + 1;
      await new Promise((r) => setTimeout(r, backoffDelay(attempt, this.options.reconnectDelay, this.options.reconnectMaxDelay)));
    }
  }

  /** Reads one SSE response to its end; true when it got at least the opening. */
  async _readFeed(feed, controller) {
    const headers = { accept: 'text/event-stream' };
    const token = await this._token();
    if (token) headers.authorization = `Bearer ${token}`;
    // Resume where this feed stopped: the server replays or says resync.
    if (feed.position) headers['last-event-id'] = `${feed.position.epoch}:${feed.position.seq}`;
    const url = new URL(`api/${encodeURIComponent(feed.stream)}/events`, this.endpoints.http);
    const response = await this._fetch(url.href, { headers, signal: controller.signal, cache: 'no-store' });
    if (!response.ok) {
      let error = {};
      try {
        error = await response.json();
      } catch {
        // not JSON
      }
      throw errorFrom(error, `${feed.stream}.subscribe`, response.status);
    }
    for (const sub of feed.subs) sub.active = true;
    // The server sends a comment at least every keep-alive period; silence past
    // the heartbeat bound means the stream is dead.
    let heard = Date.now();
    const limit = this.options.heartbeatInterval + this.options.heartbeatTimeout;
    const stop =
      limit > 0
        ? startTicker(Math.max(50, limit / 4), () => {
            if (Date.now() - heard > limit) controller.abort();
          }, this.options.workerTimers)
        : () => {};
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    let fields = { data: [], event: null };
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return true;
        heard = Date.now();
        buffer += value;
        let nl;
        while ((nl = buffer.search(/\r\n|\r|\n/)) >= 0) {
          const line = buffer.slice(0, nl);
          buffer = buffer.slice(nl + (buffer[nl] === '\r' && buffer[nl + 1] === '\n' ? 2 : 1));
          if (line === '') {
            if (fields.data.length) this._sseEvent(feed, fields.event, fields.data.join('\n'));
            fields = { data: [], event: null };
          } else if (!line.startsWith(':')) {
            const colon = line.indexOf(':');
            const name = colon < 0 ? line : line.slice(0, colon);
            const val = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
            if (name === 'data') fields.data.push(val);
            else if (name === 'event') fields.event = val;
          }
        }
      }
    } catch (err) {
      if (controller.signal.aborted) return true;
      throw err;
    } finally {
      stop();
      for (const sub of feed.subs) sub.active = false;
    }
  }

  _sseEvent(feed, name, data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    if (name === 'resync') {
      const at = typeof frame?.seq === 'number' ? { epoch: frame.epoch, seq: frame.seq } : null;
      feed.position = at;
      for (const sub of [...feed.subs]) {
        sub.position = at;
        this._resync(sub, at);
      }
      return;
    }
    if (!frame || typeof frame.event !== 'string') return;
    const push = { event: frame.event, data: frame.data, seq: frame.seq, epoch: frame.epoch };
    if (typeof push.seq === 'number' && push.epoch != null) feed.position = { epoch: push.epoch, seq: push.seq };
    const parsed = parseEvent(frame.event);
    let fresh = false;
    for (const sub of [...feed.subs]) {
      if (!sub.matches(parsed) || !sub.accept(push)) continue;
      fresh = true;
      for (const handler of [...sub.handlers]) {
        try {
          handler.onPush?.(push);
        } catch (err) {
          this._emit('error', err);
        }
      }
    }
    if (fresh) this._emit('push', push);
  }

  // ---- the end -----------------------------------------------------------

  /** Closes for good: no reconnect; waiting calls reject with `closed`. */
  close() {
    if (this.state === 'closed') return;
    this._setState('closed');
    clearTimeout(this._retryTimer);
    this._retryTimer = null;
    this._stopHeartbeat();
    if (typeof removeEventListener === 'function') {
      removeEventListener('online', this._onPageEvent);
      removeEventListener('offline', this._onPageEvent);
    }
    if (typeof document === 'object' && document?.removeEventListener) {
      document.removeEventListener('visibilitychange', this._onPageEvent);
    }
    for (const feed of this._feeds.values()) feed.controller?.abort();
    this._feeds.clear();
    this._subs.clear();
    const socket = this._socket;
    this._socket = null;
    if (socket) {
      socket.onopen = socket.onmessage = socket.onclose = null;
      try {
        socket.close(1000, 'client closed');
      } catch {
        // already closed
      }
    }
    for (const entry of [...this._pending.values(), ...this._queue.splice(0)]) {
      clearTimeout(entry.timer);
      entry.reject(new ChannelsBindingError('closed', 'the client was closed', { event: entry.frame.event }));
    }
    this._pending.clear();
  }
}

/**
 * Connects to the channels-binding server at `url` (`/`, `https://host/`,
 * `wss://host/`); see README.md for the options.
 */
export function connect(url, options = {}) {
  return new Client(url, options);
}

export default connect;
