//! The Lua scripts the broker runs (with `EVALSHA`, loading them on `NOSCRIPT`).
//!
//! Scripts run atomically, so the sequence number a change gets, its place in
//! the history and its place on the pub/sub channel always agree, whichever
//! node published it.

/// Sequences, records and publishes a batch of changes, once per batch key.
///
/// * `KEYS[1]`: the state hash (`epoch` and `seq:{stream}` fields).
/// * `KEYS[2]`: the batch's key marker (`{prefix}:batch:{key}`): when it
///   exists the batch ran already, and the script only returns its epoch.
/// * `KEYS[2 + i]`: the history list of the `i`-th change's stream.
/// * `ARGV[1]`: the pub/sub channel; `ARGV[2]`: a fresh epoch, used when the
///   state hash has none; `ARGV[3]`: the history length; `ARGV[4]`: the
///   history lists' and the key marker's time to live in milliseconds.
/// * `ARGV[3 + 2i]`, `ARGV[4 + 2i]`: the `i`-th change's stream and payload.
///
/// Returns `{epoch, ran}`: `ran` is `1` when this call published the batch,
/// `0` when an earlier call with the same key did.
pub(crate) const PUBLISH: &str = r"
local state = KEYS[1]
local marker = KEYS[2]
local done = redis.call('GET', marker)
if done then
  return {done, 0}
end
local channel = ARGV[1]
local epoch = redis.call('HGET', state, 'epoch')
if not epoch then
  epoch = ARGV[2]
  redis.call('HSET', state, 'epoch', epoch)
end
local len = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
local t = redis.call('TIME')
local now = t[1] .. string.format('%03d', math.floor(tonumber(t[2]) / 1000))
local count = (#ARGV - 4) / 2
for i = 1, count do
  local stream = ARGV[3 + 2 * i]
  local history = KEYS[2 + i]
  local seq = redis.call('HINCRBY', state, 'seq:' .. stream, 1)
  local envelope = stream .. '\n' .. epoch .. '\n' .. string.format('%d', seq) .. '\n' .. ARGV[4 + 2 * i]
  redis.call('RPUSH', history, now .. '\n' .. envelope)
  redis.call('LTRIM', history, -len, -1)
  redis.call('PEXPIRE', history, ttl)
  redis.call('PUBLISH', channel, envelope)
end
redis.call('SET', marker, epoch, 'PX', ttl)
return {epoch, 1}
";

/// Reads what history holds after a position.
///
/// * `KEYS[1]`: the state hash; `KEYS[2]`: the stream's history list.
/// * `ARGV[1]`: the stream; `ARGV[2]`, `ARGV[3]`: the position's epoch and
///   sequence number.
///
/// Returns `{status, now_ms, entries}`: status `0` when the epoch differs or
/// the position is ahead of the stream, `1` when the position is the
/// stream's current one, else `2` with the last `current - after` history
/// entries (fewer when history was trimmed or expired) and Redis' clock, for
/// the caller to check ages and continuity.
pub(crate) const REPLAY: &str = r"
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch or epoch ~= ARGV[2] then
  return {0, '0', {}}
end
local current = tonumber(redis.call('HGET', KEYS[1], 'seq:' .. ARGV[1]) or '0')
local after = tonumber(ARGV[3])
if after > current then
  return {0, '0', {}}
end
local t = redis.call('TIME')
local now = t[1] .. string.format('%03d', math.floor(tonumber(t[2]) / 1000))
if after == current then
  return {1, now, {}}
end
return {2, now, redis.call('LRANGE', KEYS[2], after - current, -1)}
";
