/**
 * The router's time-based behaviour under the TestClock: retry waits, jitter, Retry-After, timeouts, the deadline,
 * fallback and streaming, all through the in-memory FakeHttpClient so every latency is an Effect sleep and every
 * instant is exact.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import type { Attempt } from "../src/Attempt.js"
import type { ChatChunk } from "../src/ChatChunk.js"
import type { ChatRequest } from "../src/ChatRequest.js"
import type { ChatResponse } from "../src/ChatResponse.js"
import * as GptRouter from "../src/GptRouter.js"
import * as Model from "../src/Model.js"
import * as OpenAiCompatible from "../src/OpenAiCompatible.js"
import * as RetryPolicy from "../src/RetryPolicy.js"
import * as Router from "../src/Router.js"
import type * as RouterError from "../src/RouterError.js"
import * as FakeHttpClient from "../src/testing/FakeHttpClient.js"
import * as S from "../src/testing/UpstreamScript.js"

const KEY = "sk-clock-test-0123456789"
const endpoint = OpenAiCompatible.endpoint({ baseUrl: FakeHttpClient.openAiBaseUrl, apiKey: Redacted.make(KEY) })
const model = (name: string, extra: Omit<Parameters<typeof Model.make>[0], "name" | "endpoint"> = {}) =>
  Model.make({ name, endpoint, ...extra })
const hi: ChatRequest = { messages: [{ role: "user", content: "hi" }] }

const fake = (script: S.Script) => FakeHttpClient.layer({ script, apiKey: KEY })

/** `[model, receivedAt]` of every request the fake saw. */
const arrivals = Effect.map(FakeHttpClient.requests, (rs) => rs.map((r) => [r.model, r.receivedAt] as const))

/** The trail an error carries (every routed error but InvalidRequest has one). */
const trailOf = (error: RouterError.RouterStreamError): ReadonlyArray<Attempt> =>
  "trail" in error ? error.trail ?? [] : []

const outcomes = (trail: ReadonlyArray<Attempt>) => trail.map((a) => a.outcome)
const waits = (trail: ReadonlyArray<Attempt>) => trail.filter((a) => a.outcome === "retry").map((a) => a.waitMillis)
const startedAt = (trail: ReadonlyArray<Attempt>) => trail.map((a) => a.startedAt)

const adjust = (millis: number) => TestClock.adjust(Duration.millis(millis))
const now = Effect.map(TestClock.currentTimeMillis, (t) => t)

/** Asserts the fiber is still running at `millis - 1` and done exactly at `millis` (from the current instant 0). */
const doneExactlyAt = <A, E>(fiber: Fiber.RuntimeFiber<A, E>, millis: number) =>
  Effect.gen(function*() {
    const start = yield* now
    yield* adjust(millis - start - 1)
    expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
    yield* adjust(1)
    expect(Option.isSome(yield* Fiber.poll(fiber))).toBe(true)
    return yield* Fiber.await(fiber)
  })

const failure = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error(`expected a failure, got ${JSON.stringify(exit.value)}`)
  const error = exit.cause._tag === "Fail" ? exit.cause.error : undefined
  if (error === undefined) throw new Error(`expected a typed failure, got ${String(exit.cause)}`)
  return error
}

const success = <A, E>(exit: Exit.Exit<A, E>): A => {
  if (Exit.isFailure(exit)) throw new Error(`expected a success, got ${String(exit.cause)}`)
  return exit.value
}

/** A stream's chunks, in order. */
const collectText = (stream: Stream.Stream<ChatChunk, RouterError.RouterStreamError>) =>
  Effect.map(Stream.runCollect(stream), (chunks) => [...chunks])

/** Waits of exactly 100 ms, 3 attempts. */
const every100ms = { initialDelay: "100 millis", factor: 1, minDelay: 0, jitter: 0, maxAttempts: 3 } as const

const textOf = (chunks: Iterable<ChatChunk>) => [...chunks].map((c) => (c._tag === "TextDelta" ? c.text : "")).join("")

