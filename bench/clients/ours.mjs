// effect-llm-router (this repository), built to dist/ by `npm run build`. Two variants:
//   --variant fetch    Layer.provide(RouterLive, FetchHttpClient.layer)          (client name "ours-fetch")
//   --variant undici   Layer.provide(RouterLive, NodeRouterHttpClient.layerUndici) (client name "ours-undici")
//   --variant fetchr   Layer.provide(RouterLive, FetchRouterHttpClient.layer)    (client name "ours-fetchr": our own
//                      layer on globalThis.fetch, from the main entry)
// and opt-in variants of each, `--variant <http>-<flag>` (client "ours-<http>-<flag>"), to measure what a feature costs
// on the healthy path against the plain client in the same run (latency, throughput, …):
//   -nohealth  the same router built with `health: false` (the cost of deployment health)
//   -redis     the same router with `RedisHealthStore.layer({ url, prefix })` in context: the health table on the
//              redis-server the runner started (`--redis-url`), keys under a prefix of this process's own, as it
//              comes (admission "local": a healthy call is admitted on the process's copy, its success written with
//              others every second). `counters()` reads the server's CPU and script calls (INFO, on a connection of
//              its own), and `close()` fails the run if the store fell back to memory (fail open) at any time: it
//              would otherwise be measured as Redis.
//   -redisrt   the same with admission "redis": every admission and report a script (two round trips per call);
//              `close()` also checks that two scripts ran per call.
//   -limits    the same router whose models declare limits that never bind (maxConcurrent 100 000, 10⁹ requests and
//              10¹⁰ tokens per minute): the cost of the accounting (token estimate, buckets, a stream holding its slot)
//   -anthropic, -gemini  the same router on that native protocol (Anthropic Messages, Gemini) instead of the
//              OpenAI-compatible one (clients "ours-anthropic-undici", …: beside the provider's SDK)
//   -group4    the same router whose first entry is a group of 4 deployments (`Model.group`, the default `weighted`
//              strategy; -group4rr round-robin, -group4lif least-in-flight, -group4lat lowest-latency): 4 model names
//              on the same upstream, instead of model m alone; close() fails the run unless each got requests
//
// The slow-tail workload (ours-fetch / ours-undici only) builds a router per hedging configuration over two slow-tail
// deployments (a group of two, or a two-model list): `tail({ shape, config })`, see lib/harness.mjs.
//
// effect and @effect/platform are imported from the TOP-LEVEL node_modules (the copy dist/ resolves), not from
// bench/node_modules, so that the library and this client share one effect instance (Context tags, Stream, …).
// This client needs no bench/node_modules at all. The runner skips it when dist/src/index.js is missing.
//
// One ManagedRuntime per process, built once and reused for every call. The failover workload builds its runtime
// with a two-model list whose first model (`fail-first`) gets a 503 from the upstream, no retry of that model and
// zero backoff, so the figure is the router's own cost to move to the next model.
import { existsSync } from "node:fs"
import { resolve } from "node:path"
import { pathToFileURL } from "node:url"
import { promptFor } from "../lib/expected.mjs"
import { runClient } from "../lib/harness.mjs"
import { importTopLevel, REPO_ROOT } from "../lib/top-level.mjs"

const DIST_MAIN = resolve(REPO_ROOT, "dist/src/index.js")
const DIST_NODE = resolve(REPO_ROOT, "dist/src/node/index.js")
const DIST_REDIS = resolve(REPO_ROOT, "dist/src/redis/index.js")
const FLAGS = [
  "nohealth",
  "redis",
  "redisrt",
  "limits",
  "anthropic",
  "gemini",
  "group4",
  "group4rr",
  "group4lif",
  "group4lat"
]
/** The -group4* variants' strategies. */
const GROUP_STRATEGIES = {
  group4: "weighted",
  group4rr: "round-robin",
  group4lif: "least-in-flight",
  group4lat: "lowest-latency"
}
/** Limits no workload comes near: what is measured is their accounting, never a skip. */
const UNBINDING_LIMITS = { maxConcurrent: 100_000, requestsPerMinute: 1e9, tokensPerMinute: 1e10 }

