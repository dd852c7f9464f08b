/**
 * Behaviours found missing or wrong when the library was tried as a new user would, each with a test that fails
 * without it: `model_kwargs` keys that `Object.prototype` has, the check of each model's overrides when the router is
 * built, and redaction of a key the upstream echoes that we did not send.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import * as ChatRequest from "../src/ChatRequest.js"
import * as Model from "../src/Model.js"
import * as OpenAiCompatible from "../src/OpenAiCompatible.js"
import * as Router from "../src/Router.js"
import * as FakeHttpClient from "../src/testing/FakeHttpClient.js"
import * as S from "../src/testing/UpstreamScript.js"

const KEY = "sk-defects-test-0123456789"
const endpoint = OpenAiCompatible.endpoint({ baseUrl: FakeHttpClient.openAiBaseUrl, apiKey: Redacted.make(KEY) })
const hi = [{ role: "user" as const, content: "hi" }]

describe("model_kwargs: only keys the request itself has are given twice", () => {
  it.each(["constructor", "toString", "hasOwnProperty", "valueOf", "__proto__"])(
    "model_kwargs.%s is accepted and sent as a field",
    (key) => {
      const kwargs = JSON.parse(`{${JSON.stringify(key)}: 1}`) as Record<string, unknown>
      const result = ChatRequest.validate({ messages: hi, model_kwargs: kwargs })
      expect(Either.isRight(result)).toBe(true)
      if (Either.isLeft(result)) return
      const params = ChatRequest.toWireParams(result.right)
      expect(Object.prototype.hasOwnProperty.call(params, key)).toBe(true)
      expect(JSON.parse(JSON.stringify(params))[key]).toBe(1)
      // A `__proto__` key is a field, not a new prototype.
      expect(Object.getPrototypeOf(params)).toBe(Object.prototype)
    }
  )

  it("a key given at top level too is still rejected, naming it", () => {
    const result = ChatRequest.validate({ messages: hi, temperature: 0.5, model_kwargs: { temperature: 1 } })
    expect(Either.isLeft(result) && result.left.field).toBe("model_kwargs.temperature")
  })
})

describe("a value Effect's own parser throws on is an InvalidRequest, not a defect", () => {
  // Found by the validator property test: Effect 3.22's union search converts a discriminant with `String`, which
  // throws for an object whose `toString` is not a function, as JSON from an untrusted client can be.
  const role = JSON.parse(`{"toString": 0}`) as unknown as "user"

  it("validate returns a typed error", () => {
    const result = ChatRequest.validate({ messages: [{ role, content: "hi" }] })
    expect(Either.isLeft(result)).toBe(true)
    if (Either.isLeft(result)) expect(result.left._tag).toBe("InvalidRequest")
  })

  it.effect("generate fails with InvalidRequest and sends nothing", () =>
    Effect.gen(function*() {
      const router = yield* Router.make({ models: [Model.make({ name: "a", endpoint })] })
      const error = yield* Effect.flip(router.generate({ messages: [{ role, content: "hi" }] }))
      expect(error._tag).toBe("InvalidRequest")
      expect(yield* FakeHttpClient.requests).toEqual([])
    }).pipe(Effect.provide(FakeHttpClient.layer({ script: { a: [S.succeed()] } }))))
})

describe("the router checks each model's overrides when it is built", () => {
  it.effect("an override that is not a valid request field fails Router.make with RouterConfigError naming it", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Router.make({
        models: [
          Model.make({ name: "a", endpoint }),
          Model.make({ name: "b", endpoint, overrides: { temperature: 7 } })
        ]
      }))
      expect(error._tag).toBe("RouterConfigError")
      expect(error.option).toBe("models[1].overrides.temperature")
      // Nothing was sent.
      expect(yield* FakeHttpClient.requests).toEqual([])
    }).pipe(Effect.provide(FakeHttpClient.layer({ script: {} }))))

  it.effect("valid overrides build, and are sent to their model only", () =>
    Effect.gen(function*() {
      const router = yield* Router.make({
        models: [
          Model.make({ name: "a", endpoint }),
          Model.make({ name: "b", endpoint, overrides: { max_tokens: 9 } })
        ],
        retry: { maxAttempts: 1 }
      })
      yield* router.generate({ messages: hi })
      const bodies = (yield* FakeHttpClient.requests).map((r) => (r.body as { max_tokens?: number }).max_tokens)
      expect(bodies).toEqual([undefined, 9])
    }).pipe(Effect.provide(FakeHttpClient.layer({ script: { a: [S.unavailable()], b: [S.succeed()] } }))))
})

describe("keys the upstream echoes are redacted even when we did not send them", () => {
  const others = [
    "sk-proj-AbCdEf0123456789",
    "sk-ant-api03-xyzXYZ012345",
    "gsk_0123456789abcdef",
    "Bearer eyJhbGciOi.abc"
  ]

  it.effect("an error body naming other keys keeps none of them (message, body, trail)", () =>
    Effect.gen(function*() {
      const router = yield* Router.make({ models: [Model.make({ name: "a", endpoint })], retry: { maxAttempts: 1 } })
      const error = yield* Effect.flip(router.generate({ messages: hi }))
      expect(error._tag).toBe("AuthenticationFailed")
      const texts = [error.message, JSON.stringify(error)]
      for (const key of others) {
        for (const text of texts) expect(text).not.toContain(key.replace(/^Bearer /, ""))
      }
      expect(error.message).toContain("<redacted>")
    }).pipe(Effect.provide(FakeHttpClient.layer({
      script: { a: [S.unauthorized({ message: `keys seen: ${others.join(", ")}` })] }
    }))))
})

describe("a short placeholder key (a local server's) is redacted as a word, not inside other words", () => {
  const local = OpenAiCompatible.endpoint({ baseUrl: FakeHttpClient.openAiBaseUrl, apiKey: Redacted.make("x") })
  const body = "invalid key x for max_tokens; x-request-id: 7; key=x&retry=no"

  it.effect("the error keeps max_tokens and x-request-id whole, and blanks the key where it stands alone", () =>
    Effect.gen(function*() {
      const router = yield* Router.make({
        models: [Model.make({ name: "a", endpoint: local })],
        retry: { maxAttempts: 1 }
      })
      const error = yield* Effect.flip(router.generate({ messages: hi }))
      expect(error._tag).toBe("AuthenticationFailed")
      expect(error.message).toContain("invalid key <redacted> for max_tokens; x-request-id: 7; key=<redacted>&retry=no")
    }).pipe(Effect.provide(FakeHttpClient.layer({ script: { a: [S.unauthorized({ message: body })] } }))))

  it.effect("a real key's length is redacted wherever it appears, even inside other text", () =>
    Effect.gen(function*() {
      const secret = "k3y0123456789abcdef"
      const keyed = OpenAiCompatible.endpoint({ baseUrl: FakeHttpClient.openAiBaseUrl, apiKey: Redacted.make(secret) })
      const router = yield* Router.make({
        models: [Model.make({ name: "a", endpoint: keyed })],
        retry: { maxAttempts: 1 }
      })
      const error = yield* Effect.flip(router.generate({ messages: hi }))
      expect(error.message).not.toContain(secret)
      expect(error.message).toContain("prefix<redacted>suffix")
    }).pipe(Effect.provide(FakeHttpClient.layer({
      script: { a: [S.unauthorized({ message: "seen: prefixk3y0123456789abcdefsuffix" })] }
    }))))
})
