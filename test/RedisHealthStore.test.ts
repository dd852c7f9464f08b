/**
 * The health table on a real redis-server (started by this file on a free loopback port, stopped when it ends): the
 * store's rules as in memory, at exact instants; two routers on two clients sharing one table; and failing open when
 * the server dies or freezes, then going back to it.
 */
import { FetchHttpClient } from "@effect/platform"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { Redis } from "ioredis"
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import type { Attempt } from "../src/Attempt.js"
import * as Health from "../src/Health.js"
import * as healthInternal from "../src/internal/health.js"
import * as Model from "../src/Model.js"
import * as OpenAiCompatible from "../src/OpenAiCompatible.js"
import { RedisHealthStore } from "../src/redis/index.js"
import * as RetryPolicy from "../src/RetryPolicy.js"
import * as Router from "../src/Router.js"
import type * as RouterError from "../src/RouterError.js"
import * as FakeHttpClient from "../src/testing/FakeHttpClient.js"
import * as SimulatedUpstream from "../src/testing/SimulatedUpstream.js"
import * as S from "../src/testing/UpstreamScript.js"
import { captureLogs } from "./support/logs.js"
import { freePort, redisServer } from "./support/redisServer.js"
import type { RedisServer } from "./support/redisServer.js"
import { failure, model, permitOf, policy, request, storeRules } from "./support/storeRules.js"

const KEY = "sk-redis-health-test-0123456789"
const endpoint = OpenAiCompatible.endpoint({ baseUrl: FakeHttpClient.openAiBaseUrl, apiKey: Redacted.make(KEY) })
const hi = { messages: [{ role: "user" as const, content: "hi" }] }
const fake = (script: S.Script) => FakeHttpClient.layer({ script, apiKey: KEY })
const models = (...names: ReadonlyArray<string>) => names.map((name) => Model.make({ name, endpoint }))
const outcomes = (trail: ReadonlyArray<Attempt>) => trail.map((a) => `${a.model}:${a.outcome}`)

// Without a redis-server, every test that needs one fails with the reason (none is skipped).
let running: RedisServer | undefined
let missing: unknown
beforeAll(async () => {
  try {
    running = await redisServer()
  } catch (error) {
    missing = error
  }
})
afterAll(async () => {
  await running?.stop()
})
const server = {
  get url(): string {
    if (running === undefined) throw missing ?? new Error("redis-server was not started")
    return running.url
  }
}

let prefixes = 0
const freshPrefix = () => `test-${process.pid}-${++prefixes}:`
const redisStore = (options: RedisHealthStore.Options = {}) =>
  Effect.orDie(
    RedisHealthStore.make({ url: server.url, prefix: freshPrefix(), commandTimeout: "1 second", ...options })
  )

// The store's rules (test/support/storeRules.ts, also run on memory by test/Health.test.ts) end by checking that the
// table is on the server, not in a fallback in memory.
const rawClient = Effect.acquireRelease(
  Effect.sync(() => new Redis(server.url, { lazyConnect: true })),
  (c) => Effect.sync(() => c.disconnect())
)

// Both ways of admitting: on the process's copy where it can (the default), and every admission on Redis.
for (const admission of ["local", "redis"] as const) {
  describe(`the store's rules on Redis (admission "${admission}")`, () =>
    storeRules(() =>
      Effect.gen(function*() {
        const prefix = freshPrefix()
        const store = yield* redisStore({ prefix, admission })
        const raw = yield* rawClient
        return { store, onServer: Effect.promise(() => raw.smembers(`${prefix}ids`)) }
      })
    ))
}

