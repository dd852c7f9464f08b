/**
 * The breaker's transitions as Lua scripts, one atomic step per `admit`, `report` and `snapshot`. They apply the rules of
 * `src/internal/health.ts` (`admit`, `report`, `trip`, `prune`, `toSnapshot`'s pruning) to a hash per deployment and a
 * list of recent outcomes (the failure-rate window); a change there must be made here too (test/RedisHealthStore.test.ts
 * runs the store scenarios of test/Health.test.ts on both).
 *
 * Numbers travel as strings written with `%.17g`, so a double read back is the double written.
 *
 * @internal
 */

/** @internal */
export const maxWindow = 1024

const common = `
local function fmt(x) return string.format('%.17g', x) end
local function num(v, d) if v then return tonumber(v) end return d end
local function prune(w, now, rw)
  local cutoff = now - rw
  while true do
    local head = redis.call('LINDEX', w, 0)
    if not head then break end
    local at = tonumber(string.sub(head, 1, string.find(head, ':', 1, true) - 1))
    if at <= cutoff then redis.call('LPOP', w) else break end
  end
  local len = redis.call('LLEN', w)
  if len > ${maxWindow} then redis.call('LTRIM', w, len - ${maxWindow}, -1) end
end
local function load(h)
  local f = redis.call('HMGET', h, 'st', 'c', 't', 'ou', 'nb', 'pr', 'ps', 'if', 'r')
  return {
    st = f[1] or 'closed', c = num(f[2], 0), t = num(f[3], 0), ou = num(f[4], 0), nb = num(f[5], 0),
    pr = f[6] == '1', ps = num(f[7], 0), inf = num(f[8], 0), r = f[9]
  }
end
local function save(h, w, ids, id, s, model, provider, rw, now, expiry, lease)
  redis.call('HSET', h, 'm', model, 'p', provider, 'st', s.st, 'c', fmt(s.c), 't', fmt(s.t), 'ou', fmt(s.ou),
    'nb', fmt(s.nb), 'pr', s.pr and '1' or '0', 'ps', fmt(s.ps), 'if', fmt(s.inf), 'rw', fmt(rw))
  if s.r then redis.call('HSET', h, 'r', s.r) else redis.call('HDEL', h, 'r') end
  -- The record outlives every instant it still speaks for: its cooldown, a Retry-After, the window, a probe's lease.
  local ttl = math.max(expiry, s.ou - now, s.nb - now, rw, s.pr and lease or 0)
  ttl = math.ceil(ttl)
  redis.call('PEXPIRE', h, ttl)
  if redis.call('EXISTS', w) == 1 then redis.call('PEXPIRE', w, ttl) end
  redis.call('SADD', ids, id)
  if redis.call('PTTL', ids) < ttl then redis.call('PEXPIRE', ids, ttl) end
end
`

/**
 * KEYS: hash, window, ids. ARGV: now, probeIntervalMillis, probeLeaseMillis, id, model, provider, rateWindowMillis,
 * expiryMillis. Returns `{'A', '1'|'0'}` (admitted, probe?) or `{'S', reason, until}`.
 *
 * @internal
 */
export const admit = `${common}
local h, w, ids = KEYS[1], KEYS[2], KEYS[3]
local now, interval, lease = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local rw, expiry = tonumber(ARGV[7]), tonumber(ARGV[8])
local s = load(h)
local result
if now < s.nb then
  result = {'S', 'the server asked to wait (Retry-After)', fmt(s.nb)}
elseif s.st == 'open' and now < s.ou then
  result = {'S', 'circuit open: ' .. (s.r or 'failures'), fmt(s.ou)}
else
  if s.st == 'open' then s.st = 'half-open' end
  if s.st == 'half-open' then
    if s.pr and now - s.ps < lease then
      result = {'S', 'half-open: another call is probing it', fmt(now + interval)}
    else
      s.pr = true
      s.ps = now
      s.inf = s.inf + 1
      result = {'A', '1'}
    end
  else
    s.inf = s.inf + 1
    result = {'A', '0'}
  end
end
save(h, w, ids, ARGV[4], s, ARGV[5], ARGV[6], rw, now, expiry, lease)
return result
`