describe("Router under the TestClock: retries", () => {
  it.effect("default policy: 503 four times at 0, 4000, 8000, 12000, then the second model at 12000", () =>
    Effect.gen(function*() {
      const router = yield* Router.make({ models: [model("a"), model("b")] })
      const fiber = yield* Effect.fork(router.generate(hi))
      yield* adjust(0)
      expect(yield* arrivals).toEqual([["a", 0]])
      yield* adjust(3999)
      expect(yield* arrivals).toHaveLength(1)
      yield* adjust(1)
      expect(yield* arrivals).toEqual([["a", 0], ["a", 4000]])
      yield* adjust(8000)
      const response = success(yield* Fiber.await(fiber))
      expect(yield* arrivals).toEqual([["a", 0], ["a", 4000], ["a", 8000], ["a", 12000], ["b", 12000]])
      expect(response.model).toBe("b")
      expect(response.text).toBe("Hello from b")
      expect(outcomes(response.trail)).toEqual(["retry", "retry", "retry", "fallback", "success"])
      expect(waits(response.trail)).toEqual([4000, 4000, 4000])
      expect(startedAt(response.trail)).toEqual([0, 4000, 8000, 12000, 12000])
      expect(response.trail.map((a) => a.endedAt)).toEqual([0, 4000, 8000, 12000, 12000])
      expect(response.trail.map((a) => `${a.model}#${a.attempt}/${a.index}`)).toEqual([
        "a#1/1",
        "a#2/2",
        "a#3/3",
        "a#4/4",
        "b#1/5"
      ])
      expect(response.trail.slice(0, 4).map((a) => a.error?._tag)).toEqual(Array(4).fill("ServiceUnavailable"))
      expect(response.trail[3]!.note).toBe("retries spent after 4 attempts")
    }).pipe(
      Effect.provide(fake({ a: [S.unavailable()], b: [S.succeed()] })),
      Effect.withRandomFixed([0.5])
    ))

  // Each call ends exactly when its last request arrives (nothing is left to wait for).
  const retryCases: ReadonlyArray<{
    readonly name: string
    readonly models: ReadonlyArray<Model.Model>
    readonly retry: Router.Options["retry"]
    readonly script: S.Script
    readonly arrivals: ReadonlyArray<readonly [string, number]>
    readonly outcomes: ReadonlyArray<Attempt["outcome"]>
    readonly waits: ReadonlyArray<number>
    readonly ends: "success" | RouterError.RouterStreamError["_tag"]
  }> = [
    {
      name: "custom exponential options: 100 ms × 2^n, no jitter → 0, 100, 300, 700, 1500",
      models: [model("a")],
      retry: { initialDelay: "100 millis", factor: 2, minDelay: 0, maxDelay: "1 second", maxAttempts: 5, jitter: 0 },
      script: { a: [S.serverError(), S.serverError(502), S.unavailable(), S.rateLimited(), S.succeed()] },
      arrivals: [["a", 0], ["a", 100], ["a", 300], ["a", 700], ["a", 1500]],
      outcomes: ["retry", "retry", "retry", "retry", "success"],
      waits: [100, 200, 400, 800],
      ends: "success"
    },
    {
      name: "maxDelay caps the custom exponential: 100 ms × 10^n capped at 1 s",
      models: [model("a")],
      retry: { initialDelay: "100 millis", factor: 10, minDelay: 0, maxDelay: "1 second", maxAttempts: 4, jitter: 0 },
      script: { a: [S.serverError()] },
      arrivals: [["a", 0], ["a", 100], ["a", 1100], ["a", 2100]],
      outcomes: ["retry", "retry", "retry", "failed"],
      waits: [100, 1000, 1000],
      ends: "ServerError"
    },
    {
      name: "RetryPolicy.fromSchedule: spaced 250 ms, two recurrences → 0, 250, 500, then fallback at 500",
      models: [model("a"), model("b")],
      retry: RetryPolicy.fromSchedule(Schedule.spaced("250 millis").pipe(Schedule.intersect(Schedule.recurs(2)))),
      script: { a: [S.unavailable()], b: [S.succeed()] },
      arrivals: [["a", 0], ["a", 250], ["a", 500], ["b", 500]],
      outcomes: ["retry", "retry", "fallback", "success"],
      waits: [250, 250],
      ends: "success"
    },
    {
      name: "a model's own retry policy replaces the router's for that model only",
      models: [model("a", { retry: RetryPolicy.none }), model("b")],
      retry: { initialDelay: "1 second", factor: 1, minDelay: 0, maxAttempts: 2, jitter: 0 },
      script: { a: [S.unavailable()], b: [S.unavailable(), S.succeed()] },
      arrivals: [["a", 0], ["b", 0], ["b", 1000]],
      outcomes: ["fallback", "retry", "success"],
      waits: [1000],
      ends: "success"
    },
    {
      name:
        "retryOn [RateLimited]: a 429 is retried, then a 503 (not in the list) goes to the next model at once (AI SDK #4842)",
      models: [model("a"), model("b")],
      retry: { ...every100ms, retryOn: ["RateLimited"] },
      script: { a: [S.rateLimited(), S.unavailable()], b: [S.succeed()] },
      arrivals: [["a", 0], ["a", 100], ["b", 100]],
      outcomes: ["retry", "fallback", "success"],
      waits: [100],
      ends: "success"
    }
  ]
  it.effect.each(retryCases.map((c) => [c.name, c] as const))("%s", ([, c]) =>
    Effect.gen(function*() {
      const router = yield* Router.make({ models: c.models, retry: c.retry })
      const fiber = yield* Effect.fork(router.generate(hi))
      const exit = yield* doneExactlyAt(fiber, c.arrivals.at(-1)![1])
      const trail = Exit.isSuccess(exit) ? exit.value.trail : trailOf(failure(exit))
      expect(Exit.isSuccess(exit) ? "success" : failure(exit)._tag).toBe(c.ends)
      expect(yield* arrivals).toEqual(c.arrivals)
      expect(outcomes(trail)).toEqual(c.outcomes)
      expect(waits(trail)).toEqual(c.waits)
    }).pipe(Effect.provide(fake(c.script))))
})

describe("Router under the TestClock: jitter", () => {
  const seeds = [1, 2, 3, 5, 8, 13, 21, 34, 55, 89]

  // The waits of one call on a model that always fails, with the given randomness.
  const waitsWith = (
    random: Random.Random,
    retry: RetryPolicy.ExponentialOptions
  ) =>
    Effect.gen(function*() {
      // Health off: six failures in a row would open the breaker before the policy's last attempt.
      const router = yield* Router.make({ models: [model("a")], retry, health: false })
      const fiber = yield* Effect.fork(router.generate(hi))
      yield* adjust(120_000)
      const error = failure(yield* Fiber.await(fiber))
      const trail = trailOf(error)
      // The recorded waits are the real gaps between requests.
      const times = (yield* arrivals).map(([, t]) => t)
      const gaps = times.slice(1).map((t, i) => t - times[i]!)
      expect(gaps).toEqual(waits(trail))
      return waits(trail) as ReadonlyArray<number>
    }).pipe(
      Effect.provide(fake({ a: [S.unavailable()] })),
      Effect.withRandom(random)
    )

  it.effect("the default policy's waits stay in [4000, 4800] while the backoff is under the clamp", () =>
    Effect.gen(function*() {
      const all: Array<ReadonlyArray<number>> = []
      for (const seed of seeds) all.push(yield* waitsWith(Random.make(seed), {}))
      for (const ws of all) {
        expect(ws).toHaveLength(3)
        for (const w of ws) {
          expect(w).toBeGreaterThanOrEqual(4000)
          expect(w).toBeLessThanOrEqual(4800)
        }
      }
      // Jitter is applied: the seeds do not all give the same waits.
      expect(new Set(all.map((ws) => ws.join(","))).size).toBeGreaterThan(1)
    }))

  it.effect("larger default-policy waits keep ±20% inside the 10 s cap (8 s → [6400, 9600], 16 s → [8000, 10000])", () =>
    Effect.gen(function*() {
      const fourth: Array<number> = []
      for (const seed of seeds) {
        const ws = yield* waitsWith(Random.make(seed), { maxAttempts: 6 })
        expect(ws).toHaveLength(5)
        for (const w of ws.slice(0, 3)) {
          expect(w).toBeGreaterThanOrEqual(4000)
          expect(w).toBeLessThanOrEqual(4800)
        }
        expect(ws[3]).toBeGreaterThanOrEqual(6400)
        expect(ws[3]).toBeLessThanOrEqual(9600)
        expect(ws[4]).toBeGreaterThanOrEqual(8000)
        expect(ws[4]).toBeLessThanOrEqual(10000)
        fourth.push(ws[3]!)
      }
      expect(new Set(fourth).size).toBeGreaterThan(1)
    }))

  // Nominal waits 1000, 2000, 4000, each ±50%.
  const halfJitter: RetryPolicy.ExponentialOptions = {
    initialDelay: "1 second",
    factor: 2,
    minDelay: 0,
    maxDelay: "1 minute",
    maxAttempts: 4,
    jitter: 0.5
  }

  it.effect("jitter 0.5 with minDelay 0: waits vary between seeds and stay within [0.5 d, 1.5 d]", () =>
    Effect.gen(function*() {
      const all: Array<ReadonlyArray<number>> = []
      for (const seed of seeds) all.push(yield* waitsWith(Random.make(seed), halfJitter))
      const nominal = [1000, 2000, 4000]
      for (const ws of all) {
        expect(ws).toHaveLength(3)
        ws.forEach((w, i) => {
          expect(w).toBeGreaterThanOrEqual(0.5 * nominal[i]!)
          expect(w).toBeLessThanOrEqual(1.5 * nominal[i]!)
        })
      }
      for (let i = 0; i < 3; i++) expect(new Set(all.map((ws) => ws[i])).size).toBeGreaterThan(1)
    }))

  it.effect("with the random pinned at 0.5 the jitter factor is exactly 1", () =>
    Effect.gen(function*() {
      const ws = yield* waitsWith(Random.fixed([0.5]), halfJitter)
      expect(ws).toEqual([1000, 2000, 4000])
    }))
})