describe("two routers on one Redis", () => {
  it.scoped("router 2 (its own client) skips what router 1 tripped, and sends it nothing", () =>
    Effect.gen(function*() {
      const prefix = freshPrefix()
      const options = { url: server.url, prefix }
      const health: Health.Options = { consecutiveFailures: 1, failureRate: false, cooldown: "1 minute" }
      const build = (layer: Layer.Layer<Health.HealthStore, RouterError.RouterConfigError>) =>
        Effect.flatMap(
          Layer.build(layer),
          (context) =>
            Effect.provide(
              Router.make({ models: models("a", "b"), retry: RetryPolicy.none, health }),
              context
            )
        )
      const first = yield* build(RedisHealthStore.layer(options))
      const second = yield* build(RedisHealthStore.layer(options))
      expect(outcomes((yield* first.generate(hi)).trail)).toEqual(["a:fallback", "b:success"])
      const skipped = yield* second.generate(hi)
      expect(outcomes(skipped.trail)).toEqual(["a:skipped", "b:success"])
      expect(skipped.trail[0]!.note).toMatch(/^circuit open: 1 failure in a row, last ServiceUnavailable; reopens in/)
      const requests = yield* FakeHttpClient.requests
      expect(requests.map((r) => r.model)).toEqual(["a", "b", "b"])
      const [a] = yield* second.health
      expect(a).toMatchObject({ model: "a", state: "open", trips: 1 })
    }).pipe(Effect.provide(fake({ a: [S.unavailable()], b: [S.succeed()] }))))
})

describe("on Redis only", () => {
  it.scoped("two clients admitting at once at the reopening instant: exactly one probe between them", () =>
    Effect.gen(function*() {
      const prefix = freshPrefix()
      const one = yield* redisStore({ prefix })
      const two = yield* redisStore({ prefix })
      const p = policy({ consecutiveFailures: 1, cooldown: "1 second" })
      yield* request(one, p, 0, failure)
      const admissions = yield* Effect.forEach(
        Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? one : two)),
        (store) => store.admit(model!, p, 1000, 0),
        { concurrency: "unbounded" }
      )
      expect(admissions.filter((a) => a._tag === "Admitted")).toMatchObject([{ _tag: "Admitted", probe: true }])
      expect((yield* two.snapshot(1000))[0]).toMatchObject({ state: "half-open", probing: true, inFlight: 1 })
    }))

  it.scoped("a slot whose holder never reports (its process died) is freed when its lease ends", () =>
    Effect.gen(function*() {
      const store = yield* redisStore({ prefix: freshPrefix() })
      const p = policy()
      const limited = Model.make({ name: "limited", endpoint, limits: { maxConcurrent: 1 } })
      expect((yield* store.admit(limited, p, 0, 0))._tag).toBe("Admitted")
      const lease = healthInternal.slotLeaseMillis
      expect(yield* store.admit(limited, p, lease - 1, 0)).toMatchObject({ _tag: "Skipped", limit: "concurrency" })
      expect((yield* store.snapshot(lease - 1))[0]).toMatchObject({ inFlight: 1 })
      expect((yield* store.admit(limited, p, lease, 0))._tag).toBe("Admitted")
      expect((yield* store.snapshot(lease))[0]).toMatchObject({ inFlight: 1 })
    }))

  it.scoped("budgets: two stores share a budget's spending per period; its key expires an hour after the period", () =>
    Effect.gen(function*() {
      const prefix = freshPrefix()
      const one = yield* redisStore({ prefix })
      const two = yield* redisStore({ prefix })
      const hour = 3_600_000
      expect(yield* one.budgets!.charge("team", 10, hour, 0.25)).toBeCloseTo(0.25, 12)
      expect(yield* two.budgets!.charge("team", 20, hour, 0.5)).toBeCloseTo(0.75, 12)
      expect(yield* one.budgets!.spent("team", hour - 1, hour)).toBeCloseTo(0.75, 12)
      // The next period starts empty; another budget is another count.
      expect(yield* two.budgets!.spent("team", hour, hour)).toBe(0)
      expect(yield* two.budgets!.spent("other", 10, hour)).toBe(0)
      const raw = yield* rawClient
      const keys = yield* Effect.promise(() => raw.keys(`${prefix}b:*`))
      expect(keys).toEqual([`${prefix}b:team:${hour}:0`])
      // Kept until the period's end (the last charge at 20: 1 h − 20 ms left) and an hour more.
      const ttl = yield* Effect.promise(() => raw.pttl(keys[0]!))
      expect(ttl).toBeGreaterThan(2 * hour - 20 - 5_000)
      expect(ttl).toBeLessThanOrEqual(2 * hour - 10)
    }))

  it.scoped("keys are namespaced and expire: `expiry` after the last write, or later while a cooldown runs", () =>
    Effect.gen(function*() {
      const prefix = freshPrefix()
      const store = yield* redisStore({ prefix, expiry: "2 seconds" })
      const raw = yield* rawClient
      const p = policy({ consecutiveFailures: 1, fatalCooldown: "10 minutes" })
      const [closed, open] = models("closed", "open")
      // `closed` is admitted and never reported: its slot stays held until its lease ends.
      yield* store.admit(closed!, p, 0, 0)
      yield* request(store, p, 0, { _tag: "Failure", kind: "fatal", tag: "QuotaExhausted" }, open)
      const keys = (yield* Effect.promise(() => raw.keys(`${prefix}*`))).sort()
      expect(keys).toEqual([
        `${prefix}d:${Health.deploymentId(closed!)}`,
        `${prefix}d:${Health.deploymentId(open!)}`,
        `${prefix}ids`,
        `${prefix}l:${Health.deploymentId(closed!)}`
      ])
      const pttl = (key: string) => Effect.promise(() => raw.pttl(key))
      const closedTtl = yield* pttl(keys[0]!)
      expect(closedTtl).toBeGreaterThan(1000)
      expect(closedTtl).toBeLessThanOrEqual(2000)
      expect(yield* pttl(keys[1]!)).toBeGreaterThan(590_000)
      expect(yield* pttl(keys[2]!)).toBeGreaterThan(590_000)
      const slotTtl = yield* pttl(keys[3]!)
      expect(slotTtl).toBeGreaterThan(healthInternal.slotLeaseMillis - 10_000)
      expect(slotTtl).toBeLessThanOrEqual(healthInternal.slotLeaseMillis)
    }))
})

