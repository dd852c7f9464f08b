/**
 * LangChain's GPTRouter surface: configuration from the environment (`Compat.layerConfig`, `completionWithRetry`
 * without an endpoint) and its errors.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Compat from "../src/Compat.js"
import * as Router from "../src/Router.js"
import * as FakeHttpClient from "../src/testing/FakeHttpClient.js"
import * as S from "../src/testing/UpstreamScript.js"

const GPT_KEY = "gpt-router-key-0123456789"
const OPENAI_KEY = "sk-openai-key-0123456789"
const ANTHROPIC_KEY = "sk-ant-key-0123456789"
const GEMINI_KEY = "gemini-key-0123456789"
const env = (vars: Record<string, string>) =>
  Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(vars))))
const hi = { messages: [{ role: "user" as const, content: "hi" }] }
const fullEnv = {
  GPT_ROUTER_API_BASE: FakeHttpClient.gptRouterBaseUrl,
  GPT_ROUTER_API_KEY: GPT_KEY,
  OPENAI_BASE_URL: FakeHttpClient.openAiBaseUrl,
  OPENAI_API_KEY: OPENAI_KEY
}

describe("configuration from the environment", () => {
  it.effect("layerConfig builds GPTRouter and OpenAI-compatible endpoints from the seed's variables", () =>
    Effect.gen(function*() {
      const response = yield* Router.generate(hi).pipe(
        Effect.provide(Layer.fresh(Compat.layerConfig({
          models: [{ name: "g", provider: "anthropic" }, { name: "o", via: "openai" }],
          retry: { maxAttempts: 1 }
        })))
      )
      expect(response.model).toBe("o")
      const requests = yield* FakeHttpClient.requests
      expect(requests.map((r) => [r.protocol, r.model])).toEqual([["gptrouter", "g"], ["openai", "o"]])
      expect(requests[0]!.headers["ws-secret"]).toBe(GPT_KEY)
      expect((requests[0]!.body as { data: Array<{ providerName: string }> }).data[0]!.providerName).toBe("anthropic")
      expect(requests[1]!.headers["authorization"]).toBe(`Bearer ${OPENAI_KEY}`)
    }).pipe(
      Effect.provide(FakeHttpClient.layer({ script: { g: [S.unavailable()], o: [S.succeed()] } })),
      env(fullEnv)
    ))

  it.effect("a model that needs GPT_ROUTER_API_KEY fails the layer with Effect's ConfigError naming it", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Layer.build(Compat.layerConfig({ models: [{ name: "g" }] })).pipe(Effect.scoped))
      expect(ConfigError.isConfigError(error)).toBe(true)
      expect(ConfigError.isMissingDataOnly(error as ConfigError.ConfigError)).toBe(true)
      expect(String(error)).toContain("GPT_ROUTER_API_KEY")
    }).pipe(
      Effect.provide(FakeHttpClient.layer({ script: {} })),
      env({ OPENAI_API_KEY: OPENAI_KEY })
    ))

  it.effect("an OpenAI-compatible model needs no key (local servers) and defaults to api.openai.com", () =>
    Effect.gen(function*() {
      const models = yield* Compat.modelsConfig([{ name: "llama", via: "openai" }])
      expect(models[0]!.endpoint.baseUrl).toBe("https://api.openai.com/v1")
      expect(models[0]!.endpoint.secrets).toEqual([])
    }).pipe(env({})))

  it.effect("completionWithRetry without an endpoint routes through GPTRouter from the environment", () =>
    Effect.gen(function*() {
      const response = yield* Compat.completionWithRetry(
        [{ name: "a", provider: "openai" }, { name: "b", provider: "anthropic" }],
        { ...hi, temperature: 0.7, max_tokens: 256 },
        { maxRetries: 1 }
      )
      expect(response.model).toBe("b")
      const requests = yield* FakeHttpClient.requests
      // The first attempt sends the remaining list in order; the fallback sends what remains.
      expect(requests.map((r) => r.models)).toEqual([["a", "b"], ["b"]])
      const params = (requests[0]!.body as { data: Array<{ promptParams: Record<string, unknown> }> }).data[0]!
        .promptParams
      expect(params).toMatchObject({ temperature: 0.7, max_tokens: 256 })
    }).pipe(
      Effect.provide(FakeHttpClient.layer({ script: { a: [S.unavailable()], b: [S.succeed()] } })),
      env(fullEnv)
    ))

  it.effect("completionWithRetry without an endpoint or key is a ConfigError, not a defect", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Compat.completionWithRetry([{ name: "a", provider: "openai" }], hi))
      expect(ConfigError.isConfigError(error)).toBe(true)
      expect(String(error)).toContain("GPT_ROUTER_API_KEY")
    }).pipe(Effect.provide(FakeHttpClient.layer({ script: {} })), env({})))

  it.effect("bad router options under layerConfig are still RouterConfigError naming the option", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        Layer.build(Compat.layerConfig({ models: [{ name: "o", via: "openai" }], retry: { maxAttempts: 0 } })).pipe(
          Effect.scoped
        )
      )
      expect(error._tag).toBe("RouterConfigError")
      if (error._tag === "RouterConfigError") expect(error.option).toBe("retry.maxAttempts")
    }).pipe(Effect.provide(FakeHttpClient.layer({ script: {} })), env({})))

  it.effect("layerConfig reads ANTHROPIC_* and GEMINI_* for native models, a priority list crossing all four protocols", () =>
    Effect.gen(function*() {
      const response = yield* Router.generate(hi).pipe(
        Effect.provide(Layer.fresh(Compat.layerConfig({
          models: [
            { name: "o", via: "openai" },
            { name: "claude", via: "anthropic" },
            { name: "gem", via: "gemini" },
            { name: "g", provider: "anthropic" }
          ],
          retry: { maxAttempts: 1 }
        })))
      )
      expect([response.model, response.provider]).toEqual(["g", "anthropic"])
      expect(response.trail.map((a) => `${a.provider}/${a.model}:${a.error?._tag ?? "ok"}`)).toEqual([
        "openai/o:ServiceUnavailable",
        "anthropic/claude:ServiceUnavailable",
        "google/gem:RateLimited",
        "anthropic/g:ok"
      ])
      const requests = yield* FakeHttpClient.requests
      expect(requests.map((r) => r.protocol)).toEqual(["openai", "anthropic", "gemini", "gptrouter"])
      expect(requests[1]!.headers["x-api-key"]).toBe(ANTHROPIC_KEY)
      expect(requests[2]!.headers["x-goog-api-key"]).toBe(GEMINI_KEY)
    }).pipe(
      Effect.provide(FakeHttpClient.layer({
        script: {
          o: [S.unavailable()],
          claude: [S.serverError(529)],
          gem: [S.rateLimited()],
          g: [S.succeed()]
        }
      })),
      env({
        ...fullEnv,
        ANTHROPIC_BASE_URL: FakeHttpClient.anthropicBaseUrl,
        ANTHROPIC_API_KEY: ANTHROPIC_KEY,
        GEMINI_BASE_URL: FakeHttpClient.geminiBaseUrl,
        GEMINI_API_KEY: GEMINI_KEY,
        GOOGLE_API_KEY: "not-this-one"
      })
    ))

  it.effect("Gemini takes GOOGLE_API_KEY when GEMINI_API_KEY is unset; defaults are the providers' servers", () =>
    Effect.gen(function*() {
      const [claude, gem] = yield* Compat.modelsConfig([
        { name: "c", via: "anthropic" },
        { name: "g", via: "gemini" }
      ])
      expect([claude!.endpoint.protocol, claude!.endpoint.baseUrl, claude!.provider]).toEqual([
        "anthropic",
        "https://api.anthropic.com",
        "anthropic"
      ])
      expect([gem!.endpoint.protocol, gem!.endpoint.baseUrl, gem!.provider]).toEqual([
        "gemini",
        "https://generativelanguage.googleapis.com",
        "google"
      ])
      expect(gem!.endpoint.secrets.map(Redacted.value)).toEqual(["google-key-0123"])
      expect(claude!.endpoint.secrets.map(Redacted.value)).toEqual([ANTHROPIC_KEY])
    }).pipe(env({ ANTHROPIC_API_KEY: ANTHROPIC_KEY, GOOGLE_API_KEY: "google-key-0123" })))

  it.effect("a native model without its key fails the layer with a ConfigError naming the variables", () =>
    Effect.gen(function*() {
      const anthropic = yield* Effect.flip(
        Layer.build(Compat.layerConfig({ models: [{ name: "c", via: "anthropic" }] })).pipe(Effect.scoped)
      )
      expect(ConfigError.isConfigError(anthropic)).toBe(true)
      expect(String(anthropic)).toContain("ANTHROPIC_API_KEY")
      const gemini = yield* Effect.flip(
        Layer.build(Compat.layerConfig({ models: [{ name: "g", via: "gemini" }] })).pipe(Effect.scoped)
      )
      expect(ConfigError.isConfigError(gemini)).toBe(true)
      expect(String(gemini)).toContain("GEMINI_API_KEY")
      expect(String(gemini)).toContain("GOOGLE_API_KEY")
    }).pipe(Effect.provide(FakeHttpClient.layer({ script: {} })), env({ OPENAI_API_KEY: OPENAI_KEY })))

  it.effect("endpoints take any Config: values from other variables, read only when a model needs them", () =>
    Effect.gen(function*() {
      const response = yield* Router.generate(hi).pipe(
        Effect.provide(Layer.fresh(Compat.layerConfig({
          models: [{ name: "o", via: "openai" }],
          openAi: Compat.openAiEndpoint({
            baseUrl: Config.string("LOCAL_URL"),
            apiKey: Config.option(Config.redacted("LOCAL_KEY"))
          })
        })))
      )
      expect(response.model).toBe("o")
      const requests = yield* FakeHttpClient.requests
      expect(requests[0]!.headers["authorization"]).toBe("Bearer local-key-0123")
    }).pipe(
      Effect.provide(FakeHttpClient.layer({ script: { o: [S.succeed()] } })),
      // No GPT_ROUTER_API_KEY: no model needs it.
      env({ LOCAL_URL: FakeHttpClient.openAiBaseUrl, LOCAL_KEY: "local-key-0123" })
    ))
})
