// What the Redis health store adds to a routed call (issue 11's target: at most 0.3 ms per call on loopback): the
// same router on the in-memory store and on `RedisHealthStore` (a redis-server this script starts on a free loopback
// port, stopped when it exits), interleaved in ONE process by bench/micro/lib.mjs, so that machine noise falls on both.
// The upstream is the test kit's FakeHttpClient (no sockets but Redis's), so the difference is the store's.
//
//   npm run build
//   node --expose-gc bench/micro/redis-store.mjs [--rounds 9] [--ms 800]
//
// One call at a time (c=1). With admission "local" (the default) a healthy call costs no round trip (its success is
// written with others every second); with admission "redis" each call is one admission and one report, two scripts. The store's
// command timeout is raised to 1 s here so that a loaded machine measures Redis rather than the fail-open path (which
// would make the Redis side look as fast as memory); the script checks that Redis ran two scripts per call.
import { pathToFileURL } from "node:url"
import { redisServerMissing, startRedisServer } from "../lib/redis-server.mjs"
import { importTopLevel, REPO_ROOT } from "../lib/top-level.mjs"
import { fmt, header, measure, report, spread } from "./lib.mjs"

const missing = redisServerMissing()
if (missing !== undefined) {
  console.error(`skipped: ${missing}`)
  process.exit(0)
}

const [Layer, ManagedRuntime, Redacted] = await Promise.all(
  ["./Layer", "./ManagedRuntime", "./Redacted"].map((m) => importTopLevel("effect", m))
)
const dist = (path) => import(pathToFileURL(`${REPO_ROOT}/dist/src/${path}`).href)
const { Model, OpenAiCompatible, Router } = await dist("index.js")
const { RedisHealthStore } = await dist("redis/index.js")
const { FakeHttpClient } = await dist("testing/index.js")
const { Redis } = await importTopLevel("ioredis", ".")

const server = await startRedisServer()
process.on("exit", () => server.stop())

const KEY = "sk-bench-redis-0123456789"
const endpoint = OpenAiCompatible.endpoint({ baseUrl: FakeHttpClient.openAiBaseUrl, apiKey: Redacted.make(KEY) })
const options = { models: [Model.make({ name: "m", endpoint }), Model.make({ name: "m2", endpoint })] }
const fake = FakeHttpClient.layer({ script: { m: [] }, apiKey: KEY })
const runtimeOf = (store) =>
  ManagedRuntime.make(Layer.provide(Router.layer(options), Layer.merge(fake, store ?? Layer.empty)))

const memory = runtimeOf(undefined)
// The store as it comes (admission "local": no round trip on the healthy path) and with every admission and report on
// Redis (admission "redis", two scripts per call).
const redis = runtimeOf(
  RedisHealthStore.layer({ url: server.url, prefix: "bench-local:", commandTimeout: "1 second" })
)
const redisEvery = runtimeOf(
  RedisHealthStore.layer({ url: server.url, prefix: "bench-every:", commandTimeout: "1 second", admission: "redis" })
)
const call = Router.generate({ messages: [{ role: "user", content: "hi" }] })
await memory.runPromise(call)
await redis.runPromise(call)
await redisEvery.runPromise(call)

const raw = new Redis(server.url)
const scripts = async () => {
  const info = await raw.info("commandstats")
  let n = 0
  for (const m of info.matchAll(/cmdstat_(evalsha|eval):calls=(\d+)/g)) n += Number(m[2])
  return n
}
// What the local store wrote to the failure-rate window: the successes of its calls, flushed every second. A store
// that fell back to memory (fail open) writes nothing there.
const flushed = async () => {
  const [key] = await raw.keys("bench-local:w:*")
  return key === undefined ? 0 : raw.llen(key)
}

header("Redis health store against the in-memory one, one routed call at a time (FakeHttpClient upstream)")
const results = await measure({
  memory: () => memory.runPromise(call),
  redis: () => redis.runPromise(call),
  "redis-every": () => redisEvery.runPromise(call)
})
console.log(report(results, { perUnit: "call" }))
// Scripts per call, measured on a last stretch of each alone.
const scriptsPer = async (runtime, n) => {
  const before = await scripts()
  for (let i = 0; i < n; i++) await runtime.runPromise(call)
  return ((await scripts()) - before) / n
}
const perCallLocal = await scriptsPer(redis, 3000)
const perCallEvery = await scriptsPer(redisEvery, 500)
const line = (name, side) => {
  const added = results[side].map((r, i) => (r.wallUs - results.memory[i].wallUs) / 1000)
  const addedCpu = results[side].map((r, i) => r.cpuUs - results.memory[i].cpuUs)
  const sorted = [...added].sort((a, b) => a - b)
  const median = sorted[sorted.length >> 1]
  console.log(
    `  ${name}: added per call ${spread(added, " ms")} wall, ${spread(addedCpu, " µs")} client CPU; target ≤ 0.3 ms ${
      sorted[sorted.length - 1] <= 0.3 ? "met in every round" : median <= 0.3 ? "met at the median" : "NOT met"
    }`
  )
}
console.log(
  `  Redis scripts per call: ${fmt(perCallLocal)} with admission "local", ${
    fmt(perCallEvery)
  } with "redis" (2 expected)`
)
line("admission \"local\" (the default)", "redis")
line("admission \"redis\"", "redis-every")
const windowEntries = await flushed()
console.log(`  entries the local store wrote to the failure-rate window: ${windowEntries}`)
raw.disconnect()
await memory.dispose()
await redis.dispose()
await redisEvery.dispose()
await server.stop()
if (!(perCallEvery >= 1.9) || !(windowEntries > 0) || !(perCallLocal > 0)) {
  console.error("a Redis store fell back to memory during the run: its figure is not Redis's")
  process.exit(1)
}