describe("Router under the TestClock: Retry-After", () => {
  const secondRequestAt = (step: S.Step) =>
    Effect.gen(function*() {
      const start = yield* now
      const router = yield* Router.make({ models: [model("a")] })
      const fiber = yield* Effect.fork(router.generate(hi))
      yield* adjust(60_000)
      const response = success(yield* Fiber.await(fiber))
      const times = (yield* arrivals).map(([, t]) => t - start)
      expect(times).toHaveLength(2)
      expect(waits(response.trail)).toEqual([times[1]])
      expect(response.trail[0]!.error?.retryAfterMillis).toBeDefined()
      return times[1]!
    }).pipe(Effect.provide(fake({ a: [step, S.succeed()] })), Effect.withRandomFixed([0.5]))

  it.effect.each<readonly [name: string, step: S.Step, at: number]>([
    ["retry-after: 7 → the next request at exactly 7000", S.rateLimited({ retryAfter: 7 }), 7000],
    ["retry-after-ms below the backoff → the backoff (4000)", S.rateLimited({ retryAfterMs: 1500 }), 4000],
    ["retry-after-ms above the backoff → the server's 6500", S.rateLimited({ retryAfterMs: 6500 }), 6500],
    [
      "retry-after-ms wins over Retry-After when both are sent",
      S.rateLimited({ retryAfterMs: 5500, retryAfter: 20 }),
      5500
    ],
    [
      "Retry-After as an HTTP date is measured on the Clock: 9 s after the epoch → 9000",
      S.rateLimited({ retryAfter: new Date(9000).toUTCString() }),
      9000
    ],
    ["Retry-After on a 503 is honoured too", S.unavailable({ headers: { "retry-after": "11" } }), 11000]
  ])("%s", ([, step, at]) =>
    Effect.gen(function*() {
      expect(yield* secondRequestAt(step)).toBe(at)
    }))

  // A Retry-After the call cannot honour moves on to the next model at once, noting why.
  const capCases: ReadonlyArray<{
    readonly name: string
    readonly options: Omit<Router.Options, "models">
    readonly retryAfter: number
    readonly note: string
  }> = [
    {
      name: "a Retry-After over the cap (120 s > 60 s) moves to the next model at once, with a note",
      options: {},
      retryAfter: 120,
      note: "server asked to wait 120s, over the 60s cap"
    },
    {
      name: "a custom maxRetryAfter moves the cap",
      options: { retry: { maxRetryAfter: "5 seconds" } },
      retryAfter: 7,
      note: "server asked to wait 7s, over the 5s cap"
    },
    {
      name: "a Retry-After under the cap that would pass the deadline moves to the next model at once",
      options: { timeout: { deadline: "30 seconds" } },
      retryAfter: 40,
      note: "waiting 40s would pass the deadline"
    }
  ]
  it.effect.each(capCases.map((c) => [c.name, c] as const))("%s", ([, c]) =>
    Effect.gen(function*() {
      const router = yield* Router.make({ models: [model("a"), model("b")], ...c.options })
      const fiber = yield* Effect.fork(router.generate(hi))
      yield* adjust(0)
      const response = success(yield* Fiber.await(fiber))
      expect(yield* arrivals).toEqual([["a", 0], ["b", 0]])
      expect(outcomes(response.trail)).toEqual(["fallback", "success"])
      expect(response.trail[0]!.error?._tag).toBe("RateLimited")
      expect(response.trail[0]!.error?.retryAfterMillis).toBe(c.retryAfter * 1000)
      expect(response.trail[0]!.note).toBe(c.note)
    }).pipe(Effect.provide(fake({ a: [S.rateLimited({ retryAfter: c.retryAfter })], b: [S.succeed()] }))))

  it.effect("on the last model a Retry-After over the cap ends the call with that error, without sleeping", () =>
    Effect.gen(function*() {
      const router = yield* Router.make({ models: [model("a")] })
      const fiber = yield* Effect.fork(router.generate(hi))
      yield* adjust(0)
      const error = failure(yield* Fiber.await(fiber))
      expect(error._tag).toBe("RateLimited")
      expect(outcomes(trailOf(error))).toEqual(["failed"])
      expect(trailOf(error)[0]?.note).toContain("over the 60s cap")
    }).pipe(Effect.provide(fake({ a: [S.rateLimited({ retryAfter: 120 })] }))))
})

