// The part every client process shares: argument parsing, the workloads, correctness checks, figures, and the one
// JSON result line. Node built-ins only (the smoke test runs raw-fetch and ours without bench/node_modules).
//
// A client module calls `runClient(name, makeAdapter)`. `makeAdapter({ url, variant, workload, spec })` builds the
// client ONCE for the process and returns:
//   generate():          Promise<string>                      one non-streaming call; resolves to the answer text
//   stream(n):           Promise<{ text, chunks }>            one streaming call of n content chunks; `chunks` counts
//                                                             the non-empty text deltas the library handed over
//   failover():          Promise<string>  (optional)          one call that goes to model `fail-first` (503) and
//                                                             falls back to model `m`, the library's own way
//   close():             Promise<void>    (optional)
//   counters():          Promise<Record<string, number>>  (optional) cumulative counts of something beside the client
//                        process (e.g. the Redis server's CPU µs and script calls); latency, throughput and the
//                        sequential-stream workloads read them around their measured phase and add figures
//                        `<key>_per_call` (the increase per call or stream)
//   outage(config):      (outage-503 / outage-hang only) builds a fresh router for one phase and resolves to
//                        { generate(), deadHealth(): Promise<{ state, trips } | undefined>, close() }; config is
//                        "base" (model m alone), "on" (the dead model then m, health on: defaults), "off" (health
//                        false) or "short" (health on with a cooldown of spec.shortCooldownMs); `dead` names the
//                        dead model (its requests are counted at the upstream)
//   tail({ shape, config }): (slow-tail only) builds a fresh router over two slow-tail deployments (shape "group": one
//                        group of the two; "list": a two-model list) with hedging `config` (a key of spec.hedges: none,
//                        a fixed delay, a percentile delay), and resolves to { generate(): Promise<{ text, hedged,
//                        hedgeWon }>, models: [names], close() }: `hedged` when the call's trail has a hedge, `hedgeWon`
//                        when a hedge served it; `models` are the model names whose requests the upstream counts
// Every value is checked against what the upstream sent; a mismatch makes the process report an error, not a number.
import { performance } from "node:perf_hooks"
import { expectedStreamText, NON_STREAM_TEXT } from "./expected.mjs"

const MB = 1024 * 1024

export const parseArgs = (argv) => {
  const out = {}
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a.startsWith("--")) {
      const key = a.slice(2)
      const next = argv[i + 1]
      if (next === undefined || next.startsWith("--")) out[key] = true
      else {
        out[key] = next
        i++
      }
    }
  }
  return out
}

class Mismatch extends Error {}

const checkText = (what, got, want) => {
  if (got !== want) {
    const g = typeof got === "string" ? `${got.length} chars, starts ${JSON.stringify(got.slice(0, 40))}` : String(got)
    throw new Mismatch(
      `${what}: wrong text (${g}; expected ${want.length} chars, starts ${JSON.stringify(want.slice(0, 40))})`
    )
  }
}

const checkStream = (n, r) => {
  if (r === null || typeof r !== "object") throw new Mismatch(`stream(${n}): no result`)
  if (r.chunks !== n) throw new Mismatch(`stream(${n}): got ${r.chunks} text chunks, expected ${n}`)
  checkText(`stream(${n})`, r.text, expectedStreamText(n))
}

const gc = () => {
  if (typeof globalThis.gc === "function") {
    globalThis.gc()
    globalThis.gc()
  }
}

const rssMb = () => process.memoryUsage().rss / MB
const heapMb = () => process.memoryUsage().heapUsed / MB
const maxRssMb = () => process.resourceUsage().maxRSS / 1024

/** Samples RSS every 2 ms until stopped; `stop()` gives { before, peak } in MB. */
const rssSampler = () => {
  const before = process.memoryUsage.rss()
  let peak = before
  const timer = setInterval(() => {
    const r = process.memoryUsage.rss()
    if (r > peak) peak = r
  }, 2)
  return {
    stop() {
      clearInterval(timer)
      const r = process.memoryUsage.rss()
      if (r > peak) peak = r
      return { before: before / MB, peak: peak / MB }
    }
  }
}

const quantile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]
const median = (xs) => quantile([...xs].sort((a, b) => a - b), 0.5)

/**
 * Runs up to `total` calls of `fn` with `concurrency` in flight; with `budgetMs`, no new call starts once that much
 * time has passed (after at least `minCalls` started). Resolves to the number of calls made.
 */
