/**
 * Groups of deployments (`Model.group`), under the TestClock on the FakeHttpClient: each strategy's picks, the move to
 * another deployment at once after a failure (the backoff only when none is left), deployments health skips never
 * picked while another is available, the deployment named in the trail and the response, and bad groups.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import type * as Attempt from "../src/Attempt.js"
import * as Health from "../src/Health.js"
import * as selection from "../src/internal/selection.js"
import * as Model from "../src/Model.js"
import * as OpenAiCompatible from "../src/OpenAiCompatible.js"
import * as RetryPolicy from "../src/RetryPolicy.js"
import * as Router from "../src/Router.js"
import type * as RouterError from "../src/RouterError.js"
import type * as Selection from "../src/Selection.js"
import * as FakeHttpClient from "../src/testing/FakeHttpClient.js"
import * as S from "../src/testing/UpstreamScript.js"

const KEY = "sk-groups-test-0123456789"
const endpoint = OpenAiCompatible.endpoint({ baseUrl: FakeHttpClient.openAiBaseUrl, apiKey: Redacted.make(KEY) })
const hi = { messages: [{ role: "user" as const, content: "hi" }] }
const fake = (script: S.Script) => FakeHttpClient.layer({ script, apiKey: KEY })
const model = (name: string, limits?: Health.Limits) => Model.make({ name, endpoint, ...(limits ? { limits } : {}) })

const arrivals = Effect.map(FakeHttpClient.requests, (rs) => rs.map((r) => `${r.model}@${r.receivedAt}`))
const served = Effect.map(FakeHttpClient.requests, (rs) => rs.map((r) => r.model))
const outcomes = (trail: ReadonlyArray<Attempt.Attempt>) => trail.map((a) => `${a.model}:${a.outcome}`)
const adjust = (millis: number) => TestClock.adjust(Duration.millis(millis))

/** A group of g1..gn (weights given), then `b` unless `alone`. */
const router = (options: {
  readonly strategy?: Selection.Strategy
  readonly weights?: ReadonlyArray<number>
  readonly retry?: RetryPolicy.RetryPolicy
  readonly health?: Health.Options | false
  readonly alone?: boolean
  readonly limits?: ReadonlyArray<Health.Limits | undefined>
}) => {
  const weights = options.weights ?? [1, 1]
  const group = Model.group({
    name: "g",
    strategy: options.strategy,
    deployments: weights.map((weight, i) => ({ model: model(`g${i + 1}`, options.limits?.[i]), weight }))
  })
  return Router.make({
    models: options.alone === true ? [group] : [group, model("b")],
    retry: options.retry ?? RetryPolicy.none,
    health: options.health ?? { failureRate: false }
  })
}

// Waits of exactly 1 s, 4 attempts.
const steady = RetryPolicy.exponential({
  maxAttempts: 4,
  initialDelay: "1 second",
  factor: 1,
  minDelay: "1 second",
  maxDelay: "1 second",
  jitter: 0
})