describe("Router under the TestClock: timeouts and the deadline", () => {
  it.effect("a deadline cuts a retry loop: DeadlineExceeded at 8000, when the next wait would pass 10 s", () =>
    Effect.gen(function*() {
      const router = yield* Router.make({ models: [model("a")], timeout: { deadline: "10 seconds" } })
      const fiber = yield* Effect.fork(router.generate(hi))
      const error = failure(yield* doneExactlyAt(fiber, 8000))
      expect(error._tag).toBe("DeadlineExceeded")
      if (error._tag !== "DeadlineExceeded") return
      expect(error.deadlineMillis).toBe(10_000)
      expect((yield* arrivals).map(([, t]) => t)).toEqual([0, 4000, 8000])
      expect(outcomes(trailOf(error))).toEqual(["retry", "retry", "failed"])
      expect(trailOf(error).map((a) => a.error?._tag)).toEqual(Array(3).fill("ServiceUnavailable"))
      expect(trailOf(error)[2]!.note).toBe("waiting 4s would pass the deadline")
    }).pipe(Effect.provide(fake({ a: [S.unavailable()] })), Effect.withRandomFixed([0.5])))

  it.effect("a deadline cuts a retry loop across models: the last model's wait would pass it", () =>
    Effect.gen(function*() {
      const router = yield* Router.make({ models: [model("a"), model("b")], timeout: { deadline: "10 seconds" } })
      const fiber = yield* Effect.fork(router.generate(hi))
      const error = failure(yield* doneExactlyAt(fiber, 8000))
      expect(error._tag).toBe("DeadlineExceeded")
      expect(yield* arrivals).toEqual([["a", 0], ["a", 4000], ["a", 8000], ["b", 8000]])
      expect(outcomes(trailOf(error))).toEqual(["retry", "retry", "fallback", "failed"])
      expect(trailOf(error)[2]?.note).toBe("waiting 4s would pass the deadline")
    }).pipe(Effect.provide(fake({ a: [S.unavailable()], b: [S.serverError()] })), Effect.withRandomFixed([0.5])))

  it.effect("a deadline cuts an in-flight hanging attempt: DeadlineExceeded at exactly 10000", () =>
    Effect.gen(function*() {
      const router = yield* Router.make({ models: [model("a"), model("b")], timeout: { deadline: "10 seconds" } })
      const fiber = yield* Effect.fork(router.generate(hi))
      const error = failure(yield* doneExactlyAt(fiber, 10_000))
      expect(error._tag).toBe("DeadlineExceeded")
      if (error._tag !== "DeadlineExceeded") return
      expect(error.model).toBe("a")
      expect(yield* arrivals).toEqual([["a", 0], ["a", 4000]])
      expect(outcomes(trailOf(error))).toEqual(["retry", "failed"])
      const cut = trailOf(error)[1]!
      expect([cut.startedAt, cut.endedAt]).toEqual([4000, 10_000])
      expect(cut.note).toBe("cut by the deadline")
      expect(cut.error?._tag).toBe("Timeout")
      // The hanging request was aborted, not left open.
      expect((yield* FakeHttpClient.FakeUpstream).closedConnections()).toBe(1)
    }).pipe(
      Effect.provide(fake({ a: [S.unavailable(), S.hang()], b: [S.succeed()] })),
      Effect.withRandomFixed([0.5])
    ))

  it.effect("per-attempt timeout on a hang: Timeout phase \"attempt\" at exactly 2000, then a retry at 6000", () =>
    Effect.gen(function*() {
      const router = yield* Router.make({ models: [model("a")], timeout: { attempt: "2 seconds" } })
      const fiber = yield* Effect.fork(router.generate(hi))
      yield* adjust(1999)
      expect(yield* arrivals).toEqual([["a", 0]])
      expect((yield* FakeHttpClient.FakeUpstream).closedConnections()).toBe(0)
      yield* adjust(1)
      expect((yield* FakeHttpClient.FakeUpstream).closedConnections()).toBe(1)
      const response = success(yield* doneExactlyAt(fiber, 6000))
      expect(yield* arrivals).toEqual([["a", 0], ["a", 6000]])
      const first = response.trail[0]!
      expect(first.outcome).toBe("retry")
      expect([first.startedAt, first.endedAt, first.waitMillis]).toEqual([0, 2000, 4000])
      expect(first.error?._tag).toBe("Timeout")
      if (first.error?._tag !== "Timeout") return
      expect(first.error.phase).toBe("attempt")
      expect(first.error.afterMillis).toBe(2000)
      expect(outcomes(response.trail)).toEqual(["retry", "success"])
    }).pipe(Effect.provide(fake({ a: [S.hang(), S.succeed()] })), Effect.withRandomFixed([0.5])))

  it.effect("per-attempt timeout covers reading the body: a non-streamed 200 that never ends times out", () =>
    Effect.gen(function*() {
      const router = yield* Router.make({ models: [model("a"), model("b")], timeout: { attempt: "3 seconds" } })
      const fiber = yield* Effect.fork(router.generate(hi))
      yield* adjust(60_000)
      const response = success(yield* Fiber.await(fiber))
      expect(yield* arrivals).toEqual([["a", 0], ["a", 7000], ["b", 7000]])
      expect(response.trail[0]!.error?._tag).toBe("Timeout")
      expect(response.trail[0]!.endedAt).toBe(3000)
    }).pipe(
      Effect.provide(fake({ a: [S.hang({ stage: "first-token" }), S.unauthorized()], b: [S.succeed()] })),
      Effect.withRandomFixed([0.5])
    ))

  it.effect("a slow but successful attempt inside the timeout is not cut", () =>
    Effect.gen(function*() {
      const router = yield* Router.make({ models: [model("a")], timeout: { attempt: "3 seconds" } })
      const fiber = yield* Effect.fork(router.generate(hi))
      // headers 1 s + first token 1 s + 2 gaps of 400 ms = 2800 ms of simulated generation.
      const response = success(yield* doneExactlyAt(fiber, 2800))
      expect(response.text).toBe("Hello from a")
      expect(response.trail[0]!.durationMillis).toBe(2800)
    }).pipe(
      Effect.provide(fake({ a: [S.succeed({ headersDelayMs: 1000, firstTokenDelayMs: 1000, chunkDelayMs: 400 })] }))
    ))
})

