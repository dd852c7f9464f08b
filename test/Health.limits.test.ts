/**
 * Deployment limits through the router, under the TestClock on the FakeHttpClient: a deployment at a limit is skipped
 * (the trail names the limit and when there is room) or waited for; a stream holds its slot until it ends; the token
 * estimate is corrected to the response's usage; a cancelled call frees its slot; bad limits are configuration errors.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import type * as Attempt from "../src/Attempt.js"
import type * as Health from "../src/Health.js"
import * as Model from "../src/Model.js"
import * as OpenAiCompatible from "../src/OpenAiCompatible.js"
import * as RetryPolicy from "../src/RetryPolicy.js"
import * as Router from "../src/Router.js"
import type * as RouterError from "../src/RouterError.js"
import * as FakeHttpClient from "../src/testing/FakeHttpClient.js"
import * as S from "../src/testing/UpstreamScript.js"

const KEY = "sk-limits-test-0123456789"
const endpoint = OpenAiCompatible.endpoint({ baseUrl: FakeHttpClient.openAiBaseUrl, apiKey: Redacted.make(KEY) })
const hi = { messages: [{ role: "user" as const, content: "hi" }] }
const fake = (script: S.Script) => FakeHttpClient.layer({ script, apiKey: KEY })

const arrivals = Effect.map(FakeHttpClient.requests, (rs) => rs.map((r) => `${r.model}@${r.receivedAt}`))
const outcomes = (trail: ReadonlyArray<Attempt.Attempt>) => trail.map((a) => `${a.model}:${a.outcome}`)
const adjust = (millis: number) => TestClock.adjust(Duration.millis(millis))

/** `a` with these limits, then `b` without (unless `only`). */
const router = (limits: Health.Limits, health: Health.Options = {}, only = false) =>
  Router.make({
    models: only
      ? [Model.make({ name: "a", endpoint, limits })]
      : [Model.make({ name: "a", endpoint, limits }), Model.make({ name: "b", endpoint })],
    retry: RetryPolicy.none,
    health
  })

describe("limits: a deployment at a limit is skipped, the trail naming the limit", () => {
  it.effect("requests per minute: the third call in the same instant goes to b; a takes calls again as it refills", () =>
    Effect.gen(function*() {
      const r = yield* router({ requestsPerMinute: 2 })
      expect((yield* r.generate(hi)).model).toBe("a")
      expect((yield* r.generate(hi)).model).toBe("a")
      const third = yield* r.generate(hi)
      expect(outcomes(third.trail)).toEqual(["a:skipped", "b:success"])
      expect(third.trail[0]).toMatchObject({
        limit: "requests",
        reopensAt: 30_000,
        note: "at its limit of 2 requests per minute; reopens in 30s"
      })
      expect((yield* r.health)[0]).toMatchObject({ remainingRequests: 0, limits: { requestsPerMinute: 2 } })
      yield* adjust(29_999)
      expect((yield* r.generate(hi)).model).toBe("b")
      yield* adjust(1)
      expect((yield* r.generate(hi)).model).toBe("a")
      expect((yield* arrivals).filter((x) => x.startsWith("a@"))).toEqual(["a@0", "a@0", "a@30000"])
    }).pipe(Effect.provide(fake({ a: [S.succeed()], b: [S.succeed()] }))))

  it.effect("every deployment at its limit: the call waits for room within maxWait, or fails at once naming it", () =>
    Effect.gen(function*() {
      const waiting = yield* router({ requestsPerMinute: 1 }, { maxWait: "1 minute" }, true)
      expect((yield* waiting.generate(hi)).model).toBe("a")
      const second = yield* Effect.fork(waiting.generate(hi))
      yield* adjust(60_000)
      const served = yield* Fiber.join(second)
      expect(outcomes(served.trail)).toEqual(["a:skipped", "a:success"])
      expect(served.trail[1]!.startedAt).toBe(60_000)

      const hurried = yield* router({ requestsPerMinute: 1 }, { maxWait: false }, true)
      // A router of its own has a table of its own: its first call goes.
      yield* hurried.generate(hi)
      const error = (yield* Effect.flip(hurried.generate(hi))) as RouterError.NoModelAvailable
      expect(error._tag).toBe("NoModelAvailable")
      expect(error.reopensAt).toBe(120_000)
      expect(error.trail?.map((a) => a.limit)).toEqual(["requests"])
    }).pipe(Effect.provide(fake({ a: [S.succeed()] }))))

  it.effect("tokens per minute: the estimate (text / 4 + max_tokens) is reserved, then corrected to the usage", () =>
    Effect.gen(function*() {
      // Estimate: "hi" is 1 token, plus max_tokens 50: 51. The answers report 5 + 6 = 11.
      const r = yield* router({ tokensPerMinute: 100 })
      const ask = { ...hi, max_tokens: 50 }
      expect((yield* r.generate(ask)).model).toBe("a")
      expect((yield* r.health)[0]).toMatchObject({ remainingTokens: 89 })
      // Without the correction only 49 would be left and this call would skip a.
      expect((yield* r.generate(ask)).model).toBe("a")
      expect((yield* r.health)[0]).toMatchObject({ remainingTokens: 78 })
      const big = yield* r.generate({ ...hi, max_tokens: 80 })
      expect(outcomes(big.trail)).toEqual(["a:skipped", "b:success"])
      expect(big.trail[0]).toMatchObject({ limit: "tokens", reopensAt: 1800 })
      expect(big.trail[0]!.note).toBe("at its limit of 100 tokens per minute (this request: about 81); reopens in 1.8s")
    }).pipe(Effect.provide(fake({
      a: [S.succeed({ usage: { promptTokens: 5, completionTokens: 6 } })],
      b: [S.succeed()]
    }))))
})

