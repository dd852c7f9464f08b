/**
 * GPTRouter answers 400 "No models available" when none of the models it was sent is healthy. That falls back to the
 * next endpoint's models, and ends the call as NoModelAvailable when nothing is left.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as GptRouter from "../src/GptRouter.js"
import * as Model from "../src/Model.js"
import * as OpenAiCompatible from "../src/OpenAiCompatible.js"
import * as Router from "../src/Router.js"
import * as FakeHttpClient from "../src/testing/FakeHttpClient.js"
import * as S from "../src/testing/UpstreamScript.js"

const KEY = "sk-no-model-0123456789"
const gpt = GptRouter.endpoint({ baseUrl: FakeHttpClient.gptRouterBaseUrl, apiKey: Redacted.make(KEY) })
const openai = OpenAiCompatible.endpoint({ baseUrl: FakeHttpClient.openAiBaseUrl, apiKey: Redacted.make(KEY) })
const noModels = S.fail(400, { body: { message: "No models available" } })
const hi = { messages: [{ role: "user" as const, content: "hi" }] }
const gptThenOpenAi = [Model.make({ name: "a", endpoint: gpt }), Model.make({ name: "c", endpoint: openai })]

// One call through a router over `models`, one attempt a model.
const generate = (models: ReadonlyArray<Model.Model>) =>
  Effect.flatMap(Router.make({ models, retry: { maxAttempts: 1 } }), (router) => router.generate(hi))

describe("no model available", () => {
  it.effect("ends the call as NoModelAvailable when the upstream router has no healthy model and nothing is left", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        generate([Model.make({ name: "a", endpoint: gpt }), Model.make({ name: "b", endpoint: gpt })])
      )
      expect(error._tag).toBe("NoModelAvailable")
      if (error._tag !== "NoModelAvailable") return
      expect(error.reason).toContain("No models available")
      expect(error.trail?.map((a) => [a.model, a.outcome, a.error?._tag])).toEqual([
        ["a", "fallback", "ServiceUnavailable"],
        ["b", "failed", "ServiceUnavailable"]
      ])
      expect(error.message).toContain("no model available")
    }).pipe(Effect.provide(FakeHttpClient.layer({ script: { a: [noModels], b: [noModels] }, apiKey: KEY }))))

  it.effect("falls back from GPTRouter's 'No models available' to a model on another endpoint", () =>
    Effect.gen(function*() {
      const response = yield* generate(gptThenOpenAi)
      expect(response.model).toBe("c")
      expect(response.trail.map((a) => a.outcome)).toEqual(["fallback", "success"])
    }).pipe(Effect.provide(FakeHttpClient.layer({ script: { a: [noModels], c: [S.succeed()] }, apiKey: KEY }))))

  it.effect("an ordinary 400 is still a BadRequest that ends the call", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(generate(gptThenOpenAi))
      expect(error._tag).toBe("BadRequest")
      expect(yield* FakeHttpClient.requests).toHaveLength(1)
    }).pipe(Effect.provide(FakeHttpClient.layer({
      script: { a: [S.fail(400, { body: { message: "messages: invalid" } })], c: [S.succeed()] },
      apiKey: KEY
    }))))
})