describe("Router under the TestClock: fallback", () => {
  it.effect("falls back in order a, b, c", () =>
    Effect.gen(function*() {
      const router = yield* Router.make({ models: [model("a"), model("b"), model("c")] })
      const response = yield* router.generate(hi)
      expect(yield* arrivals).toEqual([["a", 0], ["b", 0], ["c", 0]])
      expect(response.model).toBe("c")
      expect(outcomes(response.trail)).toEqual(["fallback", "fallback", "success"])
      expect(response.trail.map((a) => a.error?._tag)).toEqual(["AuthenticationFailed", "ModelNotFound", undefined])
    }).pipe(Effect.provide(fake({ a: [S.unauthorized()], b: [S.notFound()], c: [S.succeed()] }))))

  it.effect("BadRequest stops at once: no request reaches the next model", () =>
    Effect.gen(function*() {
      const router = yield* Router.make({ models: [model("a"), model("b")] })
      const error = yield* Effect.flip(router.generate(hi))
      expect(error._tag).toBe("BadRequest")
      expect(yield* arrivals).toEqual([["a", 0]])
      expect(outcomes(trailOf(error))).toEqual(["failed"])
    }).pipe(Effect.provide(fake({ a: [S.fail(400)], b: [S.succeed()] }))))

  it.effect("fallbackOn replaces the default: only the listed failures move on", () =>
    Effect.gen(function*() {
      const router = yield* Router.make({
        models: [model("a"), model("b")],
        retry: RetryPolicy.none,
        fallbackOn: ["RateLimited", "BadRequest"],
        // Health off: the 401 would open a for its fatal cooldown, and the second call must reach it.
        health: false
      })
      // AuthenticationFailed is not listed: the call ends on a.
      const first = yield* Effect.flip(router.generate(hi))
      expect(first._tag).toBe("AuthenticationFailed")
      expect(yield* arrivals).toEqual([["a", 0]])
      // BadRequest is listed now: it moves on.
      const response = yield* router.generate(hi)
      expect(response.model).toBe("b")
      expect((yield* arrivals).map(([m]) => m)).toEqual(["a", "a", "b"])
    }).pipe(Effect.provide(fake({ a: [S.unauthorized(), S.fail(400)], b: [S.succeed()] }))))

  it.effect("per-model overrides are sent to that model only", () =>
    Effect.gen(function*() {
      const router = yield* Router.make({
        models: [model("a", { overrides: { max_tokens: 50, temperature: 0 } }), model("b")]
      })
      yield* router.generate({ ...hi, max_tokens: 10, temperature: 0.7 })
      const [a, b] = yield* FakeHttpClient.requests
      expect(a!.model).toBe("a")
      expect(a!.body).toMatchObject({ model: "a", max_tokens: 50, temperature: 0 })
      expect(b!.model).toBe("b")
      expect(b!.body).toMatchObject({ model: "b", max_tokens: 10, temperature: 0.7 })
    }).pipe(Effect.provide(fake({ a: [S.notFound()], b: [S.succeed()] }))))

  it.effect("GPTRouter models fall back the same way (406 = unavailable), with the key in ws-secret", () =>
    Effect.gen(function*() {
      const gpt = GptRouter.endpoint({ baseUrl: FakeHttpClient.gptRouterBaseUrl, apiKey: Redacted.make(KEY) })
      const router = yield* Router.make({
        models: [
          Model.make({ name: "g1", endpoint: gpt }),
          Model.make({ name: "g2", endpoint: gpt, provider: "azure" })
        ],
        retry: { maxAttempts: 2 }
      })
      const fiber = yield* Effect.fork(router.generate(hi))
      const response = success(yield* doneExactlyAt(fiber, 4000))
      const requests = yield* FakeHttpClient.requests
      expect(requests.map((r) => [r.protocol, r.model, r.receivedAt])).toEqual([
        ["gptrouter", "g1", 0],
        ["gptrouter", "g1", 4000],
        ["gptrouter", "g2", 4000]
      ])
      expect(requests[0]!.headers["ws-secret"]).toBe(KEY)
      expect(response.model).toBe("g2")
      expect(response.text).toBe("Hello from g2")
    }).pipe(Effect.provide(fake({ g2: [S.succeed()] })), Effect.withRandomFixed([0.5])))
})

describe("Router under the TestClock: trail and onAttempt", () => {
  it.effect("onAttempt receives each attempt in order, as it ends; the trail is on the response", () =>
    Effect.gen(function*() {
      const seen: Array<readonly [number, Attempt]> = []
      const router = yield* Router.make({
        models: [model("a"), model("b")],
        retry: { maxAttempts: 2 },
        onAttempt: (attempt) => Effect.map(TestClock.currentTimeMillis, (t) => void seen.push([t, attempt]))
      })
      const fiber = yield* Effect.fork(router.generate(hi))
      yield* adjust(10_000)
      const response = success(yield* Fiber.await(fiber))
      expect(seen.map(([, a]) => a)).toEqual(response.trail)
      expect(seen.map(([t, a]) => [t, a.model, a.outcome])).toEqual([
        [0, "a", "retry"],
        [4000, "a", "fallback"],
        [4000, "b", "success"]
      ])
    }).pipe(Effect.provide(fake({ a: [S.serverError()], b: [S.succeed()] })), Effect.withRandomFixed([0.5])))

  it.effect("on failure the trail is on the final error, and onAttempt saw the same attempts", () =>
    Effect.gen(function*() {
      const seen: Array<Attempt> = []
      const router = yield* Router.make({
        models: [model("a"), model("b")],
        retry: RetryPolicy.none,
        onAttempt: (attempt) => void seen.push(attempt)
      })
      const error = yield* Effect.flip(router.generate(hi))
      expect(error._tag).toBe("QuotaExhausted")
      expect(trailOf(error)).toEqual(seen)
      expect(outcomes(trailOf(error))).toEqual(["fallback", "failed"])
      expect(trailOf(error).map((a) => [a.model, a.error?._tag])).toEqual([
        ["a", "ServiceUnavailable"],
        ["b", "QuotaExhausted"]
      ])
    }).pipe(Effect.provide(fake({ a: [S.unavailable()], b: [S.quotaExhausted()] }))))

  it.effect("a failing onAttempt (throw, failure, defect) does not change the result or the timing", () =>
    Effect.gen(function*() {
      let calls = 0
      const callbacks: ReadonlyArray<(attempt: Attempt) => void | Effect.Effect<void>> = [
        () => {
          calls++
          throw new Error("boom")
        },
        () => {
          calls++
          return Effect.fail("nope") as unknown as Effect.Effect<void>
        },
        () => {
          calls++
          return Effect.die("dead")
        }
      ]
      for (const onAttempt of callbacks) {
        const upstream = yield* FakeHttpClient.FakeUpstream
        upstream.reset()
        const start = yield* now
        const router = yield* Router.make({ models: [model("a")], onAttempt })
        const fiber = yield* Effect.fork(router.generate(hi))
        yield* adjust(4000)
        const response = success(yield* Fiber.await(fiber))
        expect(response.text).toBe("Hello from a")
        expect(outcomes(response.trail)).toEqual(["retry", "success"])
        expect((yield* arrivals).map(([, t]) => t - start)).toEqual([0, 4000])
      }
      expect(calls).toBe(6)
    }).pipe(Effect.provide(fake({ a: [S.unavailable(), S.succeed()] })), Effect.withRandomFixed([0.5])))
})

