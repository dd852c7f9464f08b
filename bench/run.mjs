#!/usr/bin/env node
// Benchmark runner: effect-llm-router against its peers, every client in its own process, against a loopback
// OpenAI-compatible upstream (bench/upstream.mjs) in another process. Node built-ins only.
//
//   npm run bench                                   # the default matrix (all clients, all workloads, 5 rounds)
//   node bench/run.mjs --sizes tiny --rounds 1 --clients raw-fetch,ours-fetch
//
// Flags
//   --rounds N            rounds (default 5; tiny: 1). Within a round, for each workload every client runs once,
//                         in an order rotated by one each round.
//   --clients a,b         subset of: raw-fetch, raw-undici, openai-node, ai, langchain, effect-ai, ours-fetch, ours-undici,
//                         effect-ai-ours, ai-ours (the bridges), and (only when named) ours-fetchr
//                         (FetchRouterHttpClient), ours-nodehttp (RouterHttpClient), effect-ai-ours-undici,
//                         ai-ours-undici, effect-ai-ours-fetchr, effect-ai-ours-nodehttp, ai-ours-fetchr,
//                         ai-ours-platformfetch (ai-ours on FetchHttpClient), and the opt-in variants
//                         ours-fetch-nohealth, ours-undici-nohealth (health: false), ours-undici-redis
//                         (RedisHealthStore on a redis-server the runner starts, admission "local"; -redisrt:
//                         admission "redis"; skipped without redis-server), ours-undici-limits (limits that never bind),
//                         ours-undici-group4 (the first entry a group of 4 deployments; -group4rr, -group4lif,
//                         -group4lat: the other strategies); each is then compared with its base client (ours-fetch /
//                         ours-undici) in the summary
//                         Native protocols (only when named): anthropic-sdk, google-genai (the providers' SDKs),
//                         ours-anthropic-fetch, ours-anthropic-undici, ours-gemini-fetch, ours-gemini-undici
//   --workloads a,b       subset of: latency, throughput, stream-big, stream-concurrent, stream-seq, stream-seq-warm,
//                         failover, outage-503, outage-hang, memory, and (only when named) slow-tail (the outage ones
//                         and slow-tail run ours-fetch / ours-undici only)
//   --sizes default|tiny  tiny: 1 round, a handful of calls, small streams (the smoke test's size)
//   --memory-rounds N     run the (slow, 100,000-call) memory workload in the first N rounds only (default 1)
//   --memory-parallel N   memory-workload client processes run N at a time (default 2): it reports RSS only, no
//                         timings, and each client process keeps one core busy while the upstream needs little
//   --results-dir DIR     where <timestamp>.jsonl and latest.md go (default bench/results)
//   --no-install          never run `npm ci` (clients whose packages are missing are skipped)
//   --no-build            do not run `npm run build` before the ours-* clients (use dist/ as it is)
//   --timeout-scale X     multiply every child's time limit by X (default 1)
//   --summarize FILE      print the summary table of an earlier run from its .jsonl, run nothing
//
// Only raw-fetch and ours-* run without bench/node_modules; `npm ci --prefix bench` runs only when another client
// is asked for and bench/node_modules is missing. The ours-* clients need the library built (`npm run build`, top
// level, output dist/src/index.js); the runner builds it first and skips them if dist/src/index.js is still missing.
import { spawn } from "node:child_process"
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import os from "node:os"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "./lib/harness.mjs"
import { redisServerMissing, startRedisServer } from "./lib/redis-server.mjs"

const BENCH = dirname(fileURLToPath(import.meta.url))
const ROOT = resolve(BENCH, "..")
const t0 = Date.now()

// ---------------------------------------------------------------------------------------------------------------
// What there is to run

/** An opt-in variant of ours-undici with the Redis health store (on the redis-server the runner starts). */
const redisVariant = (variant, feature, about) => ({
  file: "ours.mjs",
  variant,
  ours: true,
  optIn: true,
  benchDeps: false,
  redis: true,
  dist: ["dist/src/index.js", "dist/src/node/index.js", "dist/src/redis/index.js", "node_modules/ioredis/package.json"],
  base: "ours-undici",
  feature,
  adds: true,
  about
})