runClient("ours", async ({ url, variant: variantArg = "fetch", workload, spec, args }) => {
  const [variant, flag, more] = variantArg.split("-")
  if ((flag !== undefined && !FLAGS.includes(flag)) || more !== undefined) {
    throw new Error(`unknown variant ${variantArg} (<fetch|undici|fetchr|nodehttp>[-${FLAGS.join("|")}])`)
  }
  const health = flag === "nohealth" ? false : undefined
  const protocol = flag === "anthropic" || flag === "gemini" ? flag : "openai"
  if (!existsSync(DIST_MAIN)) {
    throw new Error(`library not built: ${DIST_MAIN} is missing (run \`npm run build\` at the top level)`)
  }
  // Effect's modules one by one, as the library itself imports them: `effect`'s index loads every module (about
  // 40 MB of RSS here), a cost of how a program imports Effect, not of the router.
  const [Effect, Layer, ManagedRuntime, Redacted, Stream] = await Promise.all(
    ["./Effect", "./Layer", "./ManagedRuntime", "./Redacted", "./Stream"].map((m) => importTopLevel("effect", m))
  )
  const { Anthropic, Gemini, Router, Model, OpenAiCompatible } = await import(pathToFileURL(DIST_MAIN).href)

  let HttpLive
  if (variant === "fetch") {
    // The module, not `@effect/platform`'s index: the index loads every platform module (HttpApi, MsgPack, …),
    // about 40 MB of RSS that neither variant uses; the undici variant does not load the platform's index at all.
    const FetchHttpClient = await importTopLevel("@effect/platform", "./FetchHttpClient")
    HttpLive = FetchHttpClient.layer
  } else if (variant === "undici") {
    const { NodeRouterHttpClient } = await import(pathToFileURL(DIST_NODE).href)
    HttpLive = NodeRouterHttpClient.layerUndici
  } else if (variant === "fetchr") {
    const { FetchRouterHttpClient } = await import(pathToFileURL(DIST_MAIN).href)
    HttpLive = FetchRouterHttpClient.layer
  } else if (variant === "nodehttp") {
    const { RouterHttpClient } = await import(pathToFileURL(DIST_MAIN).href)
    HttpLive = RouterHttpClient.layer
  } else {
    throw new Error(`unknown variant ${variant} (fetch | undici | fetchr | nodehttp)`)
  }

  const apiKey = Redacted.make("sk-bench")
  const endpoint = protocol === "anthropic"
    ? Anthropic.endpoint({ baseUrl: url, apiKey })
    : protocol === "gemini"
    ? Gemini.endpoint({ baseUrl: url, apiKey })
    : OpenAiCompatible.endpoint({ baseUrl: `${url}/v1`, apiKey })
  const hi = { messages: [{ role: "user", content: "hi" }] }

  if (workload === "outage-503" || workload === "outage-hang") {
    // One fresh runtime per configuration and concurrency (the harness builds a concurrency's four at once), so that
    // each starts with a closed breaker and trips it itself. The dead deployment is model `down` (503 on every
    // request) or `hang` (no answer until the attempt timeout aborts it); `m` answers. One attempt per model: with the
    // default policy (4 attempts, backoff) every call with health off would wait out the retries of the dead model.
    // An attempt timeout when the spec has `attemptMs` (outage-hang: 50 ms, on every router of the phase).
    if (flag !== undefined) throw new Error(`${workload}: measures health on and off itself; use ours-${variant}`)
    const dead = workload === "outage-503" ? "down" : "hang"
    const timeout = spec.attemptMs !== undefined ? { attempt: `${spec.attemptMs} millis` } : undefined
    const configs = {
      base: { models: ["m"], health: undefined },
      on: { models: [dead, "m"], health: {} },
      off: { models: [dead, "m"], health: false },
      short: { models: [dead, "m"], health: { cooldown: `${spec.shortCooldownMs} millis` } }
    }
    const { Router: RouterTag } = Router
    const healthEff = Effect.flatMap(RouterTag, (r) => r.health)
    const generateEff = Router.generate(hi).pipe(Effect.map((r) => r.text))
    const outage = async (config) => {
      const c = configs[config]
      if (c === undefined) throw new Error(`unknown outage configuration ${config}`)
      const rt = ManagedRuntime.make(Layer.provide(
        Router.layer({
          models: c.models.map((name) => Model.make({ name, endpoint })),
          retry: { maxAttempts: 1 },
          timeout,
          health: c.health
        }),
        HttpLive
      ))
      await rt.runPromise(Effect.void)
      return {
        generate: () => rt.runPromise(generateEff),
        /** The dead deployment's breaker state ("closed" | "open" | "half-open"), and its trips. */
        deadHealth: async () => {
          const ds = await rt.runPromise(healthEff)
          const d = ds.find((x) => x.model === dead)
          return d === undefined ? undefined : { state: d.state, trips: d.trips }
        },
        close: () => rt.dispose()
      }
    }
    return { dead, outage, generate: () => Promise.reject(new Error("outage workloads only")) }
  }

  if (workload === "slow-tail") {
    // One fresh router per (shape, hedging configuration), on model names of its own: `<prefix>-<shape>-<config>-a`
    // and `-b`, which the upstream answers after spec.baseMs, every spec.every-th request after spec.factor × that.
    if (flag !== undefined) throw new Error(`${workload}: ours-${variant} only`)
    const { tailPrefix } = await import("../lib/harness.mjs")
    const generateEff = Router.generate(hi).pipe(Effect.map((r) => {
      const winner = r.trail.find((t) => t.outcome === "success")
      return {
        text: r.text,
        hedged: r.trail.some((t) => (t.hedge ?? 0) > 0),
        hedgeWon: (winner?.hedge ?? 0) > 0
      }
    }))
    const tail = async ({ shape, config }) => {
      const h = spec.hedges[config]
      if (h === undefined) throw new Error(`unknown hedging configuration ${config}`)
      const names = ["a", "b"].map((x) => `${tailPrefix(spec)}-${shape}-${config}-${x}`)
      const deployments = names.map((name) => Model.make({ name, endpoint }))
      const hedge = h === null
        ? undefined
        : h.delayMs !== undefined
        ? { delay: `${h.delayMs} millis` }
        : { delay: { percentile: h.percentile, initial: `${h.initialMs} millis` } }
      const models = shape === "group" ? [Model.group({ deployments })] : shape === "list" ? deployments : undefined
      if (models === undefined) throw new Error(`unknown shape ${shape} (group | list)`)
      const rt = ManagedRuntime.make(Layer.provide(Router.layer({ models, hedge }), HttpLive))
      await rt.runPromise(Effect.void)
      return { generate: () => rt.runPromise(generateEff), models: names, close: () => rt.dispose() }
    }
    return { tail, generate: () => Promise.reject(new Error("slow-tail only")) }
  }

  // The -redis variant: the store on the runner's redis-server, and a connection of our own for its counters.
  let StoreLive = Layer.empty
  let redisInfo
  // Set when the store says it fell back to this process's memory (its one warning), which a figure must not hide.
  let fellBack
  if (flag === "redis" || flag === "redisrt") {
    const redisUrl = args["redis-url"]
    if (typeof redisUrl !== "string") throw new Error("variant redis needs --redis-url (the runner starts a server)")
    if (!existsSync(DIST_REDIS)) throw new Error(`library not built: ${DIST_REDIS} is missing`)
    const { RedisHealthStore } = await import(pathToFileURL(DIST_REDIS).href)
    const Logger = await importTopLevel("effect", "./Logger")
    const watch = Logger.add(Logger.make(({ message }) => {
      const text = Array.isArray(message) ? message.join(" ") : String(message)
      if (text.startsWith("Redis health store unavailable")) fellBack ??= text
    }))
    StoreLive = Layer.merge(
      RedisHealthStore.layer({
        url: redisUrl,
        prefix: `bench:${process.pid}:`,
        admission: flag === "redis" ? "local" : "redis"
      }),
      watch
    )
    const { default: Redis } = await importTopLevel("ioredis")
    redisInfo = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 })
    await redisInfo.connect()
  }
  const limits = flag === "limits" ? UNBINDING_LIMITS : undefined
  // -group4*: the first entry is a group of 4 deployments, each its own model name on the same upstream.
  const strategy = GROUP_STRATEGIES[flag]
  const groupNames = strategy === undefined ? [] : ["g1", "g2", "g3", "g4"]
  const modelCounts = async () => (await globalThis.fetch(`${url}/stats`).then((r) => r.json())).models ?? {}
  const countsAtStart = strategy === undefined ? undefined : await modelCounts()
  const first = strategy === undefined
    ? Model.make({ name: "m", endpoint, limits })
    : Model.group({ strategy, deployments: groupNames.map((name) => Model.make({ name, endpoint })) })
  const RouterLive = workload === "failover"
    ? Router.layer({
      models: [Model.make({ name: "fail-first", endpoint }), Model.make({ name: "m", endpoint })],
      // One attempt per model: the 503 moves straight on to the next model, no backoff.
      retry: { maxAttempts: 1 },
      // The failover itself is measured: with health on, the dead model would be skipped after its first failures
      // (what the outage workloads measure).
      health: false
    })
    : Router.layer({
      models: [first, Model.make({ name: "m2", endpoint, limits })],
      retry: { maxAttempts: 3 },
      health
    })
  const rt = ManagedRuntime.make(Layer.provide(RouterLive, Layer.merge(HttpLive, StoreLive)))
  await rt.runPromise(Effect.void)

  // Calls made through the store (health on; the failover workload runs with health off), for close()'s check.
  let calls = 0
  const generateEff = Router.generate(hi).pipe(Effect.map((r) => r.text))
  const generate = () => {
    calls++
    return rt.runPromise(generateEff)
  }

  const stream = (n) => {
    calls++
    return rt.runPromise(
      Router.stream({ messages: [{ role: "user", content: promptFor(n) }] }).pipe(
        Stream.runFold({ parts: [], chunks: 0 }, (acc, c) => {
          if (c._tag === "TextDelta" && c.text.length > 0) {
            acc.parts.push(c.text)
            acc.chunks++
          }
          return acc
        }),
        Effect.map((acc) => ({ text: acc.parts.join(""), chunks: acc.chunks }))
      )
    )
  }

  /** The server's CPU (µs, user + system) and the store's script calls so far. */
  const scriptCalls = (commandstats) =>
    [...commandstats.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0)
  const read = async () => {
    const cpu = await redisInfo.info("cpu")
    const field = (k) => Number(new RegExp(`^${k}:([0-9.]+)`, "m").exec(cpu)?.[1] ?? NaN)
    return {
      redis_cpu_us: (field("used_cpu_user") + field("used_cpu_sys")) * 1e6,
      redis_scripts: scriptCalls(await redisInfo.info("commandstats"))
    }
  }
  // Two scripts per attempt (admit, report), at least one attempt per call; fewer means the store served some calls
  // from memory (it fails open when Redis errs or is slower than its command timeout, e.g. a cold process on a loaded
  // machine), and the figure would not be Redis's. Checked over the measured phase (the harness reads `counters()`
  // just before and after it) or, for a workload that does not read them (memory), over the whole process.
  const checkScripts = (from, to, what) => {
    if (fellBack !== undefined) throw new Error(`the Redis store fell back to memory (fail open): ${fellBack}`)
    const scripts = to.scripts - from.scripts
    const n = to.calls - from.calls
    if (flag === "redisrt" && scripts < 2 * n) {
      throw new Error(
        `the Redis store ran ${scripts} scripts for ${n} calls ${what} (expected ≥ 2 per call): it fell back to ` +
          "this process's memory (fail open) for some of them"
      )
    }
  }
  const mark = async () => ({ calls, scripts: (await read()).redis_scripts })
  const start = redisInfo !== undefined ? await mark() : undefined
  let phase
  let phaseError
  const counters = async () => {
    const c = await read()
    const now = { calls, scripts: c.redis_scripts }
    if (phase === undefined) phase = now
    else {
      try {
        checkScripts(phase, now, "of the measured phase")
      } catch (e) {
        phaseError ??= e
      }
      phase = undefined
    }
    return c
  }

  const close = async () => {
    try {
      if (phaseError !== undefined) throw phaseError
      if (redisInfo !== undefined && workload === "memory") checkScripts(start, await mark(), "of the process")
      if (strategy !== undefined && workload !== "failover") {
        // Every deployment of the group served: the figure is a group's, not one model's.
        const now = await modelCounts()
        const idle = groupNames.filter((n) => !((now[n] ?? 0) > (countsAtStart[n] ?? 0)))
        if (idle.length > 0) throw new Error(`the group's deployments ${idle.join(", ")} got no request`)
      }
      if (flag === "limits" && workload !== "failover") {
        const ds = await rt.runPromise(Effect.flatMap(Router.Router, (r) => r.health))
        const m = ds.find((d) => d.model === "m")
        if (m?.limits?.maxConcurrent !== UNBINDING_LIMITS.maxConcurrent || m.remainingRequests === undefined) {
          throw new Error(`the router does not count model m's limits: ${JSON.stringify(m)}`)
        }
      }
    } finally {
      await rt.dispose()
      if (redisInfo !== undefined) redisInfo.disconnect()
    }
  }

  return { generate, stream, failover: generate, close, ...(redisInfo !== undefined ? { counters } : {}) }
})