describe("Router under the TestClock: streaming", () => {
  it.effect("first-token timeout: Timeout phase \"first-token\" at 1000, retried at 5000, then the next model streams", () =>
    Effect.gen(function*() {
      const router = yield* Router.make({
        models: [model("a"), model("b")],
        retry: { maxAttempts: 2 },
        timeout: { firstToken: "1 second" }
      })
      const fiber = yield* Effect.fork(collectText(router.stream(hi)))
      const chunks = success(yield* doneExactlyAt(fiber, 6000))
      expect(yield* arrivals).toEqual([["a", 0], ["a", 5000], ["b", 6000]])
      expect(textOf(chunks)).toBe("streamed by b")
      const started = chunks[0]!
      expect(started._tag).toBe("Started")
      if (started._tag !== "Started") return
      expect(started.model).toBe("b")
      expect(outcomes(started.trail)).toEqual(["retry", "fallback", "success"])
      expect(startedAt(started.trail)).toEqual([0, 5000, 6000])
      expect(started.trail.map((a) => a.endedAt)).toEqual([1000, 6000, 6000])
      for (const a of started.trail.slice(0, 2)) {
        expect(a.error?._tag).toBe("Timeout")
        if (a.error?._tag === "Timeout") {
          expect(a.error.phase).toBe("first-token")
          expect(a.error.afterMillis).toBe(1000)
        }
      }
      expect((yield* FakeHttpClient.FakeUpstream).closedConnections()).toBe(2)
    }).pipe(
      Effect.provide(fake({ a: [S.succeed({ firstTokenDelayMs: 5000 })], b: [S.succeed({ text: "streamed by b" })] })),
      Effect.withRandomFixed([0.5])
    ))

  it.effect("keep-alives do not count as the first token", () =>
    Effect.gen(function*() {
      const router = yield* Router.make({
        models: [model("a"), model("b")],
        retry: RetryPolicy.none,
        timeout: { firstToken: "1 second" }
      })
      const fiber = yield* Effect.fork(collectText(router.stream(hi)))
      const chunks = success(yield* doneExactlyAt(fiber, 1000))
      expect(textOf(chunks)).toBe("Hello from b")
      expect(yield* arrivals).toEqual([["a", 0], ["b", 1000]])
    }).pipe(Effect.provide(
      FakeHttpClient.layer({
        script: { a: [S.hang({ stage: "first-token" })], b: [S.succeed()] },
        apiKey: KEY,
        wire: { keepAliveEveryMs: 100 }
      })
    )))

  it.effect("a stall after 2 chunks: StreamInterrupted \"stall\" at exactly 2100 with the text of those chunks", () =>
    Effect.gen(function*() {
      const router = yield* Router.make({ models: [model("a"), model("b")], timeout: { stall: "2 seconds" } })
      const received: Array<ChatChunk> = []
      const fiber = yield* Effect.fork(Stream.runForEach(router.stream(hi), (c) => Effect.sync(() => received.push(c))))
      yield* adjust(100)
      expect(textOf(received)).toBe("Hello fr")
      const error = failure(yield* doneExactlyAt(fiber, 2100))
      expect(error._tag).toBe("StreamInterrupted")
      if (error._tag !== "StreamInterrupted") return
      expect(error.reason).toBe("stall")
      expect(error.text).toBe("Hello fr")
      expect(error.model).toBe("a")
      // Started and the two text deltas.
      expect(error.chunks).toBe(3)
      expect(received.map((c) => c._tag)).toEqual(["Started", "TextDelta", "TextDelta"])
      expect(error.cause?._tag).toBe("Timeout")
      if (error.cause?._tag === "Timeout") {
        expect(error.cause.phase).toBe("stall")
        expect(error.cause.afterMillis).toBe(2000)
      }
      expect(outcomes(trailOf(error))).toEqual(["success"])
      // Never sent to another model once content started.
      expect(yield* arrivals).toEqual([["a", 0]])
    }).pipe(Effect.provide(fake({ a: [S.stall({ afterChunks: 2, chunkDelayMs: 100 })], b: [S.succeed()] }))))

  it.effect("503, 503, then a stream: retried before the first content at 0, 4000, 8000", () =>
    Effect.gen(function*() {
      const router = yield* Router.make({ models: [model("a")] })
      const fiber = yield* Effect.fork(collectText(router.stream(hi)))
      const chunks = success(yield* doneExactlyAt(fiber, 8000))
      expect((yield* arrivals).map(([, t]) => t)).toEqual([0, 4000, 8000])
      expect(textOf(chunks)).toBe("third time lucky")
      const started = chunks[0]!
      if (started._tag !== "Started") throw new Error("expected Started first")
      expect(outcomes(started.trail)).toEqual(["retry", "retry", "success"])
      expect(waits(started.trail)).toEqual([4000, 4000])
      expect(chunks.at(-1)?._tag).toBe("Usage")
    }).pipe(
      Effect.provide(fake({ a: [S.unavailable(), S.unavailable(), S.succeed({ text: "third time lucky" })] })),
      Effect.withRandomFixed([0.5])
    ))

  it.effect("a cut before content is retried; a cut after content is StreamInterrupted \"cut\"", () =>
    Effect.gen(function*() {
      const router = yield* Router.make({ models: [model("a")], retry: { maxAttempts: 3 } })
      const fiber = yield* Effect.fork(Effect.either(collectText(router.stream(hi))))
      yield* adjust(60_000)
      const result = success(yield* Fiber.await(fiber))
      expect(result._tag).toBe("Left")
      if (result._tag !== "Left") return
      const error = result.left
      expect(error._tag).toBe("StreamInterrupted")
      if (error._tag !== "StreamInterrupted") return
      expect(error.reason).toBe("cut")
      expect(error.text).toBe("Hell")
      expect(error.cause?._tag).toBe("NetworkError")
      expect((yield* arrivals).map(([, t]) => t)).toEqual([0, 4000])
      expect(trailOf(error)[0]!.error?._tag).toBe("NetworkError")
    }).pipe(
      Effect.provide(fake({ a: [S.cut({ afterChunks: 0 }), S.cut({ afterChunks: 1 })] })),
      Effect.withRandomFixed([0.5])
    ))

  it.effect("a deadline bounds the routing of a stream: a hanging first attempt is cut at the deadline", () =>
    Effect.gen(function*() {
      const router = yield* Router.make({ models: [model("a")], timeout: { deadline: "3 seconds" } })
      const fiber = yield* Effect.fork(collectText(router.stream(hi)))
      const error = failure(yield* doneExactlyAt(fiber, 3000))
      expect(error._tag).toBe("DeadlineExceeded")
    }).pipe(Effect.provide(fake({ a: [S.hang({ stage: "first-token" })] }))))
})

describe("Router under the TestClock: typed errors", () => {
  const layer = (script: S.Script) =>
    // Health off: the second call must reach the model the first one's Retry-After would otherwise keep it from.
    Router.layer({ models: [model("a")], retry: RetryPolicy.none, health: false }).pipe(
      Layer.provideMerge(fake(script))
    )

  it.effect("Effect.catchTag(\"RateLimited\") on Router.generate", () =>
    Effect.gen(function*() {
      const handled = Router.generate(hi).pipe(
        Effect.catchTag("RateLimited", (e) =>
          Effect.succeed(`rate limited on ${e.model}, retry in ${e.retryAfterMillis}`))
      )
      // Type level: RateLimited is gone from the error channel, the rest stays.
      const typed: Effect.Effect<
        ChatResponse | string,
        Exclude<RouterError.RouterError, RouterError.RateLimited>,
        Router.Router
      > = handled
      expect(yield* typed).toBe("rate limited on a, retry in 3000")
      // Another failure mode passes through the handler untouched.
      const other = yield* Effect.flip(handled)
      expect(other._tag).toBe("ServiceUnavailable")
    }).pipe(Effect.provide(layer({ a: [S.rateLimited({ retryAfter: 3 }), S.unavailable()] }))))
})

