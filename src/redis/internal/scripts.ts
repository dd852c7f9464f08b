/**
 * The breaker's transitions as Lua scripts, one atomic step per `admit`, `report` and `snapshot`. They apply the rules of
 * `src/internal/health.ts` (`admit`, `limited`, `report`, `settle`, `trip`, `prune`, `toSnapshot`'s pruning) and of
 * `src/internal/limits.ts` (the per-minute buckets) to a hash per deployment, a list of recent outcomes (the
 * failure-rate window) and a sorted set of the requests in flight (each a lease that expires, so that a process that
 * dies holding slots does not hold them for good); a change there must be made here too (test/RedisHealthStore.test.ts
 * runs the store scenarios of test/Health.test.ts on both).
 *
 * Numbers travel as strings written with `%.17g`, so a double read back is the double written.
 *
 * @internal
 */

/** @internal */
export const maxWindow = 1024

/** Units per request or token in a bucket (limits.ts `scale`). @internal */
export const scale = 60_000

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
  local f = redis.call('HMGET', h, 'st', 'c', 't', 'ou', 'nb', 'pr', 'ps', 'r', 'rq', 'rqa', 'tk', 'tka', 'v', 'lf')
  return {
    st = f[1] or 'closed', c = num(f[2], 0), t = num(f[3], 0), ou = num(f[4], 0), nb = num(f[5], 0),
    pr = f[6] == '1', ps = num(f[7], 0), r = f[8], rq = num(f[9], nil), rqa = num(f[10], 0), tk = num(f[11], nil),
    tka = num(f[12], 0), v = num(f[13], 0), lf = num(f[14], 0)
  }
end
-- What a process keeps of a record in its copy of the table (redisHealth.ts Mirrored), as a message and a reply's tail.
local function mirrored(s) return {fmt(s.v), s.st, fmt(s.ou), fmt(s.nb), fmt(s.c), s.r or ''} end
local function same(a, b)
  for i = 2, #a do if a[i] ~= b[i] then return false end end
  return true
end
-- A record's version: above the last one and above the server's clock in microseconds, so that a record that expired
-- and was written again is still newer than any copy of the old one.
local function bump(s)
  local t = redis.call('TIME')
  s.v = math.max(s.v + 1, tonumber(t[1]) * 1000000 + tonumber(t[2]))
