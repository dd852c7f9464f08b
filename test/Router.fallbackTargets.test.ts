/**
 * Fallback targets by failure mode, on the FakeHttpClient: a request that does not fit a model's declared context
 * window skips it; after a `ContextLengthExceeded`, models whose window is not larger are skipped; a content filter's
 * refusal moves to the content-policy list instead of the rest of the priority list.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type * as Attempt from "../src/Attempt.js"
import * as Model from "../src/Model.js"
import * as OpenAiCompatible from "../src/OpenAiCompatible.js"
import * as RetryPolicy from "../src/RetryPolicy.js"
import * as Router from "../src/Router.js"
import type * as RouterError from "../src/RouterError.js"
import * as FakeHttpClient from "../src/testing/FakeHttpClient.js"
import * as S from "../src/testing/UpstreamScript.js"

const KEY = "sk-targets-test-0123456789"
const endpoint = OpenAiCompatible.endpoint({ baseUrl: FakeHttpClient.openAiBaseUrl, apiKey: Redacted.make(KEY) })
const fake = (script: S.Script) => FakeHttpClient.layer({ script, apiKey: KEY })
const model = (name: string, contextWindow?: number) =>
  Model.make({ name, endpoint, ...(contextWindow === undefined ? {} : { contextWindow }) })
const outcomes = (trail: ReadonlyArray<Attempt.Attempt>) => trail.map((a) => `${a.model}:${a.outcome}`)
const served = Effect.map(FakeHttpClient.requests, (rs) => rs.map((r) => r.model))

// 4 000 characters: about 1 000 tokens, plus max_tokens 500.
const long = { messages: [{ role: "user" as const, content: "x".repeat(4000) }], max_tokens: 500 }

describe("context windows", () => {
  it.effect("a request larger than a model's window skips it without sending; one that fits is sent", () =>
    Effect.gen(function*() {
      const r = yield* Router.make({ models: [model("small", 1000), model("large", 8000)], retry: RetryPolicy.none })
      const response = yield* r.generate(long)
      expect(outcomes(response.trail)).toEqual(["small:skipped", "large:success"])
      expect(response.trail[0]!.note).toBe("the request (about 1500 tokens) exceeds its context window (1000)")
      expect(yield* served).toEqual(["large"])
      // A short request fits the small one.
      expect((yield* r.generate({ messages: [{ role: "user", content: "hi" }] })).model).toBe("small")
      // Skips for the window say nothing about the deployment.
      expect((yield* r.health)[0]).toMatchObject({ state: "closed", consecutiveFailures: 0 })
    }).pipe(Effect.provide(fake({ small: [S.succeed()], large: [S.succeed()] }))))

  it.effect("after a ContextLengthExceeded from an 8k model, models of 8k or less are skipped; a larger one serves", () =>
    Effect.gen(function*() {
      const r = yield* Router.make({
        models: [
          model("m8k", 8000),
          model("other8k", 8000),
          model("m4k", 4000),
          model("unknown"),
          model("m32k", 32_000)
        ],
        retry: RetryPolicy.none
      })
      const response = yield* r.generate(long)
      expect(outcomes(response.trail)).toEqual([
        "m8k:fallback",
        "other8k:skipped",
        "m4k:skipped",
        "unknown:fallback",
        "m32k:success"
      ])
      expect(response.trail[1]!.note).toBe(
        "its context window (8000) is not larger than the one the request exceeded (8000)"
      )
      expect(yield* served).toEqual(["m8k", "unknown", "m32k"])
    }).pipe(Effect.provide(fake({
      m8k: [S.contextLengthExceeded()],
      unknown: [S.unavailable()],
      m32k: [S.succeed()]
    }))))

  it.effect("when no model left fits, the call fails with the ContextLengthExceeded it got (the trail shows the skips)", () =>
    Effect.gen(function*() {
      const r = yield* Router.make({ models: [model("m8k", 8000), model("m4k", 4000)], retry: RetryPolicy.none })
      const error = (yield* Effect.flip(r.generate(long))) as RouterError.ContextLengthExceeded
      expect(error._tag).toBe("ContextLengthExceeded")
      expect(outcomes(error.trail ?? [])).toEqual(["m8k:fallback", "m4k:skipped"])
    }).pipe(Effect.provide(fake({
      m8k: [S.contextLengthExceeded()]
    }))))

  it.effect("a request that fits no model at all: NoModelAvailable, saying so", () =>
    Effect.gen(function*() {
      const r = yield* Router.make({ models: [model("a", 1000), model("b", 1200)], retry: RetryPolicy.none })
      const error = (yield* Effect.flip(r.generate(long))) as RouterError.NoModelAvailable
      expect(error._tag).toBe("NoModelAvailable")
      expect(error.reason).toContain("context window")
      expect(yield* served).toEqual([])
    }).pipe(Effect.provide(fake({ a: [S.succeed()], b: [S.succeed()] }))))

  it("a bad context window is a RouterConfigError naming it", () => {
    const error = Effect.runSync(
      Effect.flip(Router.make({ models: [model("a", 0)] })).pipe(Effect.provide(FakeHttpClient.layer({ script: {} })))
    ) as RouterError.RouterConfigError
    expect(error.option).toBe("models[0].contextWindow")
  })
})

describe("content-policy fallbacks", () => {
  const filtered = S.contentFiltered()

  it.effect("a content filter's refusal goes to the content-policy list, not to the rest of the priority list", () =>
    Effect.gen(function*() {
      const r = yield* Router.make({
        models: [model("strict"), model("next")],
        contentPolicyFallbacks: [model("lenient")],
        retry: RetryPolicy.none
      })
      const response = yield* r.generate({ messages: [{ role: "user", content: "hi" }] })
      expect(outcomes(response.trail)).toEqual(["strict:fallback", "lenient:success"])
      expect(response.trail[0]!.note).toBe("refused by its content filter: the content-policy fallbacks are tried")
      expect(yield* served).toEqual(["strict", "lenient"])
      // Other failures still go down the priority list.
      const other = yield* r.generate({ messages: [{ role: "user", content: "hi" }] })
      expect(outcomes(other.trail)).toEqual(["strict:fallback", "next:success"])
      // The content-policy list's deployments are in the health snapshot.
      expect((yield* r.health).map((d) => d.model)).toEqual(["strict", "next", "lenient"])
    }).pipe(Effect.provide(fake({ strict: [filtered, S.unavailable()], next: [S.succeed()], lenient: [S.succeed()] }))))

  it.effect("without a content-policy list, a refusal falls back down the priority list as before", () =>
    Effect.gen(function*() {
      const r = yield* Router.make({ models: [model("strict"), model("next")], retry: RetryPolicy.none })
      const response = yield* r.generate({ messages: [{ role: "user", content: "hi" }] })
      expect(outcomes(response.trail)).toEqual(["strict:fallback", "next:success"])
    }).pipe(Effect.provide(fake({ strict: [filtered], next: [S.succeed()] }))))
})
