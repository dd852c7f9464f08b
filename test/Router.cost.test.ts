/**
 * Cost and budgets, under the TestClock on the FakeHttpClient: the cost of a response and of its serving attempt from
 * the model's price; a per-call budget that skips a model whose estimate exceeds it; a budget per period that fails
 * calls with `BudgetExceeded` once spent and resets with the period; streams charged at their end; bad budgets.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as Health from "../src/Health.js"
import * as Model from "../src/Model.js"
import * as OpenAiCompatible from "../src/OpenAiCompatible.js"
import * as RetryPolicy from "../src/RetryPolicy.js"
import * as Router from "../src/Router.js"
import type * as RouterError from "../src/RouterError.js"
import * as FakeHttpClient from "../src/testing/FakeHttpClient.js"
import * as S from "../src/testing/UpstreamScript.js"

const KEY = "sk-cost-test-0123456789"
const endpoint = OpenAiCompatible.endpoint({ baseUrl: FakeHttpClient.openAiBaseUrl, apiKey: Redacted.make(KEY) })
const fake = (script: S.Script) => FakeHttpClient.layer({ script, apiKey: KEY })
const hi = { messages: [{ role: "user" as const, content: "hi" }] }
// $2 per million input tokens, $8 per million output tokens; usage 1 000 + 500: $0.002 + $0.004.
const price = { input: 2, output: 8 }
const usage = { promptTokens: 1000, completionTokens: 500 }
const served = Effect.map(FakeHttpClient.requests, (rs) => rs.map((r) => r.model))

describe("cost", () => {
  it.effect("a response costs its usage at the serving model's price; the trail's success says the same", () =>
    Effect.gen(function*() {
      const r = yield* Router.make({
        models: [Model.make({ name: "a", endpoint, price }), Model.make({ name: "free", endpoint })],
        retry: RetryPolicy.none
      })
      const response = yield* r.generate(hi)
      expect(response.cost).toBeCloseTo(0.006, 12)
      expect(response.trail[0]!.cost).toBeCloseTo(0.006, 12)
      const free = yield* r.generate(hi)
      expect(free.model).toBe("free")
      expect(free.cost).toBeUndefined()
    }).pipe(Effect.provide(fake({ a: [S.succeed({ usage }), S.unavailable()], free: [S.succeed({ usage })] }))))

  it.effect("budget.perCall: a model whose estimate exceeds it is skipped, the trail saying so", () =>
    Effect.gen(function*() {
      const r = yield* Router.make({
        models: [
          Model.make({ name: "pricey", endpoint, price: { input: 10, output: 100 } }),
          Model.make({ name: "cheap", endpoint, price: { input: 0.1, output: 0.4 } })
        ],
        retry: RetryPolicy.none,
        budget: { perCall: 0.05 }
      })
      // max_tokens 1 000 at $100 per million: $0.1 on pricey, over $0.05; $0.0004 on cheap.
      const response = yield* r.generate({ ...hi, max_tokens: 1000 })
      expect(response.model).toBe("cheap")
      expect(response.trail[0]).toMatchObject({ outcome: "skipped", model: "pricey" })
      expect(response.trail[0]!.note).toMatch(/^its estimated cost \(0\.1\d*\) exceeds the per-call budget \(0\.05\)$/)
      expect(yield* served).toEqual(["cheap"])
    }).pipe(Effect.provide(fake({ pricey: [S.succeed()], cheap: [S.succeed()] }))))
})

describe("budget per period", () => {
  const router = Router.make({
    models: [Model.make({ name: "a", endpoint, price })],
    retry: RetryPolicy.none,
    budget: { perPeriod: { limit: 0.01, period: "1 hour", name: "team" } }
  })

  it.effect("once a period's spending reaches the limit, calls fail with BudgetExceeded until the next period", () =>
    Effect.gen(function*() {
      const r = yield* router
      // $0.006 each: the first two go (0.006, then 0.012 ≥ 0.01), the third is refused before sending.
      yield* r.generate(hi)
      yield* r.generate(hi)
      const error = (yield* Effect.flip(r.generate(hi))) as RouterError.BudgetExceeded
      expect(error._tag).toBe("BudgetExceeded")
      expect(error).toMatchObject({ budget: "team", limit: 0.01, resetsAt: 3_600_000 })
      expect(error.spent).toBeCloseTo(0.012, 12)
      expect(error.message).toContain("resets at 1970-01-01T01:00:00.000Z")
      expect(yield* served).toEqual(["a", "a"])
      // The next period starts at 1 h (aligned on the epoch).
      yield* TestClock.adjust(Duration.millis(3_599_999))
      expect((yield* Effect.flip(r.generate(hi)))._tag).toBe("BudgetExceeded")
      yield* TestClock.adjust(Duration.millis(1))
      expect((yield* r.generate(hi)).model).toBe("a")
    }).pipe(Effect.provide(fake({ a: [S.succeed({ usage })] }))))

  it.effect("routers sharing a store and a budget's name share its spending; a stream is charged at its end", () =>
    Effect.gen(function*() {
      const one = yield* router
      const two = yield* router
      yield* Stream.runDrain(one.stream(hi))
      yield* two.generate(hi)
      expect((yield* Effect.flip(one.generate(hi)))._tag).toBe("BudgetExceeded")
    }).pipe(Effect.provide(fake({ a: [S.succeed({ usage })] })), Effect.provide(Health.layerMemory)))

  it.each([
    [{ perCall: 0 }, "budget.perCall"],
    [{ perPeriod: { limit: -1, period: "1 day" } }, "budget.perPeriod.limit"],
    [{ perPeriod: { limit: 10, period: "10 millis" } }, "budget.perPeriod.period"]
  ] as ReadonlyArray<readonly [NonNullable<Router.Options["budget"]>, string]>)(
    "%o is a RouterConfigError naming %s",
    (budget, option) => {
      const error = Effect.runSync(
        Effect.flip(Router.make({ models: [Model.make({ name: "a", endpoint })], budget })).pipe(
          Effect.provide(FakeHttpClient.layer({ script: {} }))
        )
      ) as RouterError.RouterConfigError
      expect(error.option).toBe(option)
    }
  )

  it("a bad price is a RouterConfigError naming it", () => {
    const error = Effect.runSync(
      Effect.flip(Router.make({ models: [Model.make({ name: "a", endpoint, price: { input: -1, output: 1 } })] })).pipe(
        Effect.provide(FakeHttpClient.layer({ script: {} }))
      )
    ) as RouterError.RouterConfigError
    expect(error.option).toBe("models[0].price.input")
  })
})
