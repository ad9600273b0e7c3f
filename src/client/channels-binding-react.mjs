// React hooks over the channels-binding client. React is a peer: this module
// imports 'react', which a bundler or an import map resolves.
//
//   const { data: user, error, loading } = useRetrieve(client, 'auth.User', 5763);
//   const { data: page } = useSearch(client, 'auth.User', { order: 'username', limit: 10 });
//   const last = useEvent(client, 'chat.message');
//
// Every hook stays live: it subscribes, applies pushes in order, and
// refetches when the server reports `resync`. Results are never older than
// what was already shown: replies and pushes carry the stream position
// (`epoch`, `seq`), and a result behind the shown one is dropped.

import { useEffect, useRef, useState } from 'react';

function parse(event) {
  const at = event.indexOf('#');
  const name = at < 0 ? event : event.slice(0, at);
  const dot = name.lastIndexOf('.');
  return { action: name.slice(dot + 1), hash: at < 0 ? null : event.slice(at + 1) };
}

/** Whether position `b` is not behind `a` (other epochs: a fresh history, take it). */
function notBehind(a, b) {
  if (!a || !b || a.epoch !== b.epoch) return true;
  return b.seq >= a.seq;
}

function positionOf(frame) {
  return frame && frame.epoch != null && typeof frame.seq === 'number' ? { epoch: frame.epoch, seq: frame.seq } : null;
}

/**
 * One object, live: `{data, error, loading}`. An update replaces `data`, a
 * delete sets it to `null` (with `deleted: true`), a `resync` refetches.
 */
export function useRetrieve(client, stream, id) {
  const [state, setState] = useState({ data: null, error: null, loading: true, deleted: false });
  useEffect(() => {
    if (!client || id === undefined || id === null) return undefined;
    let live = true;
    let shown = null;
    const show = (position, next) => {
      if (!live || !notBehind(shown, position)) return;
      if (position) shown = position;
      setState(next);
    };
    const fetchIt = () => {
      client.request({ event: `${stream}.retrieve`, data: { id } }).then(
        (reply) => show(positionOf(reply), { data: reply.data, error: null, loading: false, deleted: false }),
        (error) => live && setState((s) => ({ ...s, error, loading: false })),
      );
    };
    const sub = client.subscribe(
      `${stream}#${id}`,
      (push) => {
        const deleted = parse(push.event).action === 'deleted';
        show(positionOf(push), { data: deleted ? null : push.data, error: null, loading: false, deleted });
      },
      { onResync: () => { shown = null; fetchIt(); } },
    );
    fetchIt();
    return () => {
      live = false;
      sub.unsubscribe();
    };
  }, [client, stream, id]);
  return state;
}

/**
 * One search page, live: `{data, error, loading}` with `data` the search
 * reply (`{page, limit, count, order, rows}`). An update replaces its row, a
 * delete removes it, a create or a `resync` refetches the page.
 * `options.key` names the primary key field (`id`).
 */
export function useSearch(client, stream, params = {}, options = {}) {
  const key = options.key ?? 'id';
  const paramsKey = JSON.stringify(params);
  const [state, setState] = useState({ data: null, error: null, loading: true });
  useEffect(() => {
    if (!client) return undefined;
    let live = true;
    let generation = 0;
    const data = JSON.parse(paramsKey);
    const refetch = () => {
      const mine = ++generation;
      client.request({ event: `${stream}.search`, data }).then(
        (reply) => live && mine === generation && setState({ data: reply.data, error: null, loading: false }),
        (error) => live && mine === generation && setState((s) => ({ ...s, error, loading: false })),
      );
    };
    const sub = client.subscribe(
      stream,
      (push) => {
        const { action } = parse(push.event);
        if (action === 'created') {
          refetch();
          return;
        }
        setState((s) => {
          if (!s.data || !Array.isArray(s.data.rows)) return s;
          const pk = push.data?.[key];
          const at = s.data.rows.findIndex((row) => String(row?.[key]) === String(pk));
          if (at < 0) return s;
          const rows = s.data.rows.slice();
          let count = s.data.count;
          if (action === 'deleted') {
            rows.splice(at, 1);
            if (typeof count === 'number') count -= 1;
          } else {
            // The page shows the list fields; keep only those from the full object.
            const row = {};
            for (const field of Object.keys(rows[at])) row[field] = field in push.data ? push.data[field] : rows[at][field];
            rows[at] = row;
          }
          return { ...s, data: { ...s.data, rows, count } };
        });
      },
      { onResync: refetch },
    );
    refetch();
    return () => {
      live = false;
      sub.unsubscribe();
    };
  }, [client, stream, paramsKey, key]);
  return state;
}

/**
 * The last push of `event` (`chat.message`, or with a `#hash`), or `null`:
 * `{event, data, seq, epoch}`. A name without `#` also matches its hashed forms.
 */
export function useEvent(client, event) {
  const [push, setPush] = useState(null);
  const eventRef = useRef(event);
  eventRef.current = event;
  useEffect(() => {
    if (!client) return undefined;
    return client.on('push', (p) => {
      const wanted = eventRef.current;
      if (p.event === wanted || (!wanted.includes('#') && p.event.startsWith(`${wanted}#`))) setPush(p);
    });
  }, [client, event]);
  return push;
}