describe("groups: a failure moves to another deployment at once; the backoff only when none is left", () => {
  it.effect("every deployment rate limited with Retry-After 7 s (one shared quota): the next round at 7000 (LiteLLM #34399)", () =>
    Effect.gen(function*() {
      const r = yield* router({ strategy: "round-robin", retry: steady })
      const call = yield* Effect.fork(r.generate(hi))
      yield* adjust(6999)
      expect(yield* arrivals).toEqual(["g1@0", "g2@0"])
      expect(Option.isNone(yield* Fiber.poll(call))).toBe(true)
      yield* adjust(1)
      const response = yield* Fiber.join(call)
      expect((yield* arrivals).slice(2)).toHaveLength(1)
      expect((yield* arrivals)[2]).toMatch(/^g[12]@7000$/)
      expect(response.trail.map((a) => a.outcome)).toEqual(["retry", "retry", "success"])
      expect(response.trail.map((a) => a.waitMillis)).toEqual([0, 7000, undefined])
      expect(response.model).not.toBe("b")
    }).pipe(Effect.provide(fake({
      g1: [S.rateLimited({ retryAfter: 7 }), S.succeed()],
      g2: [S.rateLimited({ retryAfter: 7 }), S.succeed()],
      b: [S.succeed()]
    }))))

  it.effect("a 503 on g1 goes to g2 in the same instant; both failing: one wait per round, then the next entry", () =>
    Effect.gen(function*() {
      const r = yield* router({ strategy: "round-robin", retry: steady, health: false })
      const first = yield* r.generate(hi)
      expect(outcomes(first.trail)).toEqual(["g1:retry", "g2:success"])
      expect(first.trail[0]).toMatchObject({ waitMillis: 0, note: "next deployment of the group" })
      expect(first.trail.map((a) => a.deployment)).toEqual(Model.deploymentsOf(r.models[0]!).map(Health.deploymentId))
      expect(first.deployment).toBe(first.trail[1]!.deployment)
      expect(yield* arrivals).toEqual(["g1@0", "g2@0"])
    }).pipe(Effect.provide(fake({ g1: [S.unavailable()], g2: [S.succeed()], b: [S.succeed()] }))))

  it.effect("every deployment failing: rounds of the group at 0, 1000, then the next entry once 4 attempts are spent", () =>
    Effect.gen(function*() {
      const r = yield* router({ strategy: "round-robin", retry: steady, health: false })
      const call = yield* Effect.fork(r.generate(hi))
      yield* adjust(5000)
      const response = yield* Fiber.join(call)
      expect(outcomes(response.trail)).toEqual(["g1:retry", "g2:retry", "g1:retry", "g2:fallback", "b:success"])
      expect(response.trail.map((a) => a.waitMillis)).toEqual([0, 1000, 0, undefined, undefined])
      expect(yield* arrivals).toEqual(["g1@0", "g2@0", "g1@1000", "g2@1000", "b@1000"])
    }).pipe(Effect.provide(fake({ g1: [S.unavailable()], g2: [S.unavailable()], b: [S.succeed()] }))))

  it.effect("a failure no retry fixes (401) gives that deployment up and goes to the next at once", () =>
    Effect.gen(function*() {
      const r = yield* router({ strategy: "round-robin", retry: steady, health: false })
      const response = yield* r.generate(hi)
      expect(outcomes(response.trail)).toEqual(["g1:fallback", "g2:success"])
      expect(response.trail[0]!.error?._tag).toBe("AuthenticationFailed")
      expect(response.trail[0]!.note).toBe("next deployment of the group")
    }).pipe(Effect.provide(fake({ g1: [S.fail(401)], g2: [S.succeed()], b: [S.succeed()] }))))

  it.effect("the caller's bad request ends the call: no other deployment is tried", () =>
    Effect.gen(function*() {
      const r = yield* router({ strategy: "round-robin", retry: steady, health: false })
      const error = (yield* Effect.flip(r.generate(hi))) as RouterError.BadRequest
      expect(error._tag).toBe("BadRequest")
      expect(yield* served).toEqual(["g1"])
    }).pipe(Effect.provide(fake({ g1: [S.fail(400)], g2: [S.succeed()], b: [S.succeed()] }))))

  it.effect("the only other deployment known to be open: the backoff, then the same deployment again", () =>
    Effect.gen(function*() {
      const r = yield* router({ strategy: "round-robin", retry: steady, health: { failureRate: false } })
      expect((yield* r.generate(hi)).model).toBe("g1")
      // g2 answers 401: open for the fatal cooldown, given up; g1 serves.
      expect(outcomes((yield* r.generate(hi)).trail)).toEqual(["g2:fallback", "g1:success"])
      // Its turn: g2 is skipped (and remembered); g1's 503 has no other deployment left: the backoff, then g1.
      const call = yield* Effect.fork(r.generate(hi))
      yield* adjust(1000)
      const third = yield* Fiber.join(call)
      expect(outcomes(third.trail)).toEqual(["g2:skipped", "g1:retry", "g1:success"])
      expect(third.trail[1]!.waitMillis).toBe(1000)
      expect(yield* arrivals).toEqual(["g1@0", "g2@0", "g1@0", "g1@0", "g1@1000"])
    }).pipe(Effect.provide(fake({
      g1: [S.succeed(), S.succeed(), S.unavailable(), S.succeed()],
      g2: [S.fail(401)],
      b: [S.succeed()]
    }))))

  it.effect("the other deployment open without this router knowing (a shared store): the retry earned is kept", () =>
    Effect.gen(function*() {
      const first = yield* router({ strategy: "round-robin", retry: steady, health: { failureRate: false } })
      const second = yield* router({ strategy: "round-robin", retry: steady, health: { failureRate: false } })
      yield* first.generate(hi)
      yield* first.generate(hi) // g2's 401 opens it in the shared table
      // The second router's g1 fails: g2 is tried at once but is open; the retry g1 earned comes after its wait.
      const call = yield* Effect.fork(second.generate(hi))
      yield* adjust(1000)
      const response = yield* Fiber.join(call)
      expect(outcomes(response.trail)).toEqual(["g1:retry", "g2:skipped", "g1:success"])
      expect(response.trail[2]!.startedAt).toBe(1000)
    }).pipe(
      Effect.provide(fake({
        g1: [S.succeed(), S.succeed(), S.unavailable(), S.succeed()],
        g2: [S.fail(401)],
        b: [S.succeed()]
      })),
      Effect.provide(Health.layerMemory)
    ))
})