const CLIENTS = {
  "raw-fetch": { file: "raw-fetch.mjs", benchDeps: false, about: "global fetch + hand-written SSE splitter" },
  "raw-undici": { file: "raw-undici.mjs", benchDeps: true, about: "undici.request + hand-written SSE splitter" },
  "openai-node": { file: "openai-node.mjs", benchDeps: true, about: "openai (official SDK), default retries" },
  "ai": { file: "ai-sdk.mjs", benchDeps: true, about: "Vercel AI SDK generateText/streamText, @ai-sdk/openai .chat()" },
  "langchain": { file: "langchain.mjs", benchDeps: true, about: "@langchain/openai ChatOpenAI" },
  "effect-ai": {
    file: "effect-ai.mjs",
    benchDeps: true,
    about: "@effect/ai-openai OpenAiLanguageModel on FetchHttpClient (Responses API)"
  },
  "ours-fetch": {
    file: "ours.mjs",
    variant: "fetch",
    ours: true,
    outage: true,
    benchDeps: false,
    about: "this library, FetchHttpClient"
  },
  "ours-undici": {
    file: "ours.mjs",
    variant: "undici",
    ours: true,
    outage: true,
    benchDeps: false,
    about: "this library, NodeRouterHttpClient.layerUndici"
  },
  "ours-fetchr": {
    file: "ours.mjs",
    variant: "fetchr",
    ours: true,
    optIn: true,
    benchDeps: false,
    about: "this library, FetchRouterHttpClient.layer (its own layer on globalThis.fetch)"
  },
  "ours-nodehttp": {
    file: "ours.mjs",
    variant: "nodehttp",
    ours: true,
    optIn: true,
    benchDeps: false,
    about: "this library, RouterHttpClient.layer (node:http from the runtime, no import)"
  },
  // The bridges (clients/bridges.mjs), beside the stock provider of their ecosystem: `effect-ai-ours` beside
  // `effect-ai`, `ai-ours` beside `ai` (on the AI SDK provider's default client, RouterHttpClient: node:http); the variants
  // on other HTTP clients only when named.
  "effect-ai-ours": {
    file: "bridges.mjs",
    variant: "effectai-fetch",
    ours: true,
    dist: ["dist/src/index.js", "dist/src/ai/index.js"],
    benchDeps: false,
    about: "@effect/ai LanguageModel through effect-llm-router/ai, FetchHttpClient"
  },
  "ai-ours": {
    file: "bridges.mjs",
    variant: "aisdk-default",
    ours: true,
    dist: ["dist/src/index.js", "dist/src/ai-sdk/index.js"],
    benchDeps: true,
    about: "Vercel AI SDK generateText/streamText with the effect-llm-router/ai-sdk provider on its default HTTP " +
      "client (RouterHttpClient.layer: node:http on Node)"
  },
  "ai-ours-fetchr": {
    file: "bridges.mjs",
    variant: "aisdk-fetchr",
    ours: true,
    optIn: true,
    dist: ["dist/src/index.js", "dist/src/ai-sdk/index.js"],
    benchDeps: true,
    about: "ai-ours on FetchRouterHttpClient.layer (globalThis.fetch: the bridge's default off Node)"
  },
  "effect-ai-ours-nodehttp": {
    file: "bridges.mjs",
    variant: "effectai-nodehttp",
    ours: true,
    optIn: true,
    dist: ["dist/src/index.js", "dist/src/ai/index.js"],
    benchDeps: false,
    about: "effect-ai-ours on RouterHttpClient.layer (node:http)"
  },
  "ai-ours-platformfetch": {
    file: "bridges.mjs",
    variant: "aisdk-fetch",
    ours: true,
    optIn: true,
    dist: ["dist/src/index.js", "dist/src/ai-sdk/index.js"],
    benchDeps: true,
    about: "ai-ours on the platform's FetchHttpClient.layer"
  },
  "effect-ai-ours-fetchr": {
    file: "bridges.mjs",
    variant: "effectai-fetchr",
    ours: true,
    optIn: true,
    dist: ["dist/src/index.js", "dist/src/ai/index.js"],
    benchDeps: false,
    about: "effect-ai-ours on FetchRouterHttpClient.layer"
  },
  "effect-ai-ours-undici": {
    file: "bridges.mjs",
    variant: "effectai-undici",
    ours: true,
    optIn: true,
    dist: ["dist/src/index.js", "dist/src/node/index.js", "dist/src/ai/index.js"],
    benchDeps: false,
    about: "effect-ai-ours on NodeRouterHttpClient.layerUndici"
  },
  "ai-ours-undici": {
    file: "bridges.mjs",
    variant: "aisdk-undici",
    ours: true,
    optIn: true,
    dist: ["dist/src/index.js", "dist/src/node/index.js", "dist/src/ai-sdk/index.js"],
    benchDeps: true,
    about: "ai-ours on NodeRouterHttpClient.layerUndici"
  },
  // Opt-in: the Anthropic Messages and Gemini protocols (same upstream, its /v1/messages and /v1beta/models/… routes),
  // each provider's SDK beside ours on that protocol; compare with ours-undici (the OpenAI-compatible protocol).
  "anthropic-sdk": {
    file: "anthropic-sdk.mjs",
    optIn: true,
    benchDeps: true,
    about: "@anthropic-ai/sdk (official SDK), Messages API, default retries"
  },
  "google-genai": {
    file: "google-genai.mjs",
    optIn: true,
    benchDeps: true,
    about: "@google/genai (official SDK), generateContent / streamGenerateContent"
  },
  ...Object.fromEntries(
    ["anthropic", "gemini"].flatMap((protocol) =>
      ["fetch", "undici"].map((layer) => [`ours-${protocol}-${layer}`, {
        file: "ours.mjs",
        variant: `${layer}-${protocol}`,
        ours: true,
        optIn: true,
        benchDeps: false,
        about: `this library on the ${protocol === "anthropic" ? "Anthropic Messages" : "Gemini"} protocol, ${
          layer === "fetch" ? "FetchHttpClient" : "NodeRouterHttpClient.layerUndici"
        }`
      }])
    )
  ),
  // Opt-in variants (not in the default matrix), each measured against its `base` client in the same round: what a
  // feature costs on the healthy path. `feature` names it; `adds`: the variant has the feature and the base has not
  // (false: the other way round, as `health: false`), so that every ratio of the summary reads "with / without".
  // Not for the outage workloads, which measure health on and off themselves.
  "ours-fetch-nohealth": {
    file: "ours.mjs",
    variant: "fetch-nohealth",
    ours: true,
    optIn: true,
    benchDeps: false,
    base: "ours-fetch",
    feature: "deployment health",
    adds: false,
    about: "ours-fetch with health: false"
  },
  "ours-undici-nohealth": {
    file: "ours.mjs",
    variant: "undici-nohealth",
    ours: true,
    optIn: true,
    benchDeps: false,
    base: "ours-undici",
    feature: "deployment health",
    adds: false,
    about: "ours-undici with health: false"
  },
  "ours-undici-redis": redisVariant(
    "undici-redis",
    "Redis health store",
    "ours-undici with RedisHealthStore.layer on a loopback redis-server (no persistence) started by the runner " +
      "(admission \"local\", the default)"
  ),
  "ours-undici-redisrt": redisVariant(
    "undici-redisrt",
    "Redis health store, admission \"redis\"",
    "ours-undici-redis with admission \"redis\": every admission and report a script on Redis"
  ),
  "ours-undici-limits": {
    file: "ours.mjs",
    variant: "undici-limits",
    ours: true,
    optIn: true,
    benchDeps: false,
    base: "ours-undici",
    feature: "limits (never binding)",
    adds: true,
    about: "ours-undici whose models declare limits that never bind (maxConcurrent 100000, 1e9 requests/min, " +
      "1e10 tokens/min)"
  },
  // The first entry of the list a group of 4 deployments (4 model names on the same upstream) instead of model m
  // alone: what the group's pick costs per call (issue 12: within 10 % of client CPU per call at c=32).
  ...Object.fromEntries(
    [["group4", "weighted"], ["group4rr", "round-robin"], ["group4lif", "least-in-flight"], [
      "group4lat",
      "lowest-latency"
    ]].map(([flag, strategy]) => [`ours-undici-${flag}`, {
      file: "ours.mjs",
      variant: `undici-${flag}`,
      ours: true,
      optIn: true,
      benchDeps: false,
      base: "ours-undici",
      feature: `group of 4 (${strategy})`,
      adds: true,
      group: true,
      about: `ours-undici whose first entry is Model.group of 4 deployments (strategy ${strategy}), 4 model names on ` +
        "the same upstream"
    }])
  )
}
// The issue's target for a group: client CPU per call at c=32 within this factor of a single deployment's.
const GROUP_TARGET_X = 1.1
// The issue's target for hedging a slow tail: p99 ≤ this × p50, with at most SLOW_TAIL_EXTRA extra requests per call.
const SLOW_TAIL_TARGET_X = 2
const SLOW_TAIL_EXTRA = 0.1
// The issue's target for the Redis store: at most this much added latency per call at concurrency 1, on loopback.
const REDIS_TARGET_MS = 0.3

// memory last: it is the slow one, and it runs in the first --memory-rounds rounds only, --memory-parallel at a time.
const WORKLOADS = [
  "latency",
  "throughput",
  "stream-big",
  "stream-concurrent",
  "stream-seq",
  "stream-seq-warm",
  "failover",
  "outage-503",
  "outage-hang",
  "memory",
  "slow-tail"
]
const OUTAGE_WORKLOADS = ["outage-503", "outage-hang"]
/** Workloads of ours-fetch / ours-undici only (they measure features the peers do not have). */
const OURS_ONLY_WORKLOADS = [...OUTAGE_WORKLOADS, "slow-tail"]
/** Workloads that run only when named in --workloads (about 70 s per process at load 6). */
const OPT_IN_WORKLOADS = ["slow-tail"]

