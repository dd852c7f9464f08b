/**
 * Deployment health across calls, under the TestClock on the FakeHttpClient: every transition at its exact instant
 * (trip, cooldown growth, half-open probe, Retry-After, waiting for the earliest reopening), what does not count (the
 * caller's bad request, a cancellation), streams that break after content, and the store's rules on their own.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as Attempt from "../src/Attempt.js"
import * as Health from "../src/Health.js"
import * as healthInternal from "../src/internal/health.js"
import * as Model from "../src/Model.js"
import * as OpenAiCompatible from "../src/OpenAiCompatible.js"
import * as RetryPolicy from "../src/RetryPolicy.js"
import * as Router from "../src/Router.js"
import type * as RouterError from "../src/RouterError.js"
import * as FakeHttpClient from "../src/testing/FakeHttpClient.js"
import * as S from "../src/testing/UpstreamScript.js"
import { captureLogs } from "./support/logs.js"
import { storeRules } from "./support/storeRules.js"

const KEY = "sk-health-test-0123456789"
const endpoint = OpenAiCompatible.endpoint({ baseUrl: FakeHttpClient.openAiBaseUrl, apiKey: Redacted.make(KEY) })
const hi = { messages: [{ role: "user" as const, content: "hi" }] }
const fake = (script: S.Script) => FakeHttpClient.layer({ script, apiKey: KEY })
const models = (...names: ReadonlyArray<string>) => names.map((name) => Model.make({ name, endpoint }))

const arrivals = Effect.map(FakeHttpClient.requests, (rs) => rs.map((r) => `${r.model}@${r.receivedAt}`))
const outcomes = (trail: ReadonlyArray<Attempt.Attempt>) => trail.map((a) => `${a.model}:${a.outcome}`)
const adjust = (millis: number) => TestClock.adjust(Duration.millis(millis))

const router = (health: Health.Options | false, names: ReadonlyArray<string> = ["a", "b"]) =>
  Router.make({ models: models(...names), retry: RetryPolicy.none, health })

const breaker: Health.Options = { consecutiveFailures: 3, failureRate: false, cooldown: "5 seconds" }

describe("health: the breaker opens, skips, probes and closes at exact instants", () => {
  it.effect("3 failures in a row open it for 5 s; the probe fails at 5000 and it reopens for 10 s; the next closes it", () =>
    Effect.gen(function*() {
      const r = yield* router(breaker)
      for (let i = 0; i < 3; i++) expect((yield* r.generate(hi)).model).toBe("b")
      // Open: a is skipped, nothing is sent to it.
      const skipped = yield* r.generate(hi)
      expect(outcomes(skipped.trail)).toEqual(["a:skipped", "b:success"])
      expect(skipped.trail[0]!.reopensAt).toBe(5000)
      expect(skipped.trail[0]!.note).toMatch(
        /^circuit open: 3 failures in a row, last ServiceUnavailable; reopens in 5s$/
      )
      yield* adjust(4999)
      expect(outcomes((yield* r.generate(hi)).trail)).toEqual(["a:skipped", "b:success"])
      // Half-open at 5000: this call probes; the probe fails and the cooldown doubles.
      yield* adjust(1)
      const probed = yield* r.generate(hi)
      expect(outcomes(probed.trail)).toEqual(["a:fallback", "b:success"])
      expect(probed.trail.map((a) => a.probe)).toEqual([true, undefined])
      expect(Attempt.formatAttempt(probed.trail[0]!)).toBe(
        "openai/a #1: probe: 503 service unavailable → next model"
      )
      const reopened = yield* r.generate(hi)
      expect(reopened.trail[0]!.reopensAt).toBe(15_000)
      yield* adjust(10_000)
      // The probe at 15000 succeeds: closed again.
      expect((yield* r.generate(hi)).model).toBe("a")
      expect((yield* r.generate(hi)).model).toBe("a")
      expect((yield* arrivals).filter((x) => x.startsWith("a@"))).toEqual([
        "a@0",
        "a@0",
        "a@0",
        "a@5000",
        "a@15000",
        "a@15000"
      ])
      const [a] = yield* r.health
      expect(a).toMatchObject({ model: "a", state: "closed", trips: 0, consecutiveFailures: 0, inFlight: 0 })
    }).pipe(
      Effect.provide(fake({
        a: [S.unavailable(), S.unavailable(), S.unavailable(), S.unavailable(), S.succeed()],
        b: [S.succeed()]
      }))
    ))

  it.effect("a failure that no retry can fix (401) opens it at once for the fatal cooldown", () =>
    Effect.gen(function*() {
      const r = yield* router({ ...breaker, fatalCooldown: "10 minutes" })
      expect((yield* r.generate(hi)).model).toBe("b")
      const next = yield* r.generate(hi)
      expect(outcomes(next.trail)).toEqual(["a:skipped", "b:success"])
      expect(next.trail[0]!.reopensAt).toBe(600_000)
      expect((yield* r.health)[0]).toMatchObject({ state: "open", reopensAt: 600_000, reason: "AuthenticationFailed" })
      expect(yield* arrivals).toEqual(["a@0", "b@0", "b@0"])
    }).pipe(Effect.provide(fake({ a: [S.unauthorized()], b: [S.succeed()] }))))

  it.effect("each change of state is a log line naming the deployment, the states, the reason and the reopening", () => {
    const logs = captureLogs()
    return Effect.gen(function*() {
      const r = yield* router({ consecutiveFailures: 1, failureRate: false, cooldown: "5 seconds" })
      yield* r.generate(hi)
      yield* adjust(5000)
      yield* r.generate(hi)
      const health = logs.lines.filter((l) => l.message.startsWith("Deployment "))
      expect(health.map((l) => `${l.level} ${l.message}`)).toEqual([
        "INFO Deployment openai/a: closed → open (1 failure in a row, last ServiceUnavailable); reopens in 5s",
        "INFO Deployment openai/a: half-open → closed"
      ])
      expect(health[0]!.annotations).toMatchObject({ model: "a", from: "closed", to: "open" })
    }).pipe(
      Effect.provide(fake({ a: [S.unavailable(), S.succeed()], b: [S.succeed()] })),
      Effect.provide(logs.layer)
    )
  })

  it.effect("a Retry-After keeps it skipped until that instant, even though it did not trip", () =>
    Effect.gen(function*() {
      const r = yield* router(breaker)
      expect((yield* r.generate(hi)).model).toBe("b")
      const next = yield* r.generate(hi)
      expect(outcomes(next.trail)).toEqual(["a:skipped", "b:success"])
      expect(next.trail[0]!.reopensAt).toBe(7000)
      yield* adjust(7000)
      expect((yield* r.generate(hi)).model).toBe("a")
    }).pipe(Effect.provide(fake({ a: [S.rateLimited({ retryAfter: "7" }), S.succeed()], b: [S.succeed()] }))))

  it.effect("during one call, the breaker opening ends that model's retries at once (no wait for a skip)", () =>
    Effect.gen(function*() {
      const r = yield* Router.make({ models: models("a", "b"), health: breaker, retry: { maxAttempts: 4, jitter: 0 } })
      const fiber = yield* Effect.fork(r.generate(hi))
      yield* adjust(8000)
      const response = yield* Fiber.join(fiber)
      // Attempts at 0, 4000, 8000; the third opens the breaker, so the fourth (at 12000) is never waited for.
      expect(yield* arrivals).toEqual(["a@0", "a@4000", "a@8000", "b@8000"])
      expect(response.trail.map((a) => a.outcome)).toEqual(["retry", "retry", "fallback", "success"])
      expect(response.trail[2]!.note).toBe("its circuit opened")
    }).pipe(Effect.provide(fake({ a: [S.unavailable()], b: [S.succeed()] }))))
})

describe("health: when every deployment is skipped", () => {
  const tripBoth = Effect.gen(function*() {
    const r = yield* router({ consecutiveFailures: 1, failureRate: false, cooldown: "2 seconds" })
    const first = yield* Effect.flip(r.generate(hi))
    expect(first._tag).toBe("ServiceUnavailable")
    return r
  })

  it.effect("waits for the earliest reopening (2000) and probes, when that is within maxWait and the deadline", () =>
    Effect.gen(function*() {
      const r = yield* tripBoth
      const fiber = yield* Effect.fork(r.generate(hi))
      yield* adjust(1999)
      expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
      yield* adjust(1)
      const response = yield* Fiber.join(fiber)
      expect(response.model).toBe("a")
      expect(outcomes(response.trail)).toEqual(["a:skipped", "b:skipped", "a:success"])
      expect(yield* arrivals).toEqual(["a@0", "b@0", "a@2000"])
    }).pipe(Effect.provide(fake({ a: [S.unavailable(), S.succeed()], b: [S.unavailable()] }))))

  it.effect("fails at once with NoModelAvailable naming the reopening instant when waiting is off", () =>
    Effect.gen(function*() {
      const r = yield* Router.make({
        models: models("a", "b"),
        retry: RetryPolicy.none,
        health: { consecutiveFailures: 1, failureRate: false, cooldown: "2 seconds", maxWait: false }
      })
      yield* Effect.flip(r.generate(hi))
      const error = yield* Effect.flip(r.generate(hi))
      expect(error._tag).toBe("NoModelAvailable")
      if (error._tag !== "NoModelAvailable") return
      expect(error.reopensAt).toBe(2000)
      expect(error.message).toContain("the first reopens in 2s")
      expect(outcomes(error.trail ?? [])).toEqual(["a:skipped", "b:skipped"])
      expect(yield* arrivals).toEqual(["a@0", "b@0"])
    }).pipe(Effect.provide(fake({ a: [S.unavailable()], b: [S.unavailable()] }))))

  it.effect("fails at once when the earliest reopening is after the deadline", () =>
    Effect.gen(function*() {
      const r = yield* Router.make({
        models: models("a", "b"),
        retry: RetryPolicy.none,
        health: { consecutiveFailures: 1, failureRate: false, cooldown: "2 seconds" },
        timeout: { deadline: "1 second" }
      })
      yield* Effect.flip(r.generate(hi))
      const error = yield* Effect.flip(r.generate(hi))
      expect(error._tag).toBe("NoModelAvailable")
      if (error._tag === "NoModelAvailable") expect(error.message).toContain("after the deadline")
    }).pipe(Effect.provide(fake({ a: [S.unavailable()], b: [S.unavailable()] }))))

  it.effect("a list with one skipped model after a real failure ends with that failure, not NoModelAvailable", () =>
    Effect.gen(function*() {
      const options: Health.Options = { consecutiveFailures: 1, failureRate: false, cooldown: "1 minute" }
      // Another router on the same store opens b.
      yield* Effect.flip((yield* router(options, ["b"])).generate(hi))
      // a fails with a 500 and falls back; b is skipped; the call ends with a's error.
      const error = yield* Effect.flip((yield* router(options)).generate(hi))
      expect(error._tag).toBe("ServerError")
      expect(outcomes(error._tag === "ServerError" ? error.trail ?? [] : [])).toEqual(["a:fallback", "b:skipped"])
    }).pipe(
      Effect.provide(fake({ a: [S.serverError()], b: [S.unavailable()] })),
      Effect.provide(Health.layerMemory)
    ))
})

describe("health: what does not count, and what does", () => {
  it.effect("the caller's bad request and a cancelled call count nothing; a success resets the count", () =>
    Effect.gen(function*() {
      const r = yield* router({ consecutiveFailures: 2, failureRate: false })
      // 400: the caller's own; not counted, and not a fallback either.
      expect((yield* Effect.flip(r.generate(hi)))._tag).toBe("BadRequest")
      // Two cancelled calls on a hanging attempt.
      for (let i = 0; i < 2; i++) {
        const fiber = yield* Effect.fork(r.generate(hi))
        yield* adjust(10)
        yield* Fiber.interrupt(fiber)
      }
      expect((yield* r.health)[0]).toMatchObject({ state: "closed", consecutiveFailures: 0, inFlight: 0 })
      // One 503, then a success: the count is back to 0, so the next 503 does not trip (2 needed in a row).
      expect((yield* r.generate(hi)).model).toBe("b")
      expect((yield* r.health)[0]!.consecutiveFailures).toBe(1)
      expect((yield* r.generate(hi)).model).toBe("a")
      expect((yield* r.generate(hi)).model).toBe("b")
      expect((yield* r.health)[0]).toMatchObject({ state: "closed", consecutiveFailures: 1 })
    }).pipe(Effect.provide(fake({
      a: [S.fail(400), S.hang(), S.hang(), S.unavailable(), S.succeed(), S.unavailable()],
      b: [S.succeed()]
    }))))

  it.effect("a stream cut after content counts against its deployment", () =>
    Effect.gen(function*() {
      const r = yield* router({ consecutiveFailures: 1, failureRate: false, cooldown: "5 seconds" })
      const cut = yield* Effect.flip(Stream.runDrain(r.stream(hi)))
      expect(cut._tag).toBe("StreamInterrupted")
      const next = yield* r.generate(hi)
      expect(outcomes(next.trail)).toEqual(["a:skipped", "b:success"])
    }).pipe(Effect.provide(fake({ a: [S.cut({ afterChunks: 2 })], b: [S.succeed()] }))))

  it.effect("with health: false, every call starts at the top of the list again", () =>
    Effect.gen(function*() {
      const r = yield* router(false)
      for (let i = 0; i < 5; i++) expect((yield* r.generate(hi)).model).toBe("b")
      expect((yield* arrivals).filter((x) => x.startsWith("a@"))).toHaveLength(5)
    }).pipe(Effect.provide(fake({ a: [S.unavailable()], b: [S.succeed()] }))))

  it.effect("a failure rate over the window opens it without 3 failures in a row; old outcomes leave the window", () =>
    Effect.gen(function*() {
      const r = yield* router({
        consecutiveFailures: 100,
        failureRate: { threshold: 0.5, window: "10 seconds", minRequests: 4 },
        cooldown: "5 seconds"
      })
      // fail, ok, fail at 0..2000: 2 of 3, below minRequests.
      for (let i = 0; i < 3; i++) {
        yield* r.generate(hi)
        yield* adjust(1000)
      }
      expect((yield* r.health)[0]).toMatchObject({ state: "closed", recentRequests: 3, recentFailures: 2 })
      // At 11500 the outcomes of 0 and 1000 have left the 10 s window: with the ok at 11500, 1 failure in 2; then two
      // more failures make 3 in 4, over the threshold, though never 3 in a row.
      yield* adjust(8500)
      yield* r.generate(hi)
      expect((yield* r.health)[0]).toMatchObject({ recentRequests: 2, recentFailures: 1 })
      yield* r.generate(hi)
      yield* r.generate(hi)
      expect((yield* r.health)[0]).toMatchObject({ state: "open", reopensAt: 16_500 })
    }).pipe(Effect.provide(fake({
      a: [S.unavailable(), S.succeed(), S.unavailable(), S.succeed(), S.unavailable(), S.unavailable()],
      b: [S.succeed()]
    }))))
})

describe("health: half-open admits exactly one probe", () => {
  it.effect("five concurrent calls at the reopening instant: one request reaches a, four go to b", () =>
    Effect.gen(function*() {
      const r = yield* router({ consecutiveFailures: 1, failureRate: false, cooldown: "5 seconds" })
      yield* r.generate(hi)
      yield* adjust(5000)
      const fibers = yield* Effect.forEach([1, 2, 3, 4, 5], () => Effect.fork(r.generate(hi)))
      yield* adjust(100)
      const served = yield* Effect.forEach(fibers, (f) => Effect.map(Fiber.join(f), (x) => x.model))
      expect(served.filter((m) => m === "a")).toHaveLength(1)
      expect(served.filter((m) => m === "b")).toHaveLength(4)
      expect((yield* arrivals).filter((x) => x.startsWith("a@"))).toEqual(["a@0", "a@5000"])
      expect((yield* r.health)[0]).toMatchObject({ state: "closed", probing: false, inFlight: 0 })
    }).pipe(Effect.provide(fake({ a: [S.unavailable(), S.succeed({ headersDelayMs: 100 })], b: [S.succeed()] }))))

  it.effect("a cancelled probe releases the probe: the next call probes at once", () =>
    Effect.gen(function*() {
      const r = yield* router({ consecutiveFailures: 1, failureRate: false, cooldown: "5 seconds" })
      yield* r.generate(hi)
      yield* adjust(5000)
      const probing = yield* Effect.fork(r.generate(hi))
      yield* adjust(10)
      expect((yield* r.health)[0]).toMatchObject({ state: "half-open", probing: true, inFlight: 1 })
      yield* Fiber.interrupt(probing)
      expect((yield* r.health)[0]).toMatchObject({ state: "half-open", probing: false, inFlight: 0 })
      expect((yield* r.generate(hi)).model).toBe("a")
      expect((yield* arrivals).filter((x) => x.startsWith("a@"))).toEqual(["a@0", "a@5000", "a@5010"])
    }).pipe(Effect.provide(fake({ a: [S.unavailable(), S.hang(), S.succeed()], b: [S.succeed()] }))))

  it.effect("a shared store: a second router skips what the first one tripped", () =>
    Effect.gen(function*() {
      const first = yield* router({ consecutiveFailures: 1, failureRate: false })
      const second = yield* router({ consecutiveFailures: 1, failureRate: false })
      yield* first.generate(hi)
      expect(outcomes((yield* second.generate(hi)).trail)).toEqual(["a:skipped", "b:success"])
    }).pipe(Effect.provide(fake({ a: [S.unavailable()], b: [S.succeed()] })), Effect.provide(Health.layerMemory)))
})

describe("health: the store's rules in memory", () =>
  storeRules(() => Effect.succeed({ store: Health.makeMemory(), onServer: Effect.succeed(["(memory)"]) })))

describe("health: options and ids", () => {
  it.each([
    [{ consecutiveFailures: 0 }, "health.consecutiveFailures"],
    [{ consecutiveFailures: 1.5 }, "health.consecutiveFailures"],
    [{ failureRate: { threshold: 0, window: "1 minute", minRequests: 5 } }, "health.failureRate.threshold"],
    [{ failureRate: { threshold: 0.5, window: "0 millis", minRequests: 5 } }, "health.failureRate.window"],
    [{ failureRate: { threshold: 0.5, window: "1 minute", minRequests: 0 } }, "health.failureRate.minRequests"],
    [{ cooldown: -1 }, "health.cooldown"],
    [{ cooldown: "10 seconds", maxCooldown: "5 seconds" }, "health.maxCooldown"],
    [{ cooldownFactor: 0.5 }, "health.cooldownFactor"],
    [{ maxWait: "forever" }, "health.maxWait"]
  ] as ReadonlyArray<readonly [Health.Options, string]>)("%o is a RouterConfigError naming %s", (options, option) => {
    const error = Effect.runSync(
      Effect.flip(Router.make({ models: models("a"), health: options })).pipe(
        Effect.provide(FakeHttpClient.layer({ script: {} }))
      )
    ) as RouterError.RouterConfigError
    expect(error._tag).toBe("RouterConfigError")
    expect(error.option).toBe(option)
  })

  it("the failure-rate window keeps the newest 1024 outcomes, counting failures as they come and go", () => {
    const window = new healthInternal.OutcomeWindow()
    // 1030 outcomes at t = 0..1029, every third one failed.
    for (let t = 0; t < 1030; t++) window.push(t, t % 3 === 0)
    expect(window.size).toBe(1024)
    let failures = 0
    for (let t = 6; t < 1030; t++) if (t % 3 === 0) failures++
    expect(window.failures).toBe(failures)
    // Pruning up to t = 999 keeps 1000..1029: 30 outcomes, 10 failed.
    window.prune(999)
    expect([window.size, window.failures]).toEqual([30, 10])
    window.clear()
    expect([window.size, window.failures]).toEqual([0, 0])
  })

  it("a deployment's id names provider, model and base URL, and holds no key", () => {
    const id = Health.deploymentId(models("gpt-4o")[0]!)
    expect(id.startsWith(`openai/gpt-4o@${FakeHttpClient.openAiBaseUrl}#`)).toBe(true)
    expect(id).not.toContain(KEY)
    const other = Model.make({
      name: "gpt-4o",
      endpoint: OpenAiCompatible.endpoint({
        baseUrl: FakeHttpClient.openAiBaseUrl,
        apiKey: Redacted.make("sk-other-1")
      })
    })
    expect(Health.deploymentId(other)).not.toBe(id)
    // A key put in the URL (credentials, query) is not shown, but still tells deployments apart.
    const inUrl = (url: string) =>
      Health.deploymentId(
        Model.make({ name: "m", endpoint: OpenAiCompatible.endpoint({ baseUrl: url, apiKey: Redacted.make("") }) })
      )
    const withKey = inUrl("https://user:pass@example.test/v1?key=secret-1")
    expect(withKey).toMatch(/^openai\/m@https:\/\/example\.test\/v1#[0-9a-f]{8}$/)
    expect(withKey).not.toMatch(/secret|user|pass/)
    expect(inUrl("https://example.test/v1?key=secret-2")).not.toBe(inUrl("https://example.test/v1?key=secret-1"))
  })
})