describe("FakeHttpClient", () => {
  it.effect("records the Clock instant, path, headers and body of each request", () =>
    Effect.gen(function*() {
      yield* adjust(1234)
      const router = yield* Router.make({ models: [model("a")] })
      yield* router.generate(hi)
      const [request] = yield* FakeHttpClient.requests
      expect(request!.receivedAt).toBe(1234)
      expect(request!.path).toBe("/v1/chat/completions")
      expect(request!.headers["authorization"]).toBe(`Bearer ${KEY}`)
      expect(request!.body).toMatchObject({ model: "a", messages: [{ role: "user", content: "hi" }] })
      expect((yield* FakeHttpClient.FakeUpstream).attempts("a")).toBe(1)
    }).pipe(Effect.provide(fake({ a: [S.succeed()] }))))

  it.effect("checks the key like the loopback server: a wrong key is a 401", () =>
    Effect.gen(function*() {
      const wrong = OpenAiCompatible.endpoint({
        baseUrl: FakeHttpClient.openAiBaseUrl,
        apiKey: Redacted.make("sk-wrong-000000")
      })
      const router = yield* Router.make({ models: [Model.make({ name: "a", endpoint: wrong })] })
      const error = yield* Effect.flip(router.generate(hi))
      expect(error._tag).toBe("AuthenticationFailed")
      expect(JSON.stringify(error)).not.toContain("sk-wrong-000000")
    }).pipe(Effect.provide(fake({ a: [S.succeed()] }))))

  it.effect("each layer build starts a fresh script", () =>
    Effect.gen(function*() {
      const layer = fake({ a: [S.unavailable(), S.succeed()] })
      const run = Effect.gen(function*() {
        const router = yield* Router.make({ models: [model("a")], retry: RetryPolicy.none })
        return yield* Effect.either(router.generate(hi))
      }).pipe(Effect.provide(layer))
      expect((yield* run)._tag).toBe("Left")
      expect((yield* run)._tag).toBe("Left")
    }))

  it.effect("the body's waits are Effect sleeps: a stream advances only with the TestClock", () =>
    Effect.gen(function*() {
      const router = yield* Router.make({ models: [model("a")] })
      const received: Array<ChatChunk> = []
      const fiber = yield* Effect.fork(
        Stream.runForEach(router.stream(hi), (c) => Effect.sync(() => received.push(c)))
      )
      yield* adjust(499)
      expect(received).toHaveLength(0)
      yield* adjust(1)
      expect(textOf(received)).toBe("Hell")
      yield* adjust(250)
      expect(textOf(received)).toBe("Hello fr")
      yield* adjust(250)
      expect(textOf(received)).toBe("Hello from a")
      yield* Fiber.join(fiber)
    }).pipe(Effect.provide(fake({ a: [S.succeed({ firstTokenDelayMs: 500, chunkDelayMs: 250 })] }))))
})

describe("Router under the TestClock: what the peers' users reported (../shared/research/peers.md)", () => {
  it.effect("a stream longer than the attempt timeout and the deadline is not cut: 10 s of chunks (openai-node #419)", () =>
    Effect.gen(function*() {
      const router = yield* Router.make({
        models: [model("a"), model("b")],
        retry: RetryPolicy.none,
        timeout: { attempt: "1 second", deadline: "3 seconds", stall: "2 seconds" }
      })
      const fiber = yield* Effect.fork(collectText(router.stream(hi)))
      const chunks = success(yield* doneExactlyAt(fiber, 9000))
      expect(textOf(chunks)).toBe("x".repeat(10))
      expect(chunks.at(-1)?._tag).toBe("Usage")
      expect(yield* arrivals).toEqual([["a", 0]])
    }).pipe(
      Effect.provide(fake({ a: [S.succeed({ chunks: Array(10).fill("x"), chunkDelayMs: 1000 })], b: [S.succeed()] }))
    ))

  it.effect("an in-band quota error before content is not retried: the next model at once, the key's breaker open (AI SDK #21345)", () =>
    Effect.gen(function*() {
      const router = yield* Router.make({ models: [model("a"), model("b")] })
      const fiber = yield* Effect.fork(collectText(router.stream(hi)))
      yield* adjust(0)
      const chunks = success(yield* Fiber.await(fiber))
      expect(textOf(chunks)).toBe("Hello from b")
      expect(yield* arrivals).toEqual([["a", 0], ["b", 0]])
      const started = chunks[0]!
      if (started._tag !== "Started") throw new Error("expected Started first")
      expect(outcomes(started.trail)).toEqual(["fallback", "success"])
      expect(started.trail[0]!.error?._tag).toBe("QuotaExhausted")
      expect((yield* router.health)[0]).toMatchObject({ state: "open", reason: "QuotaExhausted" })
    }).pipe(Effect.provide(fake({
      a: [S.inBandError({ afterChunks: 0, type: "insufficient_quota", message: "You exceeded your current quota" })],
      b: [S.succeed()]
    }))))

  it.effect("tool calls under way when a stream is cut are kept in StreamInterrupted, as received (AI SDK #18667)", () =>
    Effect.gen(function*() {
      const router = yield* Router.make({ models: [model("a"), model("b")] })
      const fiber = yield* Effect.fork(collectText(router.stream(hi)))
      yield* adjust(0)
      const error = failure(yield* Fiber.await(fiber))
      expect(error._tag).toBe("StreamInterrupted")
      if (error._tag !== "StreamInterrupted") return
      expect(error.reason).toBe("cut")
      expect(error.toolCalls).toEqual([{ index: 0, id: "call_1", name: "get_weather", arguments: "{\"city\":" }])
      expect(yield* arrivals).toEqual([["a", 0]])
    }).pipe(Effect.provide(fake({
      a: [
        S.cut({ toolCalls: [{ id: "call_1", name: "get_weather", arguments: "{\"city\":\"Paris\"}" }], afterChunks: 2 })
      ],
      b: [S.succeed()]
    }))))

  it.effect("fallbackOn applies to streams: fallbackOn [] ends the stream with a's 503, b never asked (LiteLLM #19077)", () =>
    Effect.gen(function*() {
      const router = yield* Router.make({ models: [model("a"), model("b")], retry: RetryPolicy.none, fallbackOn: [] })
      const fiber = yield* Effect.fork(collectText(router.stream(hi)))
      yield* adjust(0)
      const error = failure(yield* Fiber.await(fiber))
      expect(error._tag).toBe("ServiceUnavailable")
      expect(yield* arrivals).toEqual([["a", 0]])
    }).pipe(Effect.provide(fake({ a: [S.unavailable()], b: [S.succeed()] }))))

  for (const random of [0, 0.999]) {
    it.effect(`jitter never shortens a Retry-After: the retry at exactly 7000 with the random fixed at ${random} (LiteLLM #20722)`, () =>
      Effect.gen(function*() {
        const router = yield* Router.make({
          models: [model("a")],
          retry: { initialDelay: "4 seconds", minDelay: 0, jitter: 0.5, maxAttempts: 2 }
        })
        const fiber = yield* Effect.fork(router.generate(hi))
        const response = success(yield* doneExactlyAt(fiber, 7000))
        expect(yield* arrivals).toEqual([["a", 0], ["a", 7000]])
        expect(waits(response.trail)).toEqual([7000])
      }).pipe(
        Effect.provide(fake({ a: [S.rateLimited({ retryAfter: 7 }), S.succeed()] })),
        Effect.withRandomFixed([random])
      ))
  }
})