describe("admission \"local\": the process's copy, kept current by the store's messages", () => {
  const scriptCalls = (raw: Redis) =>
    Effect.promise(async () =>
      [...(await raw.info("commandstats")).matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+)/gm)].reduce(
        (n, m) => n + Number(m[1]),
        0
      )
    )
  const success: Health.Report = { _tag: "Success" }
  const windowOf = (raw: Redis, prefix: string) =>
    Effect.promise(() => raw.lrange(`${prefix}w:${Health.deploymentId(model!)}`, 0, -1))
  /** Real time, for a message to arrive (a few milliseconds on loopback). */
  const settle = Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 100)))

  it.live("healthy calls after the first send nothing to Redis; their successes are written before a snapshot", () =>
    Effect.gen(function*() {
      const prefix = freshPrefix()
      const store = yield* redisStore({ prefix, syncInterval: "1 minute" })
      const raw = yield* rawClient
      const p = policy({ failureRate: { threshold: 0.5, window: "1 minute", minRequests: 10 } })
      const before = yield* scriptCalls(raw)
      for (let i = 0; i < 10; i++) yield* request(store, p, i, success)
      // The first call read the record (admit and report); the other nine used the copy.
      expect((yield* scriptCalls(raw)) - before).toBe(2)
      expect(yield* windowOf(raw, prefix)).toHaveLength(1)
      const [snapshot] = yield* store.snapshot(10)
      expect(snapshot).toMatchObject({ state: "closed", inFlight: 0 })
      expect(yield* windowOf(raw, prefix)).toEqual(Array.from({ length: 10 }, (_, i) => `${i}:0`))
    }).pipe(Effect.scoped))

  it.live("a trip by another process reaches the copy at once: the deployment is skipped without asking Redis", () =>
    Effect.gen(function*() {
      const prefix = freshPrefix()
      const one = yield* redisStore({ prefix })
      const two = yield* redisStore({ prefix })
      const raw = yield* rawClient
      const p = policy({ consecutiveFailures: 1, cooldown: "1 minute" })
      yield* request(two, p, 0, success)
      expect(yield* request(one, p, 10, failure)).toMatchObject({ to: "open", reopensAt: 60_010 })
      yield* settle
      const before = yield* scriptCalls(raw)
      expect(yield* two.admit(model!, p, 20, 0)).toEqual({
        _tag: "Skipped",
        reason: "circuit open: 1 failure in a row, last ServerError",
        until: 60_010
      })
      expect((yield* scriptCalls(raw)) - before).toBe(0)
      // At the reopening instant the probe is Redis's to give, to one of them.
      const probes = yield* Effect.forEach([one, two, one, two], (s) => s.admit(model!, p, 60_010, 0))
      expect(probes.filter((a) => a._tag === "Admitted")).toMatchObject([{ probe: true }])
    }).pipe(Effect.scoped))

  it.live("a success after another process's failure goes to Redis at once: it ends the run of failures", () =>
    Effect.gen(function*() {
      const prefix = freshPrefix()
      const one = yield* redisStore({ prefix })
      const two = yield* redisStore({ prefix })
      const p = policy({ consecutiveFailures: 3 })
      yield* request(two, p, 0, success)
      yield* request(one, p, 1, failure)
      yield* settle
      // two's copy knows of the failure: its next success is not kept for later.
      yield* request(two, p, 2, success)
      expect((yield* request(one, p, 3, failure)).to).toBe("closed")
      expect((yield* request(one, p, 4, failure)).to).toBe("closed")
      expect((yield* request(one, p, 5, failure)).to).toBe("open")
    }).pipe(Effect.scoped))

  it.live("successes kept on the copy are weighed with the next failure (the failure-rate rule)", () =>
    Effect.gen(function*() {
      const prefix = freshPrefix()
      const store = yield* redisStore({ prefix, syncInterval: "1 minute" })
      const p = policy({
        consecutiveFailures: 100,
        failureRate: { threshold: 0.5, window: "1 minute", minRequests: 4 }
      })
      for (let i = 0; i < 5; i++) yield* request(store, p, i, success)
      // 1 failure in 6, 2 in 7, 3 in 8, 4 in 9: under half; 5 in 10: half, it trips. Without the five successes the
      // third failure would have tripped it (3 in 4).
      const states: Array<string> = []
      for (let i = 5; i < 10; i++) states.push((yield* request(store, p, i, failure)).to)
      expect(states).toEqual(["closed", "closed", "closed", "closed", "open"])
    }).pipe(Effect.scoped))

  it.live("a copy older than syncInterval is read again; this process's requests in flight show in the snapshot", () =>
    Effect.gen(function*() {
      const prefix = freshPrefix()
      const store = yield* redisStore({ prefix, syncInterval: "50 millis" })
      const raw = yield* rawClient
      const p = policy()
      yield* request(store, p, 0, success)
      let before = yield* scriptCalls(raw)
      const local = yield* store.admit(model!, p, 1, 0)
      expect((yield* scriptCalls(raw)) - before).toBe(0)
      expect((yield* store.snapshot(1))[0]).toMatchObject({ inFlight: 1 })
      yield* store.report(model!, p, 1, { _tag: "Released" }, permitOf(local))
      expect((yield* store.snapshot(1))[0]).toMatchObject({ inFlight: 0 })
      yield* settle
      before = yield* scriptCalls(raw)
      yield* request(store, p, 2, success)
      expect((yield* scriptCalls(raw)) - before).toBe(2)
    }).pipe(Effect.scoped))

  it.live(
    "the channel's connection drops: admissions go to Redis until the store listens again",
    () =>
      Effect.gen(function*() {
        const prefix = freshPrefix()
        const store = yield* redisStore({ prefix, syncInterval: "1 minute" })
        const raw = yield* rawClient
        const p = policy()
        yield* request(store, p, 0, success)
        const kill = () => raw.call("CLIENT", "KILL", "TYPE", "pubsub")
        yield* Effect.promise(kill)
        // Until it listens again a message could be missed: the copy is not used.
        let before = yield* scriptCalls(raw)
        yield* request(store, p, 1, success)
        expect((yield* scriptCalls(raw)) - before).toBe(2)
        // It reconnects in the background and listens again; the copy is then read afresh, once.
        let local = false
        for (let i = 0; i < 50 && !local; i++) {
          yield* settle
          before = yield* scriptCalls(raw)
          yield* request(store, p, 2 + i, success)
          yield* request(store, p, 2 + i, success)
          local = (yield* scriptCalls(raw)) - before <= 2
        }
        expect(local).toBe(true)
      }).pipe(Effect.scoped),
    15_000
  )

  it.live(
    "three routers on their own connections, warm: after one trips a deployment the others send it nothing",
    () =>
      Effect.gen(function*() {
        const upstream = yield* Effect.acquireRelease(
          Effect.promise(() =>
            SimulatedUpstream.start({
              script: { flaky: [S.succeed(), S.succeed(), S.succeed(), S.unavailable()], ok: [S.succeed()] }
            })
          ),
          (u) => Effect.promise(u.close)
        )
        const upstreamEndpoint = OpenAiCompatible.endpoint({
          baseUrl: upstream.openAiBaseUrl,
          apiKey: Redacted.make(KEY)
        })
        const prefix = freshPrefix()
        const health: Health.Options = { consecutiveFailures: 1, failureRate: false, cooldown: "1 minute" }
        // No re-read within the test: only the store's messages can tell b and c.
        const routers = yield* Effect.forEach([1, 2, 3], () =>
          Effect.flatMap(redisStore({ prefix, syncInterval: "1 minute" }), (store) =>
            Effect.provideService(
              Router.make({
                models: ["flaky", "ok"].map((name) =>
                  Model.make({ name, endpoint: upstreamEndpoint })
                ),
                retry: RetryPolicy.none,
                health
              }),
              Health.HealthStore,
              store
            )))
        const [a, b, c] = routers
        for (const router of routers) {
          expect((yield* router.generate(hi)).model).toBe("flaky")
        }
        expect(outcomes((yield* a!.generate(hi)).trail)).toEqual(["flaky:fallback", "ok:success"])
        for (let i = 0; i < 5; i++) {
          for (const router of [b!, c!]) {
            expect(outcomes((yield* router.generate(hi)).trail)).toEqual(["flaky:skipped", "ok:success"])
          }
        }
        expect(upstream.requests.filter((r) => r.model === "flaky")).toHaveLength(4)
      }).pipe(Effect.provide(FetchHttpClient.layer), Effect.scoped),
    20_000
  )

  it.effect("bad options are a RouterConfigError naming the option", () =>
    Effect.gen(function*() {
      const bad = (options: RedisHealthStore.Options) =>
        Effect.flip(Effect.scoped(RedisHealthStore.make({ url: "redis://127.0.0.1:1", ...options })))
      expect(yield* bad({ admission: "sometimes" as "local" })).toMatchObject({
        _tag: "RouterConfigError",
        option: "RedisHealthStore.admission"
      })
      expect(yield* bad({ syncInterval: 0 })).toMatchObject({ option: "RedisHealthStore.syncInterval" })
      expect(yield* bad({ commandTimeout: "soon" as "1 second" })).toMatchObject({
        option: "RedisHealthStore.commandTimeout"
      })
    }))
})