describe("groups: health and limits steer the picks", () => {
  it.effect("an open deployment is skipped once, then not picked while the group has another", () =>
    Effect.gen(function*() {
      const r = yield* router({ health: { consecutiveFailures: 1, failureRate: false, cooldown: "10 seconds" } })
      // Whichever is picked first, g1 trips on its first request.
      for (let i = 0; i < 40; i++) yield* r.generate(hi)
      const g1 = (yield* served).filter((m) => m === "g1")
      expect(g1).toHaveLength(1)
      const skips = (yield* r.generate(hi)).trail.filter((a) => a.outcome === "skipped")
      expect(skips).toEqual([])
      // It reopens at 10 s: the next pick of it is the probe, which closes it.
      yield* adjust(10_000)
      for (let i = 0; i < 40; i++) yield* r.generate(hi)
      expect((yield* served).filter((m) => m === "g1").length).toBeGreaterThan(5)
      expect((yield* r.health).find((d) => d.model === "g1")).toMatchObject({ state: "closed" })
    }).pipe(Effect.provide(fake({ g1: [S.unavailable(), S.succeed()], g2: [S.succeed()], b: [S.succeed()] }))))

  it.effect("a deployment at its limit goes to the group's other deployment, not to the next entry", () =>
    Effect.gen(function*() {
      const r = yield* router({ strategy: "round-robin", limits: [{ requestsPerMinute: 1 }, undefined] })
      const picks: Array<string> = []
      for (let i = 0; i < 4; i++) picks.push((yield* r.generate(hi)).model)
      expect(picks).toEqual(["g1", "g2", "g2", "g2"])
      expect(yield* served).not.toContain("b")
    }).pipe(Effect.provide(fake({ g1: [S.succeed()], g2: [S.succeed()], b: [S.succeed()] }))))
})