// Call counts per workload. Tuned so that the default matrix (8 clients, 5 rounds, memory in 1 round) stays well
// under 15 minutes on a 2-core machine; see bench/README.md for the measured durations.
const SIZES = {
  // Measured phases stop at `calls`/`count`/`iterations` or after `maxMs` (once `minCalls` are done), whichever
  // comes first, so that slow clients do not dominate the wall time; figures are per call, so they stay comparable.
  default: {
    latency: { warmup: 200, warmupMaxMs: 500, calls: 1_000, minCalls: 200, maxMs: 1_200 },
    throughput: { warmup: 300, warmupMaxMs: 500, calls: 3_000, minCalls: 300, maxMs: 1_200, concurrency: 32 },
    "stream-big": { warmup: 3, smallChunks: 200, bigWarmupChunks: 1_000, bigChunks: 20_000, reps: 1 },
    "stream-concurrent": { warmupStreams: 5, streams: 100, chunks: 200, reps: 1 },
    "stream-seq": { warmup: 10, warmupMaxMs: 300, count: 100, minCalls: 20, maxMs: 1_200, chunks: 100 },
    "stream-seq-warm": { warmup: 600, warmupMaxMs: 2_000, count: 200, minCalls: 20, maxMs: 1_200, chunks: 100 },
    failover: { warmup: 10, warmupMaxMs: 300, iterations: 100, minCalls: 30, maxMs: 1_000 },
    // Per concurrency, four routers (model m alone; the dead model then m with health on / off / on with a 100 ms
    // cooldown): trip the breaker (health on, up to 3 s), warm up, then up to 1,000 calls each (or 1.5 s, at least
    // 20), interleaved in blocks of 100 (or 150 ms): with health off every hanging call waits out the 50 ms attempt
    // timeout (~30 calls at c=1 in 1.5 s).
    "outage-503": {
      warmup: 200,
      warmupMaxMs: 500,
      calls: 1_000,
      minCalls: 20,
      maxMs: 1_500,
      tripMaxMs: 3_000,
      block: 100,
      concurrencies: [1, 32],
      shortCooldownMs: 100
    },

    // 100,000 calls, but the 99,000 after the first 1,000 stop after 100 s: the slowest peers need ~180 s alone.
    memory: { first: 1_000, total: 100_000, maxMs: 100_000, concurrency: 32 },
    // Two deployments answering after 10 ms, every 33rd request per model after 200 ms (3 %); per shape (a group of
    // two, a two-model list), hedging configuration and concurrency, up to 300 calls at c=1 and 500 at c=8 (or 8 s,
    // at least 100) after 40 warm-up calls, interleaved in blocks of 50: about 70 s per process at load 6.
    "slow-tail": {
      baseMs: 10,
      factor: 20,
      every: 33,
      shapes: ["group", "list"],
      concurrencies: [1, 8],
      calls: [300, 500],
      warmup: 40,
      warmupMaxMs: 3_000,
      block: 50,
      minCalls: 100,
      maxMs: 8_000,
      hedges: {
        none: null,
        fixed: { delayMs: 15 },
        p95: { percentile: 95, initialMs: 15 },
        p90: { percentile: 90, initialMs: 15 }
      }
    }
  },
  tiny: {
    latency: { warmup: 3, calls: 10 },
    throughput: { warmup: 4, calls: 40, concurrency: 32 },
    "stream-big": { warmup: 1, smallChunks: 20, bigWarmupChunks: 100, bigChunks: 500, reps: 1 },
    "stream-concurrent": { warmupStreams: 2, streams: 5, chunks: 20, reps: 1 },
    "stream-seq": { warmup: 1, count: 5, chunks: 20 },
    "stream-seq-warm": { warmup: 3, count: 5, chunks: 20 },
    failover: { warmup: 1, iterations: 5 },
    "outage-503": {
      warmup: 2,
      warmupMaxMs: 300,
      calls: 10,
      minCalls: 5,
      maxMs: 500,
      tripMaxMs: 3_000,
      block: 5,
      concurrencies: [1, 4],
      shortCooldownMs: 100
    },

    memory: { first: 50, total: 200, concurrency: 8 },
    "slow-tail": {
      baseMs: 5,
      factor: 20,
      every: 10,
      shapes: ["group", "list"],
      concurrencies: [1, 4],
      calls: [20, 20],
      warmup: 4,
      warmupMaxMs: 1_000,
      block: 10,
      minCalls: 10,
      maxMs: 3_000,
      hedges: {
        none: null,
        fixed: { delayMs: 8 },
        p95: { percentile: 95, initialMs: 8 },
        p90: { percentile: 90, initialMs: 8 }
      }
    }
  }
}
// The hanging deployment's workload is the 503 one plus the attempt timeout that cuts each hung request.
for (const sizes of Object.values(SIZES)) sizes["outage-hang"] = { ...sizes["outage-503"], attemptMs: 50 }

// Time limit (ms) of one client process per workload; the process is killed (SIGKILL) past it.
const LIMITS = {
  default: {
    latency: 90_000,
    throughput: 90_000,
    "stream-big": 120_000,
    "stream-concurrent": 90_000,
    "stream-seq": 90_000,
    "stream-seq-warm": 90_000,
    memory: 400_000,
    failover: 90_000,
    "outage-503": 90_000,
    "outage-hang": 90_000,
    "slow-tail": 150_000
  },
  tiny: Object.fromEntries(WORKLOADS.map((w) => [w, 60_000]))
}

// The figures of the summary: key, label, whether lower (↓) or higher (↑) is better, and "diff" for figures near
// zero or signed (growths), which are compared to raw-fetch by difference instead of ratio ("none": not compared).
const FIGURES = {
  latency: [["lat_mean_ms", "mean ms", "↓"], ["lat_p99_ms", "p99 ms", "↓"]],
  throughput: [["tput_calls_per_s", "calls/s", "↑"], ["cpu_us_per_call", "client CPU µs/call", "↓"]],
  "stream-big": [
    ["big_stream_chunks_per_s", "chunks/s", "↑"],
    ["rss_small_stream_peak_mb", "RSS MB during small", "↓"],
    ["rss_big_stream_peak_mb", "RSS MB during big", "↓"],
    ["rss_small_stream_added_mb", "+MB small", "↓", "diff"],
    ["rss_big_stream_added_mb", "+MB big", "↓", "diff"]
  ],
  "stream-concurrent": [["conc_stream_ms_per_stream", "ms/stream", "↓"]],
  "stream-seq": [["seq_stream_ms_per_stream", "ms/stream", "↓"]],
  "stream-seq-warm": [["seq_warm_stream_ms_per_stream", "ms/stream", "↓"]],
  memory: [
    ["rss_after_first_mb", "RSS MB after first", "↓"],
    ["rss_after_total_mb", "RSS MB after total", "↓"],
    ["rss_growth_mb", "growth MB", "↓", "diff"],
    ["heap_growth_mb", "heap growth MB", "↓", "diff"],
    ["peak_rss_mb", "peak RSS MB", "↓"],
    ["memory_calls", "calls made", "", "none"]
  ],
  failover: [["failover_server_us", "failover µs (server)", "↓"], ["failover_call_ms", "whole call ms", "↓"]]
}
// The outage workloads' figures depend on their spec (the concurrencies); rendered by `outageTable`.
const OUTAGE_CONFIGS = [
  ["on", "health on (defaults)"],
  ["short", "health on, cooldown 100 ms"],
  ["off", "health off"],
  ["base", "baseline: m alone"]
]
const outageFigures = (spec) =>
  spec.concurrencies.flatMap((c) =>
    OUTAGE_CONFIGS.flatMap(([k]) => {
      const p = `${k}_c${c}`
      const f = [[`${p}_p50_ms`], [`${p}_p99_ms`], [`${p}_dead`], [`${p}_calls`], [`${p}_failed`]]
      if (k !== "base") f.push([`${p}_p50_x`], [`${p}_p99_x`])
      if (k === "on" || k === "short") f.push([`${p}_tripdead`], [`${p}_afterdead`], [`${p}_reopenings`])
      return f.map(([key]) => [key, key, "", "none"])
    })
  ).concat([["hang_open_at_end", "hung requests left open", "", "none"]])
const SLOW_TAIL_FIGURES = [
  ["p50_ms"],
  ["p99_ms"],
  ["p99_over_p50"],
  ["extra"],
  ["hedged"],
  ["hedge_won"],
  ["calls"],
  ["failed"]
]
const slowTailFigures = (spec) =>
  spec.concurrencies.flatMap((c) =>
    spec.shapes.flatMap((shape) =>
      Object.keys(spec.hedges).flatMap((config) =>
        SLOW_TAIL_FIGURES.map(([f]) => {
          const key = `${shape}_${config}_c${c}_${f}`
          return [key, key, "", "none"]
        })
      )
    )
  )
const figuresOf = (w, spec) =>
  OUTAGE_WORKLOADS.includes(w) ? outageFigures(spec) : w === "slow-tail" ? slowTailFigures(spec) : FIGURES[w]