describe("layers", () => {
  it.scoped("layerConfig reads the server and the key prefix from Config", () =>
    Effect.gen(function*() {
      const prefix = freshPrefix()
      const provider = ConfigProvider.fromMap(new Map([["REDIS_URL", server.url], ["HEALTH_PREFIX", prefix]]))
      const context = yield* Layer.build(
        RedisHealthStore.layerConfig({ url: Config.string("REDIS_URL"), prefix: Config.string("HEALTH_PREFIX") }).pipe(
          Layer.provide(Layer.setConfigProvider(provider))
        )
      )
      yield* Context.get(context, Health.HealthStore).admit(model!, policy(), 0, 0)
      const raw = yield* rawClient
      expect(yield* Effect.promise(() => raw.smembers(`${prefix}ids`))).toEqual([Health.deploymentId(model!)])
    }))

  it.live("a server that is down when the layer is built: it builds, calls go on local state, one warning", () => {
    const logs = captureLogs()
    return Effect.gen(function*() {
      const nobody = yield* Effect.promise(freePort)
      const started = performance.now()
      const store = yield* Effect.orDie(RedisHealthStore.make({ url: `redis://127.0.0.1:${nobody}` }))
      expect(performance.now() - started).toBeLessThan(500)
      const p = policy({ consecutiveFailures: 1 })
      const timed = performance.now()
      const admission = yield* store.admit(model!, p, 0, 0)
      expect(admission).toEqual({ _tag: "Admitted", probe: false })
      expect((yield* store.report(model!, p, 0, failure, permitOf(admission))).to).toBe("open")
      expect((yield* store.admit(model!, p, 1, 0))._tag).toBe("Skipped")
      expect(performance.now() - timed).toBeLessThan(200)
      expect(logs.lines.filter((l) => l.level === "WARN")).toHaveLength(1)
    }).pipe(Effect.provide(logs.layer), Effect.scoped)
  })
})