const pool = async (total, concurrency, fn, budgetMs = Infinity, minCalls = 0) => {
  let next = 0
  const deadline = performance.now() + budgetMs
  const worker = async () => {
    while (next < total && (next < minCalls || performance.now() < deadline)) {
      const i = next++
      await fn(i)
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker))
  return next
}

/**
 * Reads the adapter's `counters()` (if any) now; the function it resolves to reads them again and gives the increase
 * divided by `units` as figures `<key>_per_call`. Called outside the timed part of a measured phase.
 */
const countersFrom = async (a) => {
  if (typeof a.counters !== "function") return async () => ({})
  const c0 = await a.counters()
  return async (units) => {
    const c1 = await a.counters()
    return Object.fromEntries(Object.keys(c1).map((k) => [`${k}_per_call`, (c1[k] - c0[k]) / units]))
  }
}

const sequentialStreams = async (a, s) => {
  const warmed = await pool(s.warmup, 1, () => streamChecked(a, s.chunks), s.warmupMaxMs, 1)
  const counted = await countersFrom(a)
  const t0 = performance.now()
  const count = await pool(s.count, 1, () => streamChecked(a, s.chunks), s.maxMs, s.minCalls)
  const ms = (performance.now() - t0) / count
  return { ms, count, warmed, extra: await counted(count) }
}

const generateChecked = async (a) => checkText("generate", await a.generate(), NON_STREAM_TEXT)
const streamChecked = async (a, n) => checkStream(n, await a.stream(n))

// ---------------------------------------------------------------------------------------------------------------
// Workloads: each returns { figures, meta }. Figures are numbers; names end in their unit.