describe("Router under the TestClock: the answer check (accept; Portkey #1205)", () => {
  const yes = (response: ChatResponse) => response.text === "yes" || `wanted "yes", got "${response.text}"`

  it.effect("a rejected answer falls back at once; the reason and the answer are in the trail; health is untouched", () =>
    Effect.gen(function*() {
      const router = yield* Router.make({
        models: [model("a"), model("b")],
        accept: yes,
        health: { consecutiveFailures: 1 }
      })
      const response = yield* router.generate(hi)
      expect(response.model).toBe("b")
      expect(response.text).toBe("yes")
      expect(yield* arrivals).toEqual([["a", 0], ["b", 0]])
      expect(outcomes(response.trail)).toEqual(["fallback", "success"])
      const rejected = response.trail[0]!.error
      expect(rejected?._tag).toBe("ResponseRejected")
      if (rejected?._tag !== "ResponseRejected") return
      expect(rejected.reason).toBe("wanted \"yes\", got \"I cannot help with that\"")
      expect(rejected.body).toBe("I cannot help with that")
      expect(rejected.message).toContain("answer rejected")
      // One failure in a row would open a's breaker; a rejected answer is not a failure of the deployment.
      expect((yield* router.health)[0]).toMatchObject({ state: "closed" })
    }).pipe(
      Effect.provide(fake({ a: [S.succeed({ text: "I cannot help with that" })], b: [S.succeed({ text: "yes" })] }))
    ))

  it.effect("retryOn naming ResponseRejected asks the same model again after the policy's wait", () =>
    Effect.gen(function*() {
      const router = yield* Router.make({
        models: [model("a"), model("b")],
        accept: yes,
        retry: { ...every100ms, retryOn: ["ResponseRejected"] }
      })
      const fiber = yield* Effect.fork(router.generate(hi))
      const response = success(yield* doneExactlyAt(fiber, 100))
      expect(response.model).toBe("a")
      expect(yield* arrivals).toEqual([["a", 0], ["a", 100]])
      expect(outcomes(response.trail)).toEqual(["retry", "success"])
    }).pipe(Effect.provide(fake({ a: [S.succeed({ text: "no" }), S.succeed({ text: "yes" })], b: [S.succeed()] }))))

  it.effect("every answer rejected: the call fails with the last ResponseRejected and the whole trail", () =>
    Effect.gen(function*() {
      const router = yield* Router.make({ models: [model("a"), model("b")], accept: () => false })
      const error = yield* Effect.flip(router.generate(hi))
      expect(error._tag).toBe("ResponseRejected")
      expect(error._tag === "ResponseRejected" && error.reason).toBe("the check returned false")
      expect(outcomes(trailOf(error))).toEqual(["fallback", "failed"])
    }).pipe(Effect.provide(fake({ a: [S.succeed()], b: [S.succeed()] }))))

  it.effect("a check that throws rejects with what it threw", () =>
    Effect.gen(function*() {
      const router = yield* Router.make({
        models: [model("a"), model("b")],
        accept: (response) => {
          if (response.model === "a") throw new Error("boom")
          return true
        }
      })
      const response = yield* router.generate(hi)
      expect(response.model).toBe("b")
      const rejected = response.trail[0]!.error
      expect(rejected?._tag === "ResponseRejected" && rejected.reason).toBe("the check threw: boom")
    }).pipe(Effect.provide(fake({ a: [S.succeed()], b: [S.succeed()] }))))

  it.effect("an effectful check runs within the attempt: rejected after its 100 ms, b at 100; one that dies rejects", () =>
    Effect.gen(function*() {
      const router = yield* Router.make({
        models: [model("a"), model("b"), model("c")],
        accept: (response) =>
          response.model === "a"
            ? Effect.as(Effect.sleep("100 millis"), "flagged by moderation")
            : response.model === "b"
            ? Effect.die(new Error("moderation is down"))
            : Effect.succeed(true)
      })
      const fiber = yield* Effect.fork(router.generate(hi))
      const response = success(yield* doneExactlyAt(fiber, 100))
      expect(response.model).toBe("c")
      expect(yield* arrivals).toEqual([["a", 0], ["b", 100], ["c", 100]])
      expect(response.trail.map((a) => a.error?._tag === "ResponseRejected" ? a.error.reason : a.outcome)).toEqual([
        "flagged by moderation",
        "the check threw: moderation is down",
        "success"
      ])
    }).pipe(Effect.provide(fake({ a: [S.succeed()], b: [S.succeed()], c: [S.succeed()] }))))

  it.effect("streams are not checked: their content is delivered as it arrives", () =>
    Effect.gen(function*() {
      const router = yield* Router.make({ models: [model("a"), model("b")], accept: () => false })
      const chunks = yield* Stream.runCollect(router.stream(hi))
      expect(textOf(chunks)).toBe("Hello from a")
      expect(yield* arrivals).toEqual([["a", 0]])
    }).pipe(Effect.provide(fake({ a: [S.succeed()], b: [S.succeed()] }))))

  it.effect("an accept that is not a function fails Router.make with RouterConfigError", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Router.make({ models: [model("a")], accept: "yes" as never }))
      expect([error._tag, error.option]).toEqual(["RouterConfigError", "accept"])
    }).pipe(Effect.provide(fake({}))))
})