describe("three processes on one Redis", () => {
  const processScript = fileURLToPath(new URL("./support/redisRouterProcess.ts", import.meta.url))
  const routerProcess = (prefix: string, baseUrl: string, calls: number) =>
    new Promise<ReadonlyArray<string>>((resolve, reject) => {
      execFile(
        process.execPath,
        ["--import", "tsx", processScript, server.url, prefix, baseUrl, String(calls)],
        { timeout: 20_000 },
        (error, stdout, stderr) => {
          if (error !== null) return reject(new Error(`${error.message}\n${stderr}`))
          resolve(JSON.parse(stdout.trim().split("\n").pop()!) as ReadonlyArray<string>)
        }
      )
    })

  it.live("once one process trips a deployment, the other two send it nothing", () =>
    Effect.gen(function*() {
      const upstream = yield* Effect.acquireRelease(
        Effect.promise(() => SimulatedUpstream.start({ script: { dead: [S.unavailable()], ok: [S.succeed()] } })),
        (u) => Effect.promise(u.close)
      )
      const prefix = freshPrefix()
      const sentToDead = () => upstream.requests.filter((r) => r.model === "dead").length
      expect(yield* Effect.promise(() => routerProcess(prefix, upstream.openAiBaseUrl, 1))).toEqual(["ok"])
      expect(sentToDead()).toBe(1)
      const [second, third] = yield* Effect.promise(() =>
        Promise.all([
          routerProcess(prefix, upstream.openAiBaseUrl, 5),
          routerProcess(prefix, upstream.openAiBaseUrl, 5)
        ])
      )
      expect([...second!, ...third!]).toEqual(Array(10).fill("ok"))
      expect(sentToDead()).toBe(1)
      expect(upstream.requests.filter((r) => r.model === "ok")).toHaveLength(11)
    }).pipe(Effect.scoped), 60_000)
})