/** A slow-tail hedging configuration in words. */
const hedgeLabel = (h) =>
  h === null
    ? "no hedging"
    : h.delayMs !== undefined
    ? `hedge after ${h.delayMs} ms`
    : `hedge at p${h.percentile} of recent latencies (${h.initialMs} ms until 16 known)`

const upTo = (n, s) => (s.maxMs !== undefined ? `up to ${n} (or ${s.maxMs / 1000} s, at least ${s.minCalls})` : `${n}`)
const TITLES = {
  latency: (s) => `Non-streaming latency, concurrency 1 (${upTo(s.calls, s)} calls after ${s.warmup} warm-up)`,
  throughput: (s) =>
    `Non-streaming throughput, concurrency ${s.concurrency} (${
      upTo(s.calls, s)
    } calls after ${s.warmup} warm-up); client CPU per call`,
  "stream-big": (s) =>
    `Decode of one ${s.bigChunks}-chunk stream; RSS (sampled every 2 ms, after gc) during a ${s.smallChunks}-chunk stream and during the big one, and what each added`,
  "stream-concurrent": (s) => `${s.streams} concurrent ${s.chunks}-chunk streams: wall time / ${s.streams}`,
  "stream-seq": (s) => `Sequential ${s.chunks}-chunk streams: time per stream (${upTo(s.count, s)} streams)`,
  "stream-seq-warm": (s) =>
    `The same, warm: sequential ${s.chunks}-chunk streams after ${s.warmup} warm-up streams (or ${
      s.warmupMaxMs / 1000
    } s), the steady state of a long-running process (${upTo(s.count, s)} streams)`,
  memory: (s) =>
    `RSS after ${s.first} vs after ${s.total} non-streaming calls (concurrency ${s.concurrency}, after gc${
      s.maxMs !== undefined ? `; calls after the first ${s.first} stop after ${s.maxMs / 1000} s` : ""
    })`,
  failover: (s) =>
    `Failover: model 1 answers 503, fall back to model 2; server-measured gap from the 503 sent to model 2's request (median of ${
      upTo(s.iterations, s)
    } calls)`,
  "outage-503": (s) =>
    `Outage tax: models [down, m], \`down\` answers 503 to every request; one attempt per model; per configuration and concurrency, ${
      upTo(s.calls, s)
    } calls after the breaker opened (health on) and ${s.warmup} warm-up`,
  "outage-hang": (s) =>
    `Outage tax: models [hang, m], \`hang\` never answers (attempt timeout ${s.attemptMs} ms); one attempt per model; per configuration and concurrency, ${
      upTo(s.calls, s)
    } calls after the breaker opened (health on) and ${s.warmup} warm-up`,
  "slow-tail": (s) =>
    `Slow tail: two deployments answer after ${s.baseMs} ms, 1 request in ${s.every} per model after ${
      s.factor * s.baseMs
    } ms (${s.factor}×); per shape, hedging configuration and concurrency, ${
      s.concurrencies.map((c, i) => `c=${c}: up to ${s.calls[i]}`).join(", ")
    } calls (or ${
      s.maxMs / 1000
    } s, at least ${s.minCalls}) after ${s.warmup} warm-up, interleaved in blocks of ${s.block}`
}

// ---------------------------------------------------------------------------------------------------------------
// Flags

const args = parseArgs(process.argv.slice(2))
// The flags above, and no others: a mistyped flag (or --help) must not start the whole default matrix.
const KNOWN_FLAGS = [
  "rounds",
  "clients",
  "workloads",
  "sizes",
  "memory-rounds",
  "memory-parallel",
  "results-dir",
  "no-install",
  "no-build",
  "timeout-scale",
  "summarize"
]
for (const flag of Object.keys(args)) {
  if (!KNOWN_FLAGS.includes(flag)) {
    fail(
      `unknown flag --${flag}; the flags are ${
        KNOWN_FLAGS.map((f) => `--${f}`).join(", ")
      } (see the top of bench/run.mjs)`
    )
  }
}
const list = (v) => (typeof v === "string" ? v.split(",").map((s) => s.trim()).filter(Boolean) : undefined)
const sizes = typeof args.sizes === "string" ? args.sizes : "default"
if (!(sizes in SIZES)) fail(`--sizes must be one of ${Object.keys(SIZES).join(", ")}`)
const rounds = args.rounds !== undefined ? Number(args.rounds) : sizes === "tiny" ? 1 : 5
if (!Number.isInteger(rounds) || rounds < 1) fail("--rounds must be a positive integer")
const memoryRounds = args["memory-rounds"] !== undefined ? Number(args["memory-rounds"]) : 1
const memoryParallel = args["memory-parallel"] !== undefined ? Number(args["memory-parallel"]) : 2
if (!Number.isInteger(memoryParallel) || memoryParallel < 1) fail("--memory-parallel must be a positive integer")
const timeoutScale = args["timeout-scale"] !== undefined ? Number(args["timeout-scale"]) : 1
const clients = list(args.clients) ?? Object.keys(CLIENTS).filter((c) => !CLIENTS[c].optIn)
for (const c of clients) if (!(c in CLIENTS)) fail(`unknown client ${c}; known: ${Object.keys(CLIENTS).join(", ")}`)
const workloads = list(args.workloads) ?? WORKLOADS.filter((w) => !OPT_IN_WORKLOADS.includes(w))
for (const w of workloads) if (!WORKLOADS.includes(w)) fail(`unknown workload ${w}; known: ${WORKLOADS.join(", ")}`)
const resultsDir = resolve(typeof args["results-dir"] === "string" ? args["results-dir"] : join(BENCH, "results"))
const noInstall = args["no-install"] === true
const noBuild = args["no-build"] === true

if (typeof args.summarize === "string") {
  // Re-render the summary of an earlier run from its .jsonl (e.g. after changing the table layout).
  const lines = readFileSync(args.summarize, "utf8").split("\n").filter((l) => l.trim() !== "").map((l) =>
    JSON.parse(l)
  )
  const h = lines.find((l) => l.kind === "run")
  if (h === undefined) fail(`${args.summarize} has no "run" record`)
  h.requested ??= [...h.clients, ...Object.keys(h.skipped ?? {})]
  h.specs ??= SIZES[h.sizes]
  h.skipped ??= {}
  h.notes ??= []
  const elapsed = lines.find((l) => l.kind === "summary")?.elapsedS
  process.stdout.write(render(h, lines.filter((l) => l.kind === "result"), elapsed).text + "\n")
  process.exit(0)
}

function fail(msg) {
  process.stderr.write(`bench: ${msg}\n`)
  process.exit(2)
}
const log = (msg) => process.stderr.write(`[bench ${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}\n`)

// ---------------------------------------------------------------------------------------------------------------
// Child processes, each with a time limit

const children = new Set()

/** Runs a command; resolves { code, stdout, stderr, timedOut, ms }. Killed (SIGKILL) past `limitMs`. */
const run = (cmd, argv, { cwd, limitMs, inheritOutput = false, stdin = "ignore" }) =>
  new Promise((res) => {
    const started = Date.now()
    const child = spawn(cmd, argv, {
      cwd,
      stdio: [stdin, inheritOutput ? process.stderr : "pipe", inheritOutput ? process.stderr : "pipe"],
      env: process.env
    })
    children.add(child)
    let stdout = ""
    let stderr = ""
    child.stdout?.on("data", (d) => {
      stdout += d
    })
    child.stderr?.on("data", (d) => {
      stderr += d
      if (stderr.length > 64_000) stderr = stderr.slice(-32_000)
    })
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      child.kill("SIGKILL")
    }, limitMs)
    child.on("error", (e) => {
      stderr += String(e)
    })
    child.on("close", (code, signal) => {
      clearTimeout(timer)
      children.delete(child)
      res({ code: code ?? (signal ? 128 : 1), signal, stdout, stderr, timedOut, ms: Date.now() - started })
    })
  })