describe("groups: strategies", () => {
  it("weighted: over evenly spread draws, each deployment's share is its weight's, within one draw", () => {
    const group = Model.group({
      deployments: [{ model: model("a"), weight: 1 }, { model: model("b"), weight: 3 }, {
        model: model("c"),
        weight: 0
      }, { model: model("d"), weight: 6 }]
    })
    const state = new selection.State()
    const n = 10_000
    const counts = new Map<string, number>()
    for (let k = 0; k < n; k++) {
      const d = state.pick(group, group.deployments, (k + 0.5) / n, 0.5)
      counts.set(d.model.name, (counts.get(d.model.name) ?? 0) + 1)
    }
    expect(Math.abs((counts.get("a") ?? 0) - n * 0.1)).toBeLessThanOrEqual(1)
    expect(Math.abs((counts.get("b") ?? 0) - n * 0.3)).toBeLessThanOrEqual(1)
    expect(counts.get("c")).toBeUndefined()
    expect(Math.abs((counts.get("d") ?? 0) - n * 0.6)).toBeLessThanOrEqual(1)
    // Only weight-zero standbys left: picked evenly.
    const standbys = group.deployments.filter((d) => d.weight === 0)
    expect(state.pick(group, standbys, 0.99, 0.5).model.name).toBe("c")
  })

  it.effect("weighted, with Effect's Random: 2 000 calls split 1:3 within 5 standard deviations; open never sent to", () =>
    Effect.gen(function*() {
      const r = yield* router({ weights: [1, 3], health: false })
      for (let i = 0; i < 2000; i++) yield* r.generate(hi)
      const g1 = (yield* served).filter((m) => m === "g1").length
      // Binomial(2000, 0.25): mean 500, sd 19.4.
      expect(Math.abs(g1 - 500)).toBeLessThan(97)
    }).pipe(Effect.withRandom(Random.make("groups")), Effect.provide(fake({ g1: [S.succeed()], g2: [S.succeed()] }))))

  it.effect("round-robin: each in turn across calls", () =>
    Effect.gen(function*() {
      const r = yield* router({ strategy: "round-robin", weights: [1, 1, 1], health: false })
      for (let i = 0; i < 7; i++) yield* r.generate(hi)
      expect(yield* served).toEqual(["g1", "g2", "g3", "g1", "g2", "g3", "g1"])
    }).pipe(Effect.provide(fake({ g1: [S.succeed()], g2: [S.succeed()], g3: [S.succeed()] }))))

  it.effect("least-in-flight: concurrent slow calls spread one per deployment; a stream counts until it ends", () =>
    Effect.gen(function*() {
      const r = yield* router({ strategy: "least-in-flight", weights: [1, 1, 1], health: false })
      const calls = yield* Effect.forEach([1, 2, 3], () => Effect.fork(r.generate(hi)))
      yield* adjust(10)
      expect([...(yield* served)].sort()).toEqual(["g1", "g2", "g3"])
      yield* adjust(1000)
      yield* Effect.forEach(calls, Fiber.join)
      // A stream on one deployment, read slowly: the next two calls go to the other two.
      const stream = yield* Effect.fork(Stream.runCollect(r.stream(hi)))
      yield* adjust(100)
      const next = yield* Effect.forEach([1, 2], () => Effect.fork(r.generate(hi)))
      yield* adjust(10)
      const [streamed, ...others] = (yield* served).slice(3)
      expect(others).toHaveLength(2)
      expect(others).not.toContain(streamed)
      expect(new Set(others).size).toBe(2)
      yield* adjust(2000)
      yield* Effect.forEach(next, Fiber.join)
      yield* Fiber.join(stream)
    }).pipe(Effect.provide(fake({
      g1: [S.succeed({ headersDelayMs: 1000 }), S.succeed({ chunks: ["a", "b", "c"], chunkDelayMs: 500 }), S.succeed()],
      g2: [S.succeed({ headersDelayMs: 1000 }), S.succeed({ chunks: ["a", "b", "c"], chunkDelayMs: 500 }), S.succeed()],
      g3: [S.succeed({ headersDelayMs: 1000 }), S.succeed({ chunks: ["a", "b", "c"], chunkDelayMs: 500 }), S.succeed()]
    }))))

  it.effect("lowest-latency: each unmeasured deployment first, then the fastest; exploration re-measures a slow one", () =>
    Effect.gen(function*() {
      const r = yield* router({ strategy: "lowest-latency", health: false })
      const timed = Effect.gen(function*() {
        const call = yield* Effect.fork(r.generate(hi))
        yield* adjust(500)
        return (yield* Fiber.join(call)).model
      })
      // Draws: r1 picks among equals, r2 ≥ 0.05 means no exploration; the fifth call's r2 = 0.01 explores.
      const picks: Array<string> = []
      for (let i = 0; i < 6; i++) picks.push(yield* timed)
      // g1 (200 ms) and g2 (20 ms) are measured first (r1 = 0.1 picks the first unmeasured), then g2 wins; the
      // exploring call (r1 = 0.1 → g1 by weight) measures g1 again.
      expect(picks).toEqual(["g1", "g2", "g2", "g2", "g1", "g2"])
    }).pipe(
      Effect.withRandom(Random.fixed([0.1, 0.5, 0.1, 0.5, 0.1, 0.5, 0.1, 0.5, 0.1, 0.01, 0.1, 0.5])),
      Effect.provide(fake({ g1: [S.succeed({ headersDelayMs: 200 })], g2: [S.succeed({ headersDelayMs: 20 })] }))
    ))

  it("lowest-latency keeps a moving average: 0.3 of the newest latency", () => {
    const state = new selection.State()
    const m = model("m")
    state.observe(m, 100)
    expect(state.statsOf(m).latency).toBe(100)
    state.observe(m, 200)
    expect(state.statsOf(m).latency).toBeCloseTo(130, 10)
    state.observe(m, 30)
    expect(state.statsOf(m).latency).toBeCloseTo(100, 10)
  })
})