describe("limits: concurrency counts a request until it ends", () => {
  it.effect("a stream holds a's only slot until it is read to its end; meanwhile calls go to b", () =>
    Effect.gen(function*() {
      const r = yield* router({ maxConcurrent: 1, tokensPerMinute: 600 })
      const streaming = yield* Effect.fork(Stream.runCollect(r.stream({ ...hi, max_tokens: 99 })))
      // Its first content has arrived (at 100), the rest has not.
      yield* adjust(150)
      const during = yield* r.generate(hi)
      expect(outcomes(during.trail)).toEqual(["a:skipped", "b:success"])
      expect(during.trail[0]).toMatchObject({
        limit: "concurrency",
        note: "at its concurrency limit (1 in flight); reopens in 250ms"
      })
      expect((yield* r.health)[0]).toMatchObject({ inFlight: 1, state: "closed" })
      yield* adjust(1000)
      yield* Fiber.join(streaming)
      // Its end also corrected the 100 tokens it reserved to the 13 its usage reports (10 + 3): 600 - 100 + 87, and
      // 11.5 refilled in 1150 ms.
      expect((yield* r.health)[0]).toMatchObject({ inFlight: 0, remainingTokens: 598 })
      expect((yield* r.generate(hi)).model).toBe("a")
    }).pipe(Effect.provide(fake({
      a: [
        S.succeed({ chunks: ["one", "two", "three"], firstTokenDelayMs: 100, chunkDelayMs: 400 }),
        S.succeed()
      ],
      b: [S.succeed()]
    }))))

  it.effect("a stream cut after content counts against a and frees its slot; a cancelled call frees its slot", () =>
    Effect.gen(function*() {
      const r = yield* router({ maxConcurrent: 1 }, { consecutiveFailures: 2, failureRate: false })
      const cut = yield* Effect.flip(Stream.runDrain(r.stream(hi)))
      expect(cut._tag).toBe("StreamInterrupted")
      expect((yield* r.health)[0]).toMatchObject({ inFlight: 0, consecutiveFailures: 1 })
      const hanging = yield* Effect.fork(r.generate(hi))
      yield* adjust(10)
      expect((yield* r.health)[0]).toMatchObject({ inFlight: 1 })
      yield* Fiber.interrupt(hanging)
      expect((yield* r.health)[0]).toMatchObject({ inFlight: 0, consecutiveFailures: 1 })
      expect((yield* r.generate(hi)).model).toBe("a")
    }).pipe(Effect.provide(fake({ a: [S.cut({ afterChunks: 2 }), S.hang(), S.succeed()], b: [S.succeed()] }))))
})

describe("limits: bad limits are configuration errors", () => {
  it.each([
    [{ maxConcurrent: 0 }, "models[0].limits.maxConcurrent"],
    [{ requestsPerMinute: 1.5 }, "models[0].limits.requestsPerMinute"],
    [{ tokensPerMinute: -100 }, "models[0].limits.tokensPerMinute"],
    [{ tokensPerMinute: Number.NaN }, "models[0].limits.tokensPerMinute"],
    [{ rpm: 10 }, "models[0].limits.rpm"]
  ] as ReadonlyArray<readonly [Health.Limits, string]>)("%o is a RouterConfigError naming %s", (limits, option) => {
    const error = Effect.runSync(
      Effect.flip(Router.make({ models: [Model.make({ name: "a", endpoint, limits })] })).pipe(
        Effect.provide(FakeHttpClient.layer({ script: {} }))
      )
    ) as RouterError.RouterConfigError
    expect(error._tag).toBe("RouterConfigError")
    expect(error.option).toBe(option)
  })

  it("limits with health: false: nothing would count them, so the router says so", () => {
    const error = Effect.runSync(
      Effect.flip(Router.make({
        models: [
          Model.make({ name: "a", endpoint }),
          Model.make({ name: "b", endpoint, limits: { maxConcurrent: 2 } })
        ],
        health: false
      })).pipe(Effect.provide(FakeHttpClient.layer({ script: {} })))
    ) as RouterError.RouterConfigError
    expect(error.option).toBe("models[1].limits")
    expect(error.message).toContain("health")
  })
})