const npm = process.platform === "win32" ? "npm.cmd" : "npm"

// ---------------------------------------------------------------------------------------------------------------
// Preparation: bench packages, the library build

const skipped = new Map() // client -> reason
const notes = []

const needBenchDeps = clients.some((c) => CLIENTS[c].benchDeps)
if (needBenchDeps && !existsSync(join(BENCH, "node_modules"))) {
  if (noInstall) {
    for (const c of clients) if (CLIENTS[c].benchDeps) skipped.set(c, "bench/node_modules missing (--no-install)")
  } else {
    log("bench/node_modules is missing: npm ci --prefix bench")
    const r = await run(npm, ["ci", "--prefix", BENCH, "--no-audit", "--no-fund"], {
      cwd: ROOT,
      limitMs: 600_000,
      inheritOutput: true
    })
    if (r.code !== 0) {
      const why = r.timedOut ? "npm ci --prefix bench timed out" : `npm ci --prefix bench exited ${r.code}`
      notes.push(why)
      for (const c of clients) if (CLIENTS[c].benchDeps) skipped.set(c, why)
    }
  }
}

const oursRequested = clients.filter((c) => CLIENTS[c].ours && !skipped.has(c))
if (oursRequested.length > 0) {
  if (!noBuild) {
    if (!existsSync(join(ROOT, "node_modules")) && !noInstall) {
      log("top-level node_modules is missing: npm ci")
      const r = await run(npm, ["ci", "--no-audit", "--no-fund"], { cwd: ROOT, limitMs: 600_000, inheritOutput: true })
      if (r.code !== 0) notes.push(`top-level npm ci exited ${r.code}${r.timedOut ? " (timed out)" : ""}`)
    }
    if (existsSync(join(ROOT, "src/index.ts"))) {
      log("building the library: npm run build")
      const r = await run(npm, ["run", "build"], { cwd: ROOT, limitMs: 300_000, inheritOutput: true })
      if (r.code !== 0) {
        notes.push(`npm run build exited ${r.code}${r.timedOut ? " (timed out)" : ""}; dist/ may be stale`)
      }
    } else {
      notes.push("src/index.ts does not exist yet: the library was not built")
    }
  }
  for (const c of oursRequested) {
    const need = CLIENTS[c].dist ?? (CLIENTS[c].variant.startsWith("undici")
      ? ["dist/src/index.js", "dist/src/node/index.js"]
      : ["dist/src/index.js"])
    const missing = need.filter((p) => !existsSync(join(ROOT, p)))
    if (missing.length > 0) skipped.set(c, `library not built: ${missing.join(", ")} missing`)
  }
}

// The -redis clients need a redis-server (started below, one for the run); without one they are skipped, the rest runs.
const redisMissing = clients.some((c) => CLIENTS[c].redis && !skipped.has(c)) ? redisServerMissing() : undefined
if (redisMissing !== undefined) { for (const c of clients) if (CLIENTS[c].redis) skipped.set(c, redisMissing) }

const active = clients.filter((c) => !skipped.has(c))
for (const [c, why] of skipped) log(`skipping ${c}: ${why}`)

// ---------------------------------------------------------------------------------------------------------------
// The upstream

const startUpstream = () =>
  new Promise((res, rej) => {
    const child = spawn(process.execPath, [join(BENCH, "upstream.mjs"), "--max-lifetime-ms", String(60 * 60 * 1000)], {
      cwd: BENCH,
      stdio: ["pipe", "pipe", "inherit"]
    })
    let out = ""
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      rej(new Error("upstream did not print its port within 15 s"))
    }, 15_000)
    child.stdout.on("data", (d) => {
      out += d
      const nl = out.indexOf("\n")
      if (nl >= 0) {
        clearTimeout(timer)
        try {
          const { port } = JSON.parse(out.slice(0, nl))
          res({ child, url: `http://127.0.0.1:${port}` })
        } catch (e) {
          child.kill("SIGKILL")
          rej(e)
        }
      }
    })
    child.on("exit", (code) => {
      clearTimeout(timer)
      rej(new Error(`upstream exited early (${code})`))
    })
  })

// ---------------------------------------------------------------------------------------------------------------
// Rounds

mkdirSync(resultsDir, { recursive: true })
const stamp = new Date().toISOString().replace(/[:.]/g, "-")
const jsonlPath = join(resultsDir, `${stamp}.jsonl`)
const runId = `${stamp}-${process.pid}`
const records = []

const versions = (() => {
  const v = {}
  const read = (dir, name) => {
    try {
      return JSON.parse(readFileSync(join(dir, "node_modules", name, "package.json"), "utf8")).version
    } catch {
      return undefined
    }
  }
  for (
    const p of [
      "openai",
      "ai",
      "@ai-sdk/openai",
      "@langchain/openai",
      "@langchain/core",
      "@effect/ai",
      "@effect/ai-openai",
      "undici"
    ]
  ) {
    const x = read(BENCH, p)
    if (x) v[p] = x
  }
  const e = read(ROOT, "effect")
  if (e) v.effect = e
  const pl = read(ROOT, "@effect/platform")
  if (pl) v["@effect/platform"] = pl
  return v
})()

const header = {
  kind: "run",
  runId,
  date: new Date().toISOString(),
  node: process.version,
  cpu: os.cpus()[0]?.model,
  cores: os.cpus().length,
  load1AtStart: os.loadavg()[0],
  sizes,
  rounds,
  memoryRounds,
  memoryParallel,
  clients: active,
  requested: clients,
  specs: SIZES[sizes],
  skipped: Object.fromEntries(skipped),
  workloads,
  versions,
  notes
}
appendFileSync(jsonlPath, JSON.stringify(header) + "\n")

let upstream
if (active.length > 0) {
  upstream = await startUpstream()
  log(`upstream at ${upstream.url}; results -> ${jsonlPath}`)
}
// One redis-server for the run, on loopback, no persistence; it stops with the runner, whatever ends it (see
// lib/redis-server.mjs). Each client process keeps its keys under a prefix of its own.
let redis
if (active.some((c) => CLIENTS[c].redis)) {
  try {
    redis = await startRedisServer()
    log(`redis-server at ${redis.url}`)
  } catch (e) {
    cleanup()
    fail(`could not start redis-server: ${e instanceof Error ? e.message : String(e)}`)
  }
}

const runClientProcess = async (client, workload, round) => {
  const def = CLIENTS[client]
  const spec = SIZES[sizes][workload]
  const limitMs = Math.round(LIMITS[sizes][workload] * timeoutScale)
  const argv = [
    "--expose-gc",
    join(BENCH, "clients", def.file),
    "--name",
    client,
    "--url",
    upstream.url,
    "--workload",
    workload,
    "--spec",
    JSON.stringify(spec),
    "--timeout-ms",
    String(limitMs - 2_000),
    "--round",
    String(round)
  ]
  if (def.variant) argv.push("--variant", def.variant)
  if (def.redis) argv.push("--redis-url", redis.url)
  const load1 = os.loadavg()[0]
  const r = await run(process.execPath, argv, { cwd: BENCH, limitMs })
  const line = r.stdout.split("\n").reverse().find((l) => l.startsWith("{\"bench\":1"))
  let rec
  if (r.timedOut) rec = { ok: false, error: `killed after its time limit of ${limitMs} ms` }
  else if (line === undefined) {
    rec = { ok: false, error: `no result line (exit ${r.code}); stderr: ${r.stderr.slice(-1500)}` }
  } else {
    try {
      rec = JSON.parse(line)
    } catch (e) {
      rec = { ok: false, error: `unparsable result line: ${String(e)}` }
    }
  }
  const full = {
    kind: "result",
    runId,
    round,
    sizes,
    ...rec,
    client,
    workload,
    exitCode: r.code,
    wallMs: r.ms,
    load1
  }
  records.push(full)
  appendFileSync(jsonlPath, JSON.stringify(full) + "\n")
  const brief = full.ok
    ? Object.entries(full.figures).map(([k, v]) => `${k}=${fmt(v)}`).join(" ")
    : `ERROR ${full.error}`
  log(`round ${round} ${workload} ${client} (${(r.ms / 1000).toFixed(1)}s): ${brief}`)
  return full
}