describe("groups: streams and bad groups", () => {
  it.effect("a stream served by a group's deployment names it in Started", () =>
    Effect.gen(function*() {
      const r = yield* router({ strategy: "round-robin", health: false })
      const chunks = yield* Stream.runCollect(r.stream(hi))
      const started = [...chunks][0]
      expect(started?._tag).toBe("Started")
      expect(started?._tag === "Started" && started.deployment).toBe(
        Health.deploymentId(Model.deploymentsOf(r.models[0]!)[0]!)
      )
    }).pipe(Effect.provide(fake({ g1: [S.succeed()], g2: [S.succeed()] }))))

  const bad = (group: Model.Group) =>
    Effect.runSync(
      Effect.flip(Router.make({ models: [model("a"), group] })).pipe(
        Effect.provide(FakeHttpClient.layer({ script: {} }))
      )
    ) as RouterError.RouterConfigError

  it.each([
    [Model.group({ deployments: [] }), "models[1].deployments"],
    [Model.group({ deployments: [{ model: model("x"), weight: -1 }] }), "models[1].deployments[0].weight"],
    [Model.group({ deployments: [{ model: model("x"), weight: Number.NaN }] }), "models[1].deployments[0].weight"],
    [
      Model.group({ deployments: [{ model: model("x"), weight: 0 }, { model: model("y"), weight: 0 }] }),
      "models[1].deployments"
    ],
    [Model.group({ deployments: [model("x")], strategy: "fastest" as Selection.Strategy }), "models[1].strategy"],
    [Model.group({ deployments: [model("x"), model("")] }), "models[1].deployments[1].model.name"],
    [
      Model.group({ deployments: [Model.make({ name: "x", endpoint, limits: { maxConcurrent: 0 } })] }),
      "models[1].deployments[0].model.limits.maxConcurrent"
    ]
  ] as ReadonlyArray<readonly [Model.Group, string]>)(
    "a bad group is a RouterConfigError naming %s",
    (group, option) => {
      const error = bad(group)
      expect(error._tag).toBe("RouterConfigError")
      expect(error.option).toBe(option)
    }
  )
})