const workloads = {
  /** Non-streaming latency at concurrency 1, after warm-up. */
  async latency(a, s) {
    await pool(s.warmup, 1, () => generateChecked(a), s.warmupMaxMs, 1)
    const counted = await countersFrom(a)
    const times = []
    const deadline = performance.now() + (s.maxMs ?? Infinity)
    while (times.length < s.calls && (times.length < (s.minCalls ?? 0) || performance.now() < deadline)) {
      const t0 = performance.now()
      const text = await a.generate()
      times.push(performance.now() - t0)
      checkText("generate", text, NON_STREAM_TEXT)
    }
    const sorted = [...times].sort((x, y) => x - y)
    return {
      figures: {
        lat_mean_ms: times.reduce((x, y) => x + y, 0) / times.length,
        lat_p50_ms: quantile(sorted, 0.5),
        lat_p99_ms: quantile(sorted, 0.99),
        ...(await counted(times.length))
      },
      meta: { calls: times.length, warmup: s.warmup }
    }
  },

  /** Non-streaming throughput at concurrency `s.concurrency` (32), plus client CPU per call. */
  async throughput(a, s) {
    await pool(s.warmup, s.concurrency, () => generateChecked(a), s.warmupMaxMs, s.concurrency)
    gc()
    const counted = await countersFrom(a)
    const cpu0 = process.cpuUsage()
    const t0 = performance.now()
    const calls = await pool(s.calls, s.concurrency, () => generateChecked(a), s.maxMs, s.minCalls)
    const ms = performance.now() - t0
    const cpu = process.cpuUsage(cpu0)
    return {
      figures: {
        tput_calls_per_s: calls / (ms / 1000),
        cpu_us_per_call: (cpu.user + cpu.system) / calls,
        ...(await counted(calls))
      },
      meta: { calls, concurrency: s.concurrency, warmup: s.warmup, wallMs: ms }
    }
  },

  /**
   * Decode speed of one big stream (median of `reps`), and the RSS a stream costs: RSS sampled every 2 ms during a
   * small stream and during the big one (each after gc), peak minus the RSS just before it.
   */
  async "stream-big"(a, s) {
    for (let i = 0; i < s.warmup; i++) await streamChecked(a, s.smallChunks)
    gc()
    let sampler = rssSampler()
    await streamChecked(a, s.smallChunks)
    const small = sampler.stop()
    if (s.bigWarmupChunks > 0) await streamChecked(a, s.bigWarmupChunks)
    const rates = []
    let big
    for (let r = 0; r < s.reps; r++) {
      gc()
      sampler = rssSampler()
      const t0 = performance.now()
      const res = await a.stream(s.bigChunks)
      const ms = performance.now() - t0
      const m = sampler.stop()
      if (big === undefined || m.peak > big.peak) big = m
      checkStream(s.bigChunks, res)
      rates.push(s.bigChunks / (ms / 1000))
    }
    return {
      figures: {
        big_stream_chunks_per_s: median(rates),
        rss_small_stream_peak_mb: small.peak,
        rss_big_stream_peak_mb: big.peak,
        rss_small_stream_added_mb: small.peak - small.before,
        rss_big_stream_added_mb: big.peak - big.before
      },
      meta: { bigChunks: s.bigChunks, smallChunks: s.smallChunks, reps: s.reps, rates, small, big }
    }
  },

  /** `s.streams` (100) concurrent streams of `s.chunks` (200): wall time divided by the number of streams (median of
   * `reps`), after one warm-up batch of `s.warmupStreams` concurrent streams. */
  async "stream-concurrent"(a, s) {
    const batch = (k) => Promise.all(Array.from({ length: k }, () => streamChecked(a, s.chunks)))
    if (s.warmupStreams > 0) await batch(s.warmupStreams)
    const per = []
    for (let r = 0; r < s.reps; r++) {
      const t0 = performance.now()
      await batch(s.streams)
      per.push((performance.now() - t0) / s.streams)
    }
    return {
      figures: { conc_stream_ms_per_stream: median(per) },
      meta: { streams: s.streams, chunks: s.chunks, reps: s.reps, per }
    }
  },

  /** Sequential streams of `s.chunks` (100): mean time per stream. */
  async "stream-seq"(a, s) {
    const { ms, count, extra } = await sequentialStreams(a, s)
    return { figures: { seq_stream_ms_per_stream: ms, ...extra }, meta: { count, chunks: s.chunks } }
  },

  /**
   * The same after a long warm-up (`s.warmup` streams or `s.warmupMaxMs`): the steady state of a long-running
   * process, where the JIT has compiled what the first hundred streams still interpret.
   */
  async "stream-seq-warm"(a, s) {
    const { ms, count, warmed, extra } = await sequentialStreams(a, s)
    return { figures: { seq_warm_stream_ms_per_stream: ms, ...extra }, meta: { count, warmed, chunks: s.chunks } }
  },

  /**
   * RSS after `s.first` (1,000) non-streaming calls vs after `s.total` (100,000); peak RSS of the process. With
   * `s.maxMs`, the second phase stops starting calls after that long; `memory_calls` says how many were made.
   */
  async memory(a, s) {
    await pool(s.first, s.concurrency, () => generateChecked(a))
    gc()
    const rss1 = rssMb()
    const heap1 = heapMb()
    const t0 = performance.now()
    const more = await pool(s.total - s.first, s.concurrency, () => generateChecked(a), s.maxMs)
    const ms = performance.now() - t0
    gc()
    const rss2 = rssMb()
    const heap2 = heapMb()
    return {
      figures: {
        rss_after_first_mb: rss1,
        rss_after_total_mb: rss2,
        rss_growth_mb: rss2 - rss1,
        heap_growth_mb: heap2 - heap1,
        peak_rss_mb: maxRssMb(),
        memory_calls: s.first + more
      },
      meta: {
        first: s.first,
        total: s.total,
        concurrency: s.concurrency,
        wallMs: ms,
        cappedByTime: s.first + more < s.total
      }
    }
  },

  /** Failover: first model answers 503, the library falls back to the second. Cost measured at the server. */
  async failover(a, s, ctx) {
    if (typeof a.failover !== "function") throw new Error("this client has no failover path")
    const failoverChecked = async () => checkText("failover", await a.failover(), NON_STREAM_TEXT)
    await pool(s.warmup, 1, failoverChecked, s.warmupMaxMs, 1)
    await globalThis.fetch(`${ctx.url}/stats/reset`, { method: "POST" }).then((r) => r.arrayBuffer())
    const times = []
    const deadline = performance.now() + (s.maxMs ?? Infinity)
    while (times.length < s.iterations && (times.length < (s.minCalls ?? 0) || performance.now() < deadline)) {
      const t0 = performance.now()
      const text = await a.failover()
      times.push(performance.now() - t0)
      checkText("failover", text, NON_STREAM_TEXT)
    }
    const st = await globalThis.fetch(`${ctx.url}/stats`).then((r) => r.json())
    const fo = st.failover
    if (fo.us.count !== times.length) {
      throw new Mismatch(`failover: server saw ${fo.us.count} failovers for ${times.length} calls`)
    }
    return {
      figures: {
        failover_server_us: fo.us.median,
        failover_call_ms: median(times)
      },
      meta: {
        iterations: times.length,
        server: fo.us,
        retriesOfFailFirst: fo.retriesOfFailFirst,
        failFirstRequests: st.failFirst
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Outage workloads: a two-model list whose first deployment is dead (503 on every request, or no answer until the
// attempt timeout), health on vs off vs model m alone.

const OUTAGE_CONFIGS = ["base", "on", "off", "short"]
/** Health's default first cooldown (Health.Options.cooldown). */
const DEFAULT_COOLDOWN_MS = 5_000

const upstreamCounts = async (url, dead) => {
  const st = await globalThis.fetch(`${url}/stats`).then((r) => r.json())
  return { dead: st.models?.[dead] ?? 0, hangOpen: st.hang?.open ?? 0 }
}

/** Cooldown expiries (reopenings, each admitting one probe) within `ms` of the first trip: cooldowns c, 2c, 4c, … */
const reopenings = (ms, cooldownMs) => {
  let k = 0
  let t = cooldownMs
  while (t <= ms) {
    k++
    t += cooldownMs * 2 ** k
  }
  return k
}

/**
 * Up to `n` calls at concurrency `c` (or until `ms` passed, after `minCalls`). A call the router fails (e.g. the
 * healthy model's attempt timing out on a loaded machine) is counted in `acc.failed`, its time kept in `acc.times`
 * (the caller waited that long); a wrong text is a mismatch, as everywhere.
 */
const outageCalls = (r, acc, n, c, ms, minCalls) =>
  pool(
    n,
    c,
    async () => {
      const t = performance.now()
      let text
      try {
        text = await r.generate()
      } catch (e) {
        acc.times?.push(performance.now() - t)
        acc.failed++
        acc.lastError = String(e?.message ?? e).slice(0, 300)
        return
      }
      acc.times?.push(performance.now() - t)
      checkText("outage", text, NON_STREAM_TEXT)
    },
    ms,
    minCalls
  )

/**
 * One concurrency `c`: a fresh router per configuration, all built at once. With health on, calls run (at `c`) until
 * the dead deployment's breaker opens (the trip; at most `s.tripMaxMs`). Then each configuration warms up (`s.warmup`
 * calls or `s.warmupMaxMs`). Then the measured calls, interleaved in blocks: each turn runs one block per
 * configuration (up to `s.block` calls, at most `s.maxMs * s.block / s.calls` ms), in `order`, until each has made
 * `s.calls` calls or spent `s.maxMs` (after `s.minCalls`); so that a drift of the process (the JIT, the machine's other
 * load) falls on every configuration alike. The upstream's count of requests for the dead model is read around each
 * block (the blocks run one at a time).
 */
const outageAt = async (a, s, url, order, c) => {
  const rs = {}
  const st = {}
  try {
    for (const config of order) {
      rs[config] = await a.outage(config)
      st[config] = { config, concurrency: c, times: [], calls: 0, ms: 0, dead: 0, failed: 0, warmupDead: 0 }
    }
    for (const config of order) {
      if (config !== "on" && config !== "short") continue
      const r = rs[config]
      const x = st[config]
      const t0 = performance.now()
      const n0 = await upstreamCounts(url, a.dead)
      let tripped = false
      let calls = 0
      const acc = { failed: 0 }
      await Promise.all(Array.from({ length: c }, async () => {
        while (!tripped && performance.now() < t0 + s.tripMaxMs) {
          calls++
          await outageCalls(r, acc, 1, 1)
          const h = await r.deadHealth()
          if (h !== undefined && h.state !== "closed") tripped = true
        }
      }))
      if (!tripped) {
        throw new Error(`outage ${config} c=${c}: the dead deployment did not trip within ${s.tripMaxMs} ms`)
      }
      x.tripAt = performance.now()
      x.trip = {
        calls,
        ms: x.tripAt - t0,
        dead: (await upstreamCounts(url, a.dead)).dead - n0.dead,
        failed: acc.failed
      }
    }
    for (const config of order) {
      const x = st[config]
      const n0 = await upstreamCounts(url, a.dead)
      await outageCalls(rs[config], x, s.warmup, c, s.warmupMaxMs, c)
      x.warmupDead = (await upstreamCounts(url, a.dead)).dead - n0.dead
      x.failed = 0
      x.times = []
    }
    const blockMs = (s.maxMs * s.block) / s.calls
    const done = (x) => x.calls >= s.calls || (x.ms >= s.maxMs && x.calls >= s.minCalls)
    while (order.some((config) => !done(st[config]))) {
      for (const config of order) {
        const x = st[config]
        if (done(x)) continue
        const n0 = await upstreamCounts(url, a.dead)
        const t0 = performance.now()
        const made = await outageCalls(
          rs[config],
          x,
          Math.min(s.block, s.calls - x.calls),
          c,
          Math.min(blockMs, s.maxMs - x.ms),
          Math.max(0, s.minCalls - x.calls)
        )
        const t1 = performance.now()
        x.calls += made
        x.ms += t1 - t0
        x.end = t1
        x.dead += (await upstreamCounts(url, a.dead)).dead - n0.dead
      }
    }
    for (const config of order) {
      const x = st[config]
      const sorted = [...x.times].sort((p, q) => p - q)
      x.p50 = quantile(sorted, 0.5)
      x.p99 = quantile(sorted, 0.99)
      x.mean = x.times.reduce((p, q) => p + q, 0) / x.times.length
      delete x.times
      if (x.tripAt !== undefined) {
        const window = x.end - x.tripAt
        const cooldown = config === "short" ? s.shortCooldownMs : DEFAULT_COOLDOWN_MS
        x.afterTrip = { ms: window, dead: x.warmupDead + x.dead, reopenings: reopenings(window, cooldown) }
      }
    }
    return st
  } finally {
    for (const r of Object.values(rs)) await r.close?.()
  }
}

/**
 * The outage workloads' figures, per configuration (on, off, short, base) and concurrency (c1, c32…): per-call p50 and
 * p99 ms of the measured calls, the calls made and failed, requests that reached the dead deployment during them
 * (`_dead`), and for health on the requests before the breaker opened (`_tripdead`) and from the trip to the end of
 * the measured calls against the cooldown expiries in that time (`_afterdead`, `_reopenings`); ratios to the
 * baseline (model m alone) at the same concurrency.
 */
const outage = async (a, s, ctx) => {
  if (typeof a.outage !== "function") throw new Error("this client has no outage path (no deployment health)")
  const figures = {}
  const phases = []
  // The order of the configurations (in each turn of blocks) rotates by one each round (`--round`).
  const k = (ctx.round - 1) % OUTAGE_CONFIGS.length
  const order = [...OUTAGE_CONFIGS.slice(k), ...OUTAGE_CONFIGS.slice(0, k)]
  for (const c of s.concurrencies) {
    const st = await outageAt(a, s, ctx.url, order, c)
    for (const config of OUTAGE_CONFIGS) {
      const p = st[config]
      phases.push(p)
      const key = `${config}_c${c}`
      figures[`${key}_p50_ms`] = p.p50
      figures[`${key}_p99_ms`] = p.p99
      figures[`${key}_calls`] = p.calls
      figures[`${key}_failed`] = p.failed
      figures[`${key}_dead`] = p.dead
      if (p.trip !== undefined) {
        figures[`${key}_tripdead`] = p.trip.dead
        figures[`${key}_afterdead`] = p.afterTrip.dead
        figures[`${key}_reopenings`] = p.afterTrip.reopenings
      }
      if (config !== "base") {
        figures[`${key}_p50_x`] = p.p50 / st.base.p50
        figures[`${key}_p99_x`] = p.p99 / st.base.p99
      }
    }
  }
  // Nothing left hanging at the upstream: every aborted request was closed by the client (the sockets close
  // asynchronously: poll for up to 2 s).
  let { hangOpen } = await upstreamCounts(ctx.url, a.dead)
  for (let i = 0; i < 20 && hangOpen > 0; i++) {
    await new Promise((res) => setTimeout(res, 100))
    hangOpen = (await upstreamCounts(ctx.url, a.dead)).hangOpen
  }
  figures.hang_open_at_end = hangOpen
  return { figures, meta: { order, phases } }
}
workloads["outage-503"] = outage
workloads["outage-hang"] = outage

// ---------------------------------------------------------------------------------------------------------------
// Slow tail: two deployments whose every N-th request takes F× the base latency, with and without hedged requests.

/** The slow-tail models' name prefix the upstream understands (`tail-<B>ms-<F>x-1in<N>`). */
export const tailPrefix = (s) => `tail-${s.baseMs}ms-${s.factor}x-1in${s.every}`

const upstreamModels = async (url) => (await globalThis.fetch(`${url}/stats`).then((r) => r.json())).models ?? {}

/**
 * Per concurrency (spec.concurrencies, with spec.calls[i] calls per configuration) and shape (spec.shapes: "group",
 * "list"): one fresh router per hedging configuration (the keys of spec.hedges), each on model names of its own (so the
 * upstream counts each configuration's requests, and each has its own 1-in-N tail), built at once; each warms up
 * (spec.warmup calls: a percentile delay needs 16 latencies), then the measured calls interleaved in blocks of
 * spec.block calls per configuration, in an order rotated each round, until each made its calls (or spent spec.maxMs,
 * after spec.minCalls). Figures per shape, configuration and concurrency: p50 and p99 ms per call, p99 / p50, the
 * extra requests (requests the upstream received for the configuration's models during the measured calls / calls − 1),
 * the share of calls that sent a hedge and of calls a hedge served, calls and failed calls.
 */
const slowTail = async (a, s, ctx) => {
  if (typeof a.tail !== "function") throw new Error("this client has no slow-tail path (no hedged requests)")
  const configs = Object.keys(s.hedges)
  const k = (ctx.round - 1) % configs.length
  const order = [...configs.slice(k), ...configs.slice(0, k)]
  const figures = {}
  const phases = []
  for (const [ci, c] of s.concurrencies.entries()) {
    const calls = s.calls[ci]
    for (const shape of s.shapes) {
      const rs = {}
      const st = {}
      try {
        for (const config of order) {
          rs[config] = await a.tail({ shape, config })
          st[config] = {
            shape,
            config,
            concurrency: c,
            times: [],
            calls: 0,
            ms: 0,
            requests: 0,
            failed: 0,
            hedged: 0,
            hedgeWon: 0,
            blocks: []
          }
        }
        const one = (config) => async () => {
          const x = st[config]
          const t = performance.now()
          let r
          try {
            r = await rs[config].generate()
          } catch (e) {
            x.times?.push(performance.now() - t)
            x.failed++
            x.lastError = String(e?.message ?? e).slice(0, 300)
            return
          }
          x.times?.push(performance.now() - t)
          checkText("slow-tail", r.text, NON_STREAM_TEXT)
          if (r.hedged) x.hedged++
          if (r.hedgeWon) x.hedgeWon++
        }
        for (const config of order) {
          const x = st[config]
          const times = x.times
          x.times = undefined
          await pool(s.warmup, c, one(config), s.warmupMaxMs, Math.min(s.warmup, 2 * c))
          x.times = times
          x.failed = 0
          x.hedged = 0
          x.hedgeWon = 0
        }
        const count = (models, config) => rs[config].models.reduce((n, m) => n + (models[m] ?? 0), 0)
        const blockMs = (s.maxMs * s.block) / calls
        const done = (x) => x.calls >= calls || (x.ms >= s.maxMs && x.calls >= s.minCalls)
        while (order.some((config) => !done(st[config]))) {
          for (const config of order) {
            const x = st[config]
            if (done(x)) continue
            const n0 = count(await upstreamModels(ctx.url), config)
            const [h0, w0] = [x.hedged, x.hedgeWon]
            const t0 = performance.now()
            const made = await pool(
              Math.min(s.block, calls - x.calls),
              c,
              one(config),
              Math.min(blockMs, s.maxMs - x.ms),
              Math.max(0, Math.min(s.block, s.minCalls - x.calls))
            )
            x.ms += performance.now() - t0
            x.calls += made
            // Counted on arrival, a cancelled hedge included; one sent at the very end of a block and still in the
            // socket when it is read would be missed (never given to another configuration: its names are its own).
            const requests = count(await upstreamModels(ctx.url), config) - n0
            x.requests += requests
            // Per block (in meta): calls, requests, calls that hedged, calls a hedge served; shows when hedging stops.
            x.blocks.push([made, requests, x.hedged - h0, x.hedgeWon - w0])
          }
        }
      } finally {
        for (const r of Object.values(rs)) await r.close?.()
      }
      for (const config of order) {
        const x = st[config]
        const sorted = [...x.times].sort((p, q) => p - q)
        x.p50 = quantile(sorted, 0.5)
        x.p99 = quantile(sorted, 0.99)
        x.max = sorted[sorted.length - 1]
        delete x.times
        phases.push(x)
        const key = `${shape}_${config}_c${c}`
        figures[`${key}_p50_ms`] = x.p50
        figures[`${key}_p99_ms`] = x.p99
        figures[`${key}_p99_over_p50`] = x.p99 / x.p50
        figures[`${key}_extra`] = x.requests / x.calls - 1
        figures[`${key}_hedged`] = x.hedged / x.calls
        figures[`${key}_hedge_won`] = x.hedgeWon / x.calls
        figures[`${key}_calls`] = x.calls
        figures[`${key}_failed`] = x.failed
      }
    }
  }
  return { figures, meta: { order, phases, prefix: tailPrefix(s) } }
}
workloads["slow-tail"] = slowTail

export const WORKLOADS = Object.keys(workloads)

const emit = (obj) => {
  process.stdout.write(JSON.stringify({ bench: 1, ...obj }) + "\n")
}

/** Entry point of a client process. Prints exactly one JSON line with `"bench":1`, then exits. */
export const runClient = async (name, makeAdapter) => {
  const args = parseArgs(process.argv.slice(2))
  const client = typeof args.name === "string" ? args.name : name
  const workload = String(args.workload)
  const url = String(args.url)
  const spec = JSON.parse(String(args.spec ?? "{}"))
  const variant = typeof args.variant === "string" ? args.variant : undefined
  const base = { client, workload, pid: process.pid }
  const limitMs = Number(args["timeout-ms"] ?? 0)
  if (limitMs > 0) {
    setTimeout(() => {
      emit({ ...base, ok: false, error: `client gave up after its own limit of ${limitMs} ms` })
      process.exit(3)
    }, limitMs).unref()
  }
  try {
    const run = workloads[workload]
    if (run === undefined) throw new Error(`unknown workload ${workload}`)
    const t0 = performance.now()
    const adapter = await makeAdapter({ url, variant, workload, spec, args })
    const setupMs = performance.now() - t0
    const round = Number(args.round ?? 1)
    const out = await run(adapter, spec, { url, round: Number.isInteger(round) && round > 0 ? round : 1 })
    if (adapter.close) await adapter.close()
    for (const [k, v] of Object.entries(out.figures)) {
      if (typeof v !== "number" || !Number.isFinite(v)) throw new Error(`figure ${k} is not a finite number: ${v}`)
    }
    emit({
      ...base,
      ok: true,
      figures: out.figures,
      meta: { ...out.meta, setupMs, maxRssMb: maxRssMb(), node: process.version }
    })
    process.exit(0)
  } catch (e) {
    const msg = e instanceof Error ? `${e instanceof Mismatch ? "MISMATCH " : ""}${e.message}` : String(e)
    emit({
      ...base,
      ok: false,
      error: msg.slice(0, 2000),
      stack: e instanceof Error ? String(e.stack).slice(0, 2000) : undefined
    })
    process.exit(1)
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Helpers for clients

/**
 * A hand-written SSE line splitter over a stream of Uint8Array. Calls `onData(payload)` for each `data:` line
 * (payload without the `data: ` prefix), stops at `[DONE]`.
 */
export const splitSse = async (chunks, onData) => {
  const dec = new TextDecoder()
  let buf = ""
  let done = false
  for await (const b of chunks) {
    buf += dec.decode(b, { stream: true })
    let i
    while ((i = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, i)
      buf = buf.slice(i + 1)
      if (line.startsWith("data: ")) {
        const data = line.slice(6)
        if (data === "[DONE]") {
          done = true
          continue
        }
        onData(data)
      }
    }
  }
  return done
}

/** Accumulates the text deltas of a Chat Completions stream through `splitSse`. */
export const chatDeltaCollector = () => {
  const parts = []
  let chunks = 0
  return {
    onData(data) {
      const ev = JSON.parse(data)
      const c = ev.choices?.[0]?.delta?.content
      if (typeof c === "string" && c.length > 0) {
        parts.push(c)
        chunks++
      }
    },
    result: () => ({ text: parts.join(""), chunks })
  }
}