function cleanup() {
  if (upstream) {
    upstream.child.stdin.end()
    upstream.child.kill("SIGTERM")
  }
  // Its shell kills the server once its stdin closes (also when this process dies without getting here).
  if (redis) void redis.stop()
}
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    for (const c of children) c.kill("SIGKILL")
    cleanup()
    process.exit(130)
  })
}

try {
  if (active.length > 0) {
    for (let round = 1; round <= rounds; round++) {
      const k = (round - 1) % active.length
      const order = [...active.slice(k), ...active.slice(0, k)]
      log(`round ${round}/${rounds}: ${order.join(", ")}`)
      for (const w of workloads) {
        if (w === "memory") {
          if (round > memoryRounds) continue
          // RSS only, no timings: run several client processes at once (each is CPU-bound on one core), slowest
          // first (by this run's throughput figures) so that the parallel lanes end together.
          const speed = (c) => {
            const t = records.find((r) => r.client === c && r.workload === "throughput" && r.ok)
            return t ? t.figures.tput_calls_per_s : 0
          }
          const queue = [...order].sort((x, y) => speed(x) - speed(y))
          await Promise.all(Array.from({ length: Math.min(memoryParallel, queue.length) }, async () => {
            while (queue.length > 0) await runClientProcess(queue.shift(), w, round)
          }))
          continue
        }
        for (const c of order) {
          // The outage workloads need deployment health, slow-tail hedged requests: the peers have neither (their
          // figure would be "health off" / "no hedging"), nor are the opt-in variants run there.
          if (OURS_ONLY_WORKLOADS.includes(w) && !CLIENTS[c].outage) continue
          await runClientProcess(c, w, round)
        }
      }
    }
  }
} finally {
  cleanup()
}

// ---------------------------------------------------------------------------------------------------------------
// Summary

