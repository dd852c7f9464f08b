/**
 * The optional members of the protocol contract, on a custom protocol: `classifyError` decides an error status and an
 * in-band error before the shared rules (with the wait it reads from the body, which a Retry-After header beats), and
 * `decodeResponse` may name a 2xx body a failure. A protocol without them keeps the shared rules.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as Model from "../src/Model.js"
import * as OpenAiCompatible from "../src/OpenAiCompatible.js"
import type * as Provider from "../src/Provider.js"
import * as Router from "../src/Router.js"
import * as FakeHttpClient from "../src/testing/FakeHttpClient.js"
import * as S from "../src/testing/UpstreamScript.js"

const KEY = "sk-contract-0123456789"
const base = OpenAiCompatible.endpoint({ baseUrl: FakeHttpClient.openAiBaseUrl, apiKey: Redacted.make(KEY) })
const seen: Array<Provider.ErrorReport> = []
// A protocol whose bodies say `"type": "slow_down"` for a rate limit, with the wait in `error.wait_ms`.
const custom: Provider.Endpoint = {
  ...base,
  classifyError: (report) => {
    seen.push(report)
    const error = (report.body as { error?: { type?: unknown; wait_ms?: unknown } } | undefined)?.error
    if (error?.type !== "slow_down") return undefined
    return { tag: "RateLimited", retryAfterMillis: typeof error.wait_ms === "number" ? error.wait_ms : undefined }
  },
  decodeResponse: (call, body) =>
    (body as { refused?: unknown }).refused === true
      ? Either.left({ _tag: "InBandError", payload: { error: { type: "slow_down", wait_ms: 5 } } })
      : base.decodeResponse(call, body)
}
const hi = { messages: [{ role: "user" as const, content: "hi" }] }
const once = { retry: { maxAttempts: 1 }, health: false } as const

const errorOf = <A, E>(effect: Effect.Effect<A, E>) => Effect.flip(effect)

describe("Provider contract: classifyError and in-band answers", () => {
  it.effect("a status the body classifies wins over the status and takes the body's wait; a header wait wins", () =>
    Effect.gen(function*() {
      seen.length = 0
      const router = yield* Router.make({ models: [Model.make({ name: "m", endpoint: custom })], ...once })
      const error = yield* errorOf(router.generate(hi))
      expect(error._tag).toBe("RateLimited")
      expect("retryAfterMillis" in error ? error.retryAfterMillis : undefined).toBe(250)
      expect(seen[0]).toEqual({
        status: 400,
        body: { error: { message: "m", type: "slow_down", code: null, wait_ms: 250 } }
      })
      const second = yield* errorOf(router.generate(hi))
      expect(second._tag).toBe("RateLimited")
      expect("retryAfterMillis" in second ? second.retryAfterMillis : undefined).toBe(3000)
      // Unclassified: the shared rules (a 400 is a BadRequest).
      const third = yield* errorOf(router.generate(hi))
      expect(third._tag).toBe("BadRequest")
    }).pipe(Effect.provide(FakeHttpClient.layer({
      apiKey: KEY,
      script: {
        m: [
          S.fail(400, { body: { error: { message: "m", type: "slow_down", code: null, wait_ms: 250 } } }),
          S.fail(400, { body: { error: { type: "slow_down", wait_ms: 250 } }, headers: { "retry-after": "3" } }),
          S.fail(400, { body: { error: { type: "other" } } })
        ]
      }
    }))))

  it.effect("an in-band stream error is classified by the protocol, with status undefined", () =>
    Effect.gen(function*() {
      seen.length = 0
      const router = yield* Router.make({ models: [Model.make({ name: "m", endpoint: custom })], ...once })
      const error = yield* errorOf(Router.collect(router.stream(hi)))
      expect(error._tag).toBe("RateLimited")
      expect(seen).toEqual([{ status: undefined, body: { error: { message: "busy", type: "slow_down" } } }])
    }).pipe(Effect.provide(FakeHttpClient.layer({
      apiKey: KEY,
      script: { m: [S.inBandError({ afterChunks: 0, message: "busy", type: "slow_down" })] }
    }))))

  it.effect("decodeResponse may name a 2xx body a failure: classified like an in-band error", () =>
    Effect.gen(function*() {
      const router = yield* Router.make({ models: [Model.make({ name: "m", endpoint: custom })], ...once })
      const error = yield* errorOf(router.generate(hi))
      expect(error._tag).toBe("RateLimited")
      expect("retryAfterMillis" in error ? error.retryAfterMillis : undefined).toBe(5)
      // A body the decoder rejects as malformed stays a MalformedResponse.
      const plain = yield* Router.make({ models: [Model.make({ name: "m", endpoint: base })], ...once })
      expect((yield* errorOf(plain.generate(hi)))._tag).toBe("MalformedResponse")
    }).pipe(Effect.provide(FakeHttpClient.layer({
      apiKey: KEY,
      script: { m: [S.fail(200, { body: { refused: true } })] }
    }))))

  it.effect("without classifyError the shared rules decide (the same 400 body is a BadRequest)", () =>
    Effect.gen(function*() {
      const router = yield* Router.make({ models: [Model.make({ name: "m", endpoint: base })], ...once })
      expect((yield* errorOf(router.generate(hi)))._tag).toBe("BadRequest")
      const chunks = yield* Effect.either(Stream.runCollect(router.stream(hi)))
      expect(Either.isLeft(chunks) && chunks.left._tag).toBe("ServerError")
    }).pipe(Effect.provide(FakeHttpClient.layer({
      apiKey: KEY,
      script: {
        m: [
          S.fail(400, { body: { error: { type: "slow_down", wait_ms: 250 } } }),
          S.inBandError({ afterChunks: 0, type: "slow_down" })
        ]
      }
    }))))
})