describe("failing open", () => {
  const health: Health.Options = { consecutiveFailures: 1, failureRate: false, cooldown: "1 minute" }

  it.live("the server dies mid-run: calls go on, on local state, fast, one warning; it comes back: Redis again", () => {
    const logs = captureLogs()
    return Effect.gen(function*() {
      const own = yield* Effect.acquireRelease(Effect.promise(() => redisServer()), (s) => Effect.promise(s.stop))
      const prefix = freshPrefix()
      const store = yield* RedisHealthStore.make({ url: own.url, prefix, recheckInterval: "200 millis" })
      const observer = yield* RedisHealthStore.make({ url: own.url, prefix })
      const router = yield* Effect.provideService(
        Router.make({ models: models("a", "b"), retry: RetryPolicy.none, health }),
        Health.HealthStore,
        store
      )
      expect((yield* router.generate(hi)).model).toBe("b")
      expect((yield* observer.snapshot(Date.now())).map((d) => `${d.model}:${d.state}`)).toEqual([
        "a:open",
        "b:closed"
      ])

      yield* Effect.promise(own.stop)
      const elapsed: Array<number> = []
      for (let i = 0; i < 10; i++) {
        const started = performance.now()
        const response = yield* router.generate(hi)
        elapsed.push(performance.now() - started)
        // Local state starts empty: a is tried (and trips locally) once, then skipped.
        expect(response.model).toBe("b")
        yield* Effect.sleep("50 millis")
      }
      expect(Math.max(...elapsed)).toBeLessThan(500)
      const warnings = logs.lines.filter((l) => l.level === "WARN" && l.message.startsWith("Redis health store"))
      expect(warnings).toHaveLength(1)
      expect(warnings[0]!.message).toMatch(/^Redis health store unavailable \(.+\); routing on this process's own/)
      const sentToA = (yield* FakeHttpClient.requests).filter((r) => r.model === "a").length
      expect(sentToA).toBe(2)

      // A fresh server on the same port: within a few seconds (the client reconnects in the background) the router's
      // operations reach it again, as the other client sees.
      yield* Effect.promise(own.start)
      const after = yield* RedisHealthStore.make({ url: own.url, prefix })
      let seen: ReadonlyArray<Health.Deployment> = []
      const deadline = Date.now() + 10_000
      while (seen.length === 0 && Date.now() < deadline) {
        yield* router.generate(hi)
        yield* Effect.sleep("100 millis")
        seen = yield* after.snapshot(Date.now())
      }
      expect(seen.map((d) => d.model)).toContain("b")
      expect(logs.lines.filter((l) => l.message.startsWith("Redis health store answers again")).length)
        .toBeGreaterThanOrEqual(1)
      expect(logs.lines.filter((l) => l.level === "WARN" && l.message.startsWith("Redis health store")))
        .toHaveLength(1)
    }).pipe(
      Effect.provide(fake({ a: [S.unavailable()], b: [S.succeed()] })),
      Effect.provide(logs.layer),
      Effect.scoped
    )
  }, 30_000)

  /** A router on a store with a 200 ms command timeout; after one call (served by a), the server pauses. */
  const frozenAfterOneCall = (admission: "local" | "redis", pauseMillis: number) =>
    Effect.gen(function*() {
      const store = yield* RedisHealthStore.make({
        url: server.url,
        prefix: freshPrefix(),
        commandTimeout: "200 millis",
        admission
      })
      const router = yield* Effect.provideService(
        Router.make({ models: models("a", "b"), retry: RetryPolicy.none, health }),
        Health.HealthStore,
        store
      )
      expect((yield* router.generate(hi)).model).toBe("a")
      const admin = yield* Effect.acquireRelease(
        Effect.sync(() => new Redis(server.url, { lazyConnect: true })),
        (c) => Effect.sync(() => c.disconnect())
      )
      yield* Effect.promise(() => admin.call("CLIENT", "PAUSE", String(pauseMillis), "ALL"))
      return { router, store }
    })

  it.live("a frozen server (CLIENT PAUSE 1 s), admission \"local\": a healthy call does not wait for it at all", () => {
    const logs = captureLogs()
    return Effect.gen(function*() {
      const { router } = yield* frozenAfterOneCall("local", 1000)
      for (let i = 0; i < 5; i++) {
        const started = performance.now()
        expect((yield* router.generate(hi)).model).toBe("a")
        expect(performance.now() - started).toBeLessThan(100)
      }
      // b fails on its first request: a failure is Redis's to weigh, within the command timeout.
      const started = performance.now()
      expect((yield* router.generate(hi)).model).toBe("b")
      const failed = performance.now() - started
      expect(failed).toBeGreaterThanOrEqual(195)
      expect(failed).toBeLessThan(700)
      expect(logs.lines.filter((l) => l.level === "WARN")).toHaveLength(1)
      yield* Effect.sleep("1200 millis")
    }).pipe(
      Effect.provide(
        fake({
          a: [S.succeed(), S.succeed(), S.succeed(), S.succeed(), S.succeed(), S.succeed(), S.unavailable()],
          b: [S.succeed()]
        })
      ),
      Effect.provide(logs.layer),
      Effect.scoped
    )
  }, 30_000)

  it.live(
    "a frozen server (CLIENT PAUSE 2 s), admission \"redis\": a call still ends within the command timeout and a margin",
    () => {
      const logs = captureLogs()
      return Effect.gen(function*() {
        const { router, store } = yield* frozenAfterOneCall("redis", 2000)
        const started = performance.now()
        expect((yield* router.generate(hi)).model).toBe("a")
        const frozen = performance.now() - started
        expect(frozen).toBeGreaterThanOrEqual(195)
        expect(frozen).toBeLessThan(700)
        // Until the recheck, the next calls do not wait for Redis at all.
        const next = performance.now()
        yield* router.generate(hi)
        expect(performance.now() - next).toBeLessThan(150)
        expect(logs.lines.filter((l) => l.level === "WARN")).toHaveLength(1)
        expect(logs.lines[0]!.message).toContain("no answer within 200ms")
        // After the pause, the late admission was given back: Redis shows nothing in flight.
        yield* Effect.sleep("2500 millis")
        yield* router.generate(hi)
        const [a] = yield* store.snapshot(Date.now())
        expect(a).toMatchObject({ model: "a", state: "closed", inFlight: 0, probing: false })
      }).pipe(
        Effect.provide(fake({ a: [S.succeed()], b: [S.succeed()] })),
        Effect.provide(logs.layer),
        Effect.scoped
      )
    },
    30_000
  )
})