function fmt(x) {
  if (typeof x !== "number" || !Number.isFinite(x)) return "–"
  const a = Math.abs(x)
  if (a >= 10_000) return Math.round(x).toLocaleString("en-US")
  if (a >= 100) return x.toFixed(0)
  if (a >= 10) return x.toFixed(1)
  if (a >= 1) return x.toFixed(2)
  return x.toPrecision(2)
}
function med(xs) {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

const { text, summary, errors, redisTarget } = render(header, records, (Date.now() - t0) / 1000)
writeFileSync(join(resultsDir, "latest.md"), text)
appendFileSync(
  jsonlPath,
  JSON.stringify({ kind: "summary", runId, elapsedS: (Date.now() - t0) / 1000, summary, redisTarget }) + "\n"
)
process.stdout.write(text + "\n")
log(`done: ${jsonlPath} and ${join(resultsDir, "latest.md")}`)
process.exit(errors.length > 0 ? 1 : 0)

/** The Markdown summary of a run: `h` is its "run" header record, `records` its "result" records. */
function render(h, records, elapsedS) {
  const summary = {}
  for (const w of h.workloads) {
    summary[w] = {}
    for (const c of h.requested) {
      const recs = records.filter((r) => r.workload === w && r.client === c)
      const figs = {}
      for (const [key] of figuresOf(w, h.specs[w])) {
        const vals = recs.filter((r) => r.ok && typeof r.figures?.[key] === "number").map((r) => r.figures[key])
        if (vals.length > 0) {
          figs[key] = { median: med(vals), min: Math.min(...vals), max: Math.max(...vals), n: vals.length }
        }
      }
      summary[w][c] = { figures: figs, errors: recs.filter((r) => !r.ok).map((r) => `round ${r.round}: ${r.error}`) }
    }
  }
  for (const w of h.workloads) {
    for (const c of h.requested) {
      for (const [key, , , compare] of figuresOf(w, h.specs[w])) {
        const f = summary[w][c].figures[key]
        const base = summary[w]["raw-fetch"]?.figures[key]
        if (!f || !base) continue
        if (compare === "none") continue
        if (compare === "diff") f.diffToRawFetch = f.median - base.median
        else if (base.median > 0) f.ratioToRawFetch = f.median / base.median
      }
    }
  }

  const md = []
  md.push(`# Benchmark: effect-llm-router vs peers`)
  md.push("")
  md.push(
    `Run ${h.date} · Node ${h.node} · ${h.cores} × ${h.cpu} · sizes \`${h.sizes}\` · ${h.rounds} round(s)` +
      (h.workloads.includes("memory") ? ` (memory workload: ${Math.min(h.rounds, h.memoryRounds)})` : "") +
      (elapsedS !== undefined ? ` · ${elapsedS.toFixed(0)} s in all` : "")
  )
  md.push("")
  md.push(
    "Each cell: median [min–max] over rounds, then ×ratio to raw-fetch's median (for growths: the difference). " +
      "↓ lower is better, ↑ higher is better. " +
      "Loopback upstream in its own process; every client process verified its text and chunk counts."
  )
  md.push("")
  const loads = records.map((r) => r.load1).filter((x) => typeof x === "number")
  if (loads.length > 0) {
    md.push(
      `Machine load (1-min load average at each client start): median ${med(loads).toFixed(2)}, max ${
        Math.max(...loads).toFixed(2)
      } on ${h.cores} cores — above ~1.5 other processes were competing and the ranges widen.`
    )
    md.push("")
  }
  md.push(`Versions: ${Object.entries(h.versions).map(([k, v]) => `${k} ${v}`).join(", ")}`)
  md.push("")
  md.push("Clients: " + h.requested.map((c) => `\`${c}\` ${CLIENTS[c].about}`).join("; "))
  md.push("")
  if (Object.keys(h.skipped).length > 0) {
    md.push(`Skipped: ${Object.entries(h.skipped).map(([c, why]) => `${c} (${why})`).join("; ")}`)
    md.push("")
  }
  for (const n of h.notes) {
    md.push(`Note: ${n}`)
    md.push("")
  }
  for (const w of h.workloads) {
    md.push(`## ${w}: ${TITLES[w](h.specs[w])}`)
    md.push("")
    if (OUTAGE_WORKLOADS.includes(w)) {
      md.push(...outageTable(h, w, summary[w]))
      continue
    }
    if (w === "slow-tail") {
      md.push(...slowTailTable(h, w, summary[w], records))
      continue
    }
    const cols = FIGURES[w]
    md.push(`| client | ${cols.map(([, label, dir]) => (dir ? `${label} ${dir}` : label)).join(" | ")} |`)
    md.push(`|---|${cols.map(() => "---:").join("|")}|`)
    for (const c of h.requested) {
      const s = summary[w][c]
      const cells = cols.map(([key]) => {
        const f = s.figures[key]
        if (!f) return c in h.skipped ? "skipped" : s.errors.length > 0 ? "ERROR" : "–"
        const range = f.n > 1 ? ` [${fmt(f.min)}–${fmt(f.max)}]` : ""
        const ratio = f.ratioToRawFetch !== undefined
          ? ` ×${f.ratioToRawFetch.toFixed(2)}`
          : f.diffToRawFetch !== undefined && c !== "raw-fetch"
          ? ` (${f.diffToRawFetch >= 0 ? "+" : ""}${fmt(f.diffToRawFetch)} vs raw)`
          : ""
        return `${fmt(f.median)}${range}${ratio}`
      })
      md.push(`| ${c} | ${cells.join(" | ")} |`)
    }
    md.push("")
  }
  const variants = variantCost(h, records)
  md.push(...variants.md)
  const errors = records.filter((r) => !r.ok)
  if (errors.length > 0) {
    md.push("## Errors")
    md.push("")
    for (const r of errors) {
      md.push(`- round ${r.round} ${r.workload} ${r.client}: ${String(r.error).replace(/\n/g, " ")}`)
    }
    md.push("")
  }
  return { text: md.join("\n"), summary, errors, redisTarget: variants.verdicts }
}

/** A cell: median [min–max] over rounds. */
function cell(f, digits) {
  if (!f) return "–"
  const v = (x) => (digits !== undefined ? x.toFixed(digits) : fmt(x))
  return f.n > 1 && f.min !== f.max ? `${v(f.median)} [${v(f.min)}–${v(f.max)}]` : v(f.median)
}

/** The outage workloads' tables: one row per client and configuration, columns per concurrency. */
function outageTable(h, w, sw) {
  const spec = h.specs[w]
  const cs = spec.concurrencies
  const md = []
  const rows = h.requested.filter((c) => CLIENTS[c]?.outage)
  if (rows.length === 0) {
    md.push("(no client with deployment health was run)", "")
    return md
  }
  md.push(
    "Per-call ms of the measured calls (median [min–max] over rounds), × the baseline's figure in the same round's " +
      "process, and the requests that reached the dead deployment during the measured calls. Peers have no deployment " +
      "health: their figures would be those of \"health off\"."
  )
  md.push("")
  md.push(
    `| client | configuration | ${
      cs.map((c) => `c=${c} p50 ms | c=${c} p99 ms | c=${c} p50 ×base | c=${c} p99 ×base | c=${c} dead reqs`).join(
        " | "
      )
    } |`
  )
  md.push(`|---|---|${cs.map(() => "---:|---:|---:|---:|---:").join("|")}|`)
  for (const c of rows) {
    const s = sw[c]
    if (s.errors.length > 0 && Object.keys(s.figures).length === 0) {
      md.push(`| ${c} | ERROR |${cs.map(() => " | | | | ").join("|")}|`)
      continue
    }
    for (const [k, label] of OUTAGE_CONFIGS) {
      const cells = cs.flatMap((n) => {
        const p = `${k}_c${n}`
        const F = s.figures
        return [
          cell(F[`${p}_p50_ms`]),
          cell(F[`${p}_p99_ms`]),
          k === "base" ? "1" : cell(F[`${p}_p50_x`], 2),
          k === "base" ? "1" : cell(F[`${p}_p99_x`], 2),
          cell(F[`${p}_dead`], 0)
        ]
      })
      md.push(`| ${c} | ${label} | ${cells.join(" | ")} |`)
    }
  }
  md.push("")
  md.push(
    "Calls measured and failed (a failed call is the router's error, e.g. the healthy model's attempt timing out on " +
      "a loaded machine; its time is in the figures above). The trips (health on): requests that reached the dead " +
      "deployment before its breaker opened, and from the trip to the end of the measured calls against the cooldown " +
      "expiries in that time (each lets one probe through; cooldowns grow ×2 per trip)."
  )
  md.push("")
  md.push(
    "| client | configuration | concurrency | calls | failed | dead reqs before the trip | after the trip | cooldown expiries |"
  )
  md.push("|---|---|---:|---:|---:|---:|---:|---:|")
  for (const c of rows) {
    for (const [k, label] of OUTAGE_CONFIGS) {
      for (const n of cs) {
        const p = `${k}_c${n}`
        const F = sw[c].figures
        const trip = k === "on" || k === "short"
        md.push(
          `| ${c} | ${label} | ${n} | ${cell(F[`${p}_calls`], 0)} | ${cell(F[`${p}_failed`], 0)} | ${
            trip ? cell(F[`${p}_tripdead`], 0) : ""
          } | ${trip ? cell(F[`${p}_afterdead`], 0) : ""} | ${trip ? cell(F[`${p}_reopenings`], 0) : ""} |`
        )
      }
    }
  }
  const open = rows.map((c) => sw[c].figures.hang_open_at_end?.max).filter((x) => x !== undefined)
  if (open.length > 0) {
    md.push("")
    md.push(`Requests still open at the upstream at the end of each process (at most): ${Math.max(...open)}.`)
  }
  md.push("")
  return md
}

/**
 * The slow-tail table: one row per client, shape and hedging configuration; per concurrency p50, p99, p99 / p50, the
 * extra requests, the calls that sent a hedge and those a hedge served (median [min–max] over rounds); then the issue's
 * target (p99 ≤ 2× p50 with ≤ 10 % extra requests) per configuration, judged in each round's process.
 */
function slowTailTable(h, w, sw, records) {
  const spec = h.specs[w]
  const cs = spec.concurrencies
  const md = []
  const rows = h.requested.filter((c) => CLIENTS[c]?.outage)
  if (rows.length === 0) {
    md.push("(no client with hedged requests was run)", "")
    return md
  }
  const pct = (
    f
  ) => (f === undefined ? "–" : cell({ ...f, median: f.median * 100, min: f.min * 100, max: f.max * 100 }, 1))
  md.push(
    "Per-call ms of the measured calls and p99 / p50 (median [min–max] over rounds); extra requests = requests the " +
      "upstream received for the configuration's two model names during the measured calls / calls − 1; hedged: calls " +
      "that sent a hedge; won: calls a hedge served. Shapes: `group` = `Model.group` of the two deployments (weighted), " +
      "`list` = a two-model list (the hedge goes to the second). Target (issue 12): p99 ≤ " +
      `${SLOW_TAIL_TARGET_X}× p50 with ≤ ${SLOW_TAIL_EXTRA * 100} % extra requests, judged in each round's process: ` +
      "the rounds where it was met / the rounds."
  )
  md.push("")
  md.push(
    `| client | shape | configuration | ${
      cs.map((c) =>
        `c=${c} p50 ms | c=${c} p99 ms | c=${c} p99/p50 | c=${c} extra % | c=${c} hedged % | c=${c} won % | c=${c} target`
      )
        .join(" | ")
    } |`
  )
  md.push(`|---|---|---|${cs.map(() => "---:|---:|---:|---:|---:|---:|---:").join("|")}|`)
  for (const c of rows) {
    const F = sw[c].figures
    const recs = records.filter((r) => r.ok && r.workload === w && r.client === c)
    const target = (p) => {
      const met = recs.filter((r) =>
        r.figures[`${p}_p99_over_p50`] <= SLOW_TAIL_TARGET_X && r.figures[`${p}_extra`] <= SLOW_TAIL_EXTRA
      ).length
      return met > 0 ? `**${met}/${recs.length}**` : `0/${recs.length}`
    }
    if (sw[c].errors.length > 0 && Object.keys(F).length === 0) {
      md.push(`| ${c} | ERROR | |${
        cs.map(() => " | | | | | | ").join("|")
      }|`)
      continue
    }
    for (const shape of spec.shapes) {
      for (const [config, hc] of Object.entries(spec.hedges)) {
        const cells = cs.flatMap((n) => {
          const p = `${shape}_${config}_c${n}`
          return [
            cell(F[`${p}_p50_ms`]),
            cell(F[`${p}_p99_ms`]),
            cell(F[`${p}_p99_over_p50`], 2),
            pct(F[`${p}_extra`]),
            pct(F[`${p}_hedged`]),
            pct(F[`${p}_hedge_won`]),
            target(p)
          ]
        })
        md.push(`| ${c} | ${shape} | ${hedgeLabel(hc)} | ${cells.join(" | ")} |`)
      }
    }
  }
  md.push("")
  return md
}

/** median [min–max] of a list of numbers, as the summary's cells take it. */
function stat(xs) {
  return { median: med(xs), min: Math.min(...xs), max: Math.max(...xs), n: xs.length }
}

/**
 * What each opt-in variant's feature costs on the healthy path: the variant against its base client (`CLIENTS[v].base`,
 * run in the same rounds, in rotated order), per round the figure with the feature / without it and with − without,
 * median [min–max] over rounds. For the Redis store also the server's CPU per call (its work happens outside the
 * client process) and the issue's target, added latency per call at concurrency 1 ≤ REDIS_TARGET_MS, met or not.
 * Returns { md, verdicts } (the verdicts also go to the run's summary record).
 */
function variantCost(h, records) {
  const variants = h.requested.filter((c) => CLIENTS[c]?.base !== undefined && h.requested.includes(CLIENTS[c].base))
  const md = []
  const verdicts = {}
  if (variants.length === 0) return { md, verdicts }
  const get = (client, w) => records.filter((r) => r.ok && r.workload === w && r.client === client)
  /** Per round in which both ran: [with, without] of `pick(record)`, a number or undefined. */
  const pairsOf = (v, w, pickWith, pickWithout = pickWith) => {
    const { base, adds } = CLIENTS[v]
    const out = []
    for (const r of get(v, w)) {
      const b = get(base, w).find((x) => x.round === r.round)
      if (b === undefined) continue
      const [withR, withoutR] = adds ? [r, b] : [b, r]
      const x = pickWith(withR)
      const y = pickWithout(withoutR)
      if (typeof x === "number" && typeof y === "number") out.push([x, y])
    }
    return out
  }
  const row = (v, w, label, pairs) => {
    const { base, feature, adds } = CLIENTS[v]
    const ratios = pairs.filter(([, y]) => y !== 0).map(([x, y]) => x / y)
    const diffs = pairs.map(([x, y]) => x - y)
    const signed = (f) => (f.median >= 0 ? "+" : "") + cell(f)
    return `| ${feature} | ${adds ? `${v} vs ${base}` : `${base} vs ${v}`} | ${w} | ${label} | ${
      cell(stat(pairs.map(([x]) => x)))
    } | ${cell(stat(pairs.map(([, y]) => y)))} | ${ratios.length > 0 ? cell(stat(ratios), 3) : "–"} | ${
      signed(stat(diffs))
    } |`
  }
  md.push("## Opt-in variants against their base client (healthy path)")
  md.push("")
  md.push(
    "Each opt-in variant against its base client, run in the same rounds: the figure with the feature and without it, " +
      "per round with / without and with − without; median [min–max] over the rounds where both ran (↓ or ↑ as in " +
      "the workload's table). For the Redis store, `redis-server CPU µs/call` is the server's own CPU (INFO cpu, " +
      "read around the measured calls): work that happens outside the client process, added to the client's in the " +
      "row below it."
  )
  md.push("")
  md.push("| feature | with vs without | workload | figure | with | without | with / without | with − without |")
  md.push("|---|---|---|---|---:|---:|---:|---:|")
  for (const v of variants) {
    for (const w of h.workloads) {
      if (OURS_ONLY_WORKLOADS.includes(w) || w === "failover") continue
      for (const [key, label, dir] of FIGURES[w]) {
        const pairs = pairsOf(v, w, (r) => r.figures?.[key])
        if (pairs.length > 0) md.push(row(v, w, `${label} ${dir}`, pairs))
      }
      if (w === "throughput" && CLIENTS[v].redis) {
        const server = pairsOf(v, w, (r) => r.figures?.redis_cpu_us_per_call, () => 0)
        if (server.length > 0) md.push(row(v, w, "redis-server CPU µs/call", server))
        const both = pairsOf(
          v,
          w,
          (r) => r.figures?.cpu_us_per_call + r.figures?.redis_cpu_us_per_call,
          (r) => r.figures?.cpu_us_per_call
        )
        if (both.length > 0) md.push(row(v, w, "client + redis-server CPU µs/call ↓", both))
      }
    }
  }
  md.push("")
  for (const v of variants.filter((c) => CLIENTS[c].group)) {
    const cpu = pairsOf(v, "throughput", (r) => r.figures?.cpu_us_per_call).filter(([, y]) => y > 0).map(([x, y]) =>
      x / y
    )
    if (cpu.length === 0) continue
    const x = stat(cpu)
    const met = x.median <= GROUP_TARGET_X
    verdicts[v] = { targetX: GROUP_TARGET_X, cpuX: x, met }
    md.push(
      `**${CLIENTS[v].feature}, client CPU per call at c=32 against one deployment (${v} / ${
        CLIENTS[v].base
      }, throughput workload, per round): ×${x.median.toFixed(3)} [${x.min.toFixed(3)}–${
        x.max.toFixed(3)
      }] over ${x.n} round(s). Target ≤ ×${GROUP_TARGET_X}: ${
        met ? (x.max <= GROUP_TARGET_X ? "met, in every round" : "met at the median, not in every round") : "NOT met"
      }.**`
    )
    md.push("")
  }
  for (const v of variants.filter((c) => CLIENTS[c].redis)) {
    const scripts = records.filter((r) =>
      r.ok && r.client === v && typeof r.figures?.redis_scripts_per_call === "number"
    )
    if (scripts.length > 0) {
      const byW = h.workloads.map((w) => [w, scripts.filter((r) => r.workload === w)]).filter(([, rs]) => rs.length > 0)
      md.push(
        `${v}: Redis scripts per call (admission "redis": admit and report, one attempt each; "local": the flushes and re-reads): ${
          byW.map(([w, rs]) => `${w} ${cell(stat(rs.map((r) => r.figures.redis_scripts_per_call)))}`).join(", ")
        }.`
      )
      md.push("")
    }
    const mean = pairsOf(v, "latency", (r) => r.figures?.lat_mean_ms).map(([x, y]) => x - y)
    const p50 = pairsOf(v, "latency", (r) => r.figures?.lat_p50_ms).map(([x, y]) => x - y)
    if (mean.length === 0) {
      md.push(
        `**${v}: the issue's target (≤ ${REDIS_TARGET_MS} ms added per call at c=1) was not measured**: ` +
          "it needs the latency workload with both clients."
      )
      md.push("")
      continue
    }
    const m = stat(mean)
    const met = m.median <= REDIS_TARGET_MS
    const every = m.max <= REDIS_TARGET_MS
    verdicts[v] = { targetMs: REDIS_TARGET_MS, addedMeanMs: m, addedP50Ms: p50.length > 0 ? stat(p50) : undefined, met }
    const ms = (x) => `${x >= 0 ? "+" : ""}${x.toFixed(3)} ms`
    md.push(
      `**Redis store, added latency per call at c=1 (${v} − ${CLIENTS[v].base}, latency workload, per round): mean ${
        ms(m.median)
      } [${ms(m.min)} … ${ms(m.max)}]${
        p50.length > 0 ? `, p50 ${ms(stat(p50).median)}` : ""
      } over ${m.n} round(s). Target ≤ ${REDIS_TARGET_MS} ms: ${
        met ? (every ? "met, in every round" : "met at the median, not in every round") : "NOT met"
      }.**`
    )
    md.push("")
  }
  return { md, verdicts }
}