end
-- Tells every process holding a copy (a message on the store's channel) when what they keep of the record changed.
local function announce(channel, id, before, s)
  local after = mirrored(s)
  if channel ~= '' and not same(before, after) then
    redis.call('PUBLISH', channel, cjson.encode({id, unpack(after)}))
  end
  return after
end
local function opt(v) if v == '' then return nil end return tonumber(v) end
local function setOrDel(h, k, v) if v then redis.call('HSET', h, k, fmt(v)) else redis.call('HDEL', h, k) end end
-- A bucket's level at now (limits.ts level): refilled since at, capped at a minute's worth; never used: full.
local function level(limit, stored, at, now)
  if stored == nil then return limit * ${scale} end
  return math.min(limit * ${scale}, stored + math.max(0, now - at) * limit)
end
local function save(h, w, l, ids, id, s, model, provider, rw, now, expiry, lease)
  redis.call('HSET', h, 'm', model, 'p', provider, 'st', s.st, 'c', fmt(s.c), 't', fmt(s.t), 'ou', fmt(s.ou),
    'nb', fmt(s.nb), 'pr', s.pr and '1' or '0', 'ps', fmt(s.ps), 'rw', fmt(rw), 'v', fmt(s.v), 'lf', fmt(s.lf))
  if s.r then redis.call('HSET', h, 'r', s.r) else redis.call('HDEL', h, 'r') end
  local refill = 0
  if s.rq then
    redis.call('HSET', h, 'rq', fmt(s.rq), 'rqa', fmt(s.rqa))
    if s.lr then refill = math.max(refill, (s.lr * ${scale} - s.rq) / s.lr) end
  end
  if s.tk then
    redis.call('HSET', h, 'tk', fmt(s.tk), 'tka', fmt(s.tka))
    if s.lt then refill = math.max(refill, (s.lt * ${scale} - s.tk) / s.lt) end
  end
  -- The record outlives every instant it still speaks for: its cooldown, a Retry-After, the window, a probe's lease,
  -- a bucket's refill; the slots in flight, their last lease.
  local ttl = math.max(expiry, s.ou - now, s.nb - now, rw, s.pr and lease or 0, refill)
  ttl = math.ceil(ttl)
  redis.call('PEXPIRE', h, ttl)
  if redis.call('EXISTS', w) == 1 then redis.call('PEXPIRE', w, ttl) end
  local lastSlot = redis.call('ZRANGE', l, -1, -1, 'WITHSCORES')
  if lastSlot[2] then redis.call('PEXPIRE', l, math.max(ttl, math.ceil(tonumber(lastSlot[2]) - now))) end
  redis.call('SADD', ids, id)
  if redis.call('PTTL', ids) < ttl then redis.call('PEXPIRE', ids, ttl) end
end
`

/**
 * KEYS: hash, window, ids, slots. ARGV: now, probeIntervalMillis, probeLeaseMillis, id, model, provider,
 * rateWindowMillis, expiryMillis, maxConcurrent, requestsPerMinute, tokensPerMinute ('' when not a limit), the request's
 * tokens, the slot's lease id, slotLeaseMillis, the channel of the store's messages. Returns `{'A', '1'|'0', lease}`
 * (admitted, probe?) or `{'S', reason, until, limit ('' when none)}`, then the record as a copy keeps it
 * (`{version, state, openUntil, notBefore, consecutive, reason}`).
 *
 * @internal
 */
export const admit = `${common}
local h, w, ids, l = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now, interval, lease = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local rw, expiry = tonumber(ARGV[7]), tonumber(ARGV[8])
local maxc, rpm, tpm, tokens = opt(ARGV[9]), opt(ARGV[10]), opt(ARGV[11]), tonumber(ARGV[12])
local leaseId, slotLease = ARGV[13], tonumber(ARGV[14])
local s = load(h)
local before = mirrored(s)
s.lr, s.lt = rpm, tpm
-- Slots whose holder never reported (its process died) are freed when their lease ends.
redis.call('ZREMRANGEBYSCORE', l, '-inf', now)
local result
if now < s.nb then
  result = {'S', 'the server asked to wait (Retry-After)', fmt(s.nb), ''}
elseif s.st == 'open' and now < s.ou then
  result = {'S', 'circuit open: ' .. (s.r or 'failures'), fmt(s.ou), ''}
else
  if s.st == 'open' then s.st = 'half-open' end
  local probe = s.st == 'half-open'
  if probe and s.pr and now - s.ps < lease then
    result = {'S', 'half-open: another call is probing it', fmt(now + interval), ''}
  else
    local skip = nil
    if maxc and redis.call('ZCARD', l) >= maxc then
      skip = {'S', 'at its concurrency limit (' .. fmt(maxc) .. ' in flight)', now + interval, 'concurrency'}
    end
    if rpm then
      local cur = level(rpm, s.rq, s.rqa, now)
      if cur < ${scale} then
        local u = now + math.ceil((${scale} - cur) / rpm)
        if not skip or skip[3] < u then
          skip = {'S', 'at its limit of ' .. fmt(rpm) .. ' requests per minute', u, 'requests'}
        end
      end
    end
    if tpm then
      local cur = level(tpm, s.tk, s.tka, now)
      local need = math.min(tokens, tpm) * ${scale}
      if cur < need then
        local u = now + math.ceil((need - cur) / tpm)
        if not skip or skip[3] < u then
          skip = {'S', 'at its limit of ' .. fmt(tpm) .. ' tokens per minute (this request: about ' .. fmt(tokens) ..
            ')', u, 'tokens'}
        end
      end
    end
    if skip then
      skip[3] = fmt(skip[3])
      result = skip
    else
      if probe then
        s.pr = true
        s.ps = now
      end
      redis.call('ZADD', l, now + slotLease, leaseId)
      if rpm then
        s.rq = level(rpm, s.rq, s.rqa, now) - ${scale}
        s.rqa = now
      end
      if tpm then
        s.tk = level(tpm, s.tk, s.tka, now) - tokens * ${scale}
        s.tka = now
      end
      result = {'A', probe and '1' or '0', leaseId}
    end
  end
end
bump(s)
save(h, w, l, ids, ARGV[4], s, ARGV[5], ARGV[6], rw, now, expiry, lease)
-- The limits it was last admitted under, for the snapshot.
setOrDel(h, 'lc', maxc)
setOrDel(h, 'lr', rpm)
setOrDel(h, 'lt', tpm)
for _, x in ipairs(announce(ARGV[15], ARGV[4], before, s)) do table.insert(result, x) end
return result
`

/**
 * KEYS: hash, window, ids, slots. ARGV: now, consecutiveFailures, rateThreshold, rateWindowMillis, rateMinRequests,
 * cooldownMillis, cooldownFactor, maxCooldownMillis, fatalCooldownMillis, outcome ('S'|'F'|'R'), kind, tag,
 * retryAfterMillis ('' when none), probe ('1'|'0'), id, model, provider, the window as text, expiryMillis,
 * probeLeaseMillis, ends ('1'|'0'), the slot's lease id ('' when none), reserved tokens, used tokens ('' when unknown),
 * tokensPerMinute ('' when not a limit), requestsPerMinute (''), the channel. Returns `{from, to, reason ('' when none),
 * openUntil}`, then the record as a copy keeps it (as `admit`).
 *
 * @internal
 */
export const report = `${common}
local h, w, ids, l = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now = tonumber(ARGV[1])
local cf, thr, rw, minReq = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local cd, factor, maxCd, fatalCd = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local outcome, kind, tag, ra, probe = ARGV[10], ARGV[11], ARGV[12], ARGV[13], ARGV[14] == '1'
local expiry, lease = tonumber(ARGV[19]), tonumber(ARGV[20])
local ends, leaseId, reserved, used = ARGV[21] == '1', ARGV[22], tonumber(ARGV[23]), opt(ARGV[24])
local s = load(h)
local before = mirrored(s)
s.lt, s.lr = opt(ARGV[25]), opt(ARGV[26])
local from = s.st
local function trip(cooldown, reason)
  s.st = 'open'
  s.t = s.t + 1
  s.c = 0
  redis.call('DEL', w)
  s.r = reason
  s.ou = math.max(s.ou, now + cooldown)
end
-- The request ended: its slot is freed and its tokens corrected to its usage (only for a slot this table gave).
if ends and leaseId ~= '' and redis.call('ZREM', l, leaseId) == 1 and s.lt and used and s.tk then
  s.tk = math.min(s.lt * ${scale}, level(s.lt, s.tk, s.tka, now) + (reserved - used) * ${scale})
  s.tka = now
end
if probe then s.pr = false end
if outcome == 'S' then
  if s.st == 'half-open' and probe then
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
  s.lf = now
  if ra ~= '' then s.nb = math.max(s.nb, now + tonumber(ra)) end
  local cooldown = math.min(maxCd, cd * math.pow(factor, s.t))
  if kind == 'fatal' then
    trip(math.max(fatalCd, cooldown), tag)
  elseif s.st ~= 'closed' then
    if probe then trip(cooldown, 'probe failed: ' .. tag) end
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
bump(s)
save(h, w, l, ids, ARGV[15], s, ARGV[16], ARGV[17], rw, now, expiry, lease)
local result = {from, s.st, s.r or '', fmt(s.ou)}
for _, x in ipairs(announce(ARGV[27], ARGV[15], before, s)) do table.insert(result, x) end
return result
`

/**
 * KEYS: hash, window, ids. ARGV: rateWindowMillis, the channel, id, then the instants of successes admitted and
 * reported by a process on its own copy of the table (ascending). Adds them to the failure-rate window, and ends a run
 * of failures that the last of them came after. Nothing when the record expired. Returns the record as a copy keeps it
 * (as `admit`), or an empty list.
 *
 * @internal
 */
export const flush = `${common}
local h, w, ids = KEYS[1], KEYS[2], KEYS[3]
if redis.call('EXISTS', h) == 0 then return {} end
local rw, channel, id = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local last = tonumber(ARGV[#ARGV])
local s = load(h)
local before = mirrored(s)
if rw > 0 and #ARGV > 3 then
  prune(w, last, rw)
  local entries = {}
  for i = math.max(4, #ARGV - ${maxWindow} + 1), #ARGV do
    local at = tonumber(ARGV[i])
    if at > last - rw then table.insert(entries, fmt(at) .. ':0') end
  end
  if #entries > 0 then
    redis.call('RPUSH', w, unpack(entries))
    local len = redis.call('LLEN', w)
    if len > ${maxWindow} then redis.call('LTRIM', w, len - ${maxWindow}, -1) end
    local ttl = redis.call('PTTL', h)
    if ttl > 0 then redis.call('PEXPIRE', w, ttl) end
  end
end
if s.st == 'closed' and s.c > 0 and last > s.lf then
  s.c = 0
  bump(s)
  redis.call('HSET', h, 'c', '0', 'v', fmt(s.v))
end
return announce(channel, id, before, s)
`

/**
 * KEYS: the budget's key for its period. ARGV: the amount, the milliseconds left in the period (on the router's clock,
 * as every instant here). Adds the amount and keeps the key until the period's end and an hour more (late readers).
 * Returns the new total.
 *
 * @internal
 */
export const charge = `
local total = redis.call('INCRBYFLOAT', KEYS[1], ARGV[1])
local ttl = math.ceil(tonumber(ARGV[2])) + 3600000
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return total
`

/**
 * KEYS: ids. ARGV: the record key prefix, the window key prefix, now, the slots key prefix. Prunes each window as the
 * in-memory snapshot does, forgets ids whose record expired. Returns, per deployment,
 * `{id, {hash fields…}, {window entries…}, slots in flight}`.
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
    local inFlight = redis.call('ZCOUNT', ARGV[4] .. id, '(' .. ARGV[3], '+inf')
    table.insert(out, {id, fields, redis.call('LRANGE', w, 0, -1), inFlight})
  end
end
return out
`