/**
 * KEYS: hash, window, ids. ARGV: now, consecutiveFailures, rateThreshold, rateWindowMillis, rateMinRequests,
 * cooldownMillis, cooldownFactor, maxCooldownMillis, fatalCooldownMillis, outcome ('S'|'F'|'R'), kind, tag,
 * retryAfterMillis ('' when none), permit, id, model, provider, the window as text, expiryMillis, probeLeaseMillis.
 * Returns `{from, to, reason ('' when none), openUntil}`.
 *
 * @internal
 */
export const report = `${common}
local h, w, ids = KEYS[1], KEYS[2], KEYS[3]
local now = tonumber(ARGV[1])
local cf, thr, rw, minReq = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local cd, factor, maxCd, fatalCd = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local outcome, kind, tag, ra, permit = ARGV[10], ARGV[11], ARGV[12], ARGV[13], ARGV[14]
local expiry, lease = tonumber(ARGV[19]), tonumber(ARGV[20])
local s = load(h)
local from = s.st
local function trip(cooldown, reason)
  s.st = 'open'
  s.t = s.t + 1
  s.c = 0
  redis.call('DEL', w)
  s.r = reason
  s.ou = math.max(s.ou, now + cooldown)
end
if permit ~= 'none' then
  s.inf = math.max(0, s.inf - 1)
  if permit == 'probe' then s.pr = false end
end
if outcome == 'S' then
  if s.st == 'half-open' and permit == 'probe' then
    s.st = 'closed'
    s.t = 0
    s.r = nil
  end
  s.c = 0
  if rw > 0 then
    prune(w, now, rw)
    redis.call('RPUSH', w, fmt(now) .. ':0')
  end
elseif outcome == 'F' then
  if ra ~= '' then s.nb = math.max(s.nb, now + tonumber(ra)) end
  local cooldown = math.min(maxCd, cd * math.pow(factor, s.t))
  if kind == 'fatal' then
    trip(math.max(fatalCd, cooldown), tag)
  elseif s.st ~= 'closed' then
    if permit == 'probe' then trip(cooldown, 'probe failed: ' .. tag) end
  else
    s.c = s.c + 1
    if s.c >= cf then
      trip(cooldown, fmt(s.c) .. ' failure' .. (s.c == 1 and '' or 's') .. ' in a row, last ' .. tag)
    elseif rw > 0 then
      prune(w, now, rw)
      redis.call('RPUSH', w, fmt(now) .. ':1')
      local entries = redis.call('LRANGE', w, 0, -1)
      local total = #entries
      if total >= minReq then
        local failed = 0
        for _, e in ipairs(entries) do
          if string.sub(e, -1) == '1' then failed = failed + 1 end
        end
        if failed / total >= thr then
          trip(cooldown, fmt(math.floor((failed / total) * 100 + 0.5)) .. '% of ' .. fmt(total) ..
            ' requests failed in ' .. ARGV[18])
        end
      end
    end
  end
end
save(h, w, ids, ARGV[15], s, ARGV[16], ARGV[17], rw, now, expiry, lease)
return {from, s.st, s.r or '', fmt(s.ou)}
`

/**
 * KEYS: ids. ARGV: the record key prefix, the window key prefix, now. Prunes each window as the in-memory snapshot does,
 * forgets ids whose record expired. Returns, per deployment, `{id, {hash fields…}, {window entries…}}`.
 *
 * @internal
 */
export const snapshot = `${common}
local ids = KEYS[1]
local now = tonumber(ARGV[3])
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', ids)) do
  local h, w = ARGV[1] .. id, ARGV[2] .. id
  local fields = redis.call('HGETALL', h)
  if #fields == 0 then
    redis.call('SREM', ids, id)
  else
    local rw = tonumber(redis.call('HGET', h, 'rw') or '0')
    if rw > 0 then prune(w, now, rw) end
    table.insert(out, {id, fields, redis.call('LRANGE', w, 0, -1)})
  end
end
return out
`
