/**
 * The router as a Vercel AI SDK provider, driven by the `ai` package itself over a loopback SimulatedUpstream, once
 * per HTTP client layer: generateText over a list whose first model fails, streamText consumed with for-await falling
 * back before the first token, aborts closing the socket, a mid-stream cut as an error part with the partial text
 * delivered once, generateObject and tools; and the prompt translation.
 */
import { APICallError, NoSuchModelError } from "@ai-sdk/provider"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import type * as HttpClient from "@effect/platform/HttpClient"
import { describe, expect, it } from "@effect/vitest"
import { generateObject, generateText, jsonSchema, streamText, tool } from "ai"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { AiSdk } from "../src/ai-sdk/index.js"
import { toMessages, toRequest } from "../src/ai-sdk/internal/request.js"
import { Attempt } from "../src/Attempt.js"
import * as FetchRouterHttpClient from "../src/FetchRouterHttpClient.js"
import * as bridge from "../src/internal/bridge.js"
import * as Model from "../src/Model.js"
import * as OpenAiCompatible from "../src/OpenAiCompatible.js"
import * as RetryPolicy from "../src/RetryPolicy.js"
import type * as Router from "../src/Router.js"
import * as RouterError from "../src/RouterError.js"
import * as SimulatedUpstream from "../src/testing/SimulatedUpstream.js"
import * as S from "../src/testing/UpstreamScript.js"

const KEY = "sk-ai-sdk-test-0123456789abcdef"

/**
 * Runs `f` with an upstream and a provider of one chain `main` over models a, b; both are closed afterwards.
 * `httpClient` undefined: the provider's default.
 */
const withRouter = async <A>(
  httpClient: Layer.Layer<HttpClient.HttpClient> | undefined,
  script: S.Script,
  options: Partial<Router.Options>,
  f: (router: AiSdk.Provider, upstream: SimulatedUpstream.SimulatedUpstream) => Promise<A>
): Promise<A> => {
  const upstream = await SimulatedUpstream.start({ script, apiKey: KEY, maxLifetimeMs: 30_000 })
  const endpoint = OpenAiCompatible.endpoint({ baseUrl: upstream.openAiBaseUrl, apiKey: Redacted.make(KEY) })
  const router = AiSdk.make({
    httpClient,
    chains: {
      main: {
        models: [Model.make({ name: "a", endpoint }), Model.make({ name: "b", endpoint })],
        retry: RetryPolicy.none,
        ...options
      }
    }
  })
  try {
    return await f(router, upstream)
  } finally {
    await router.dispose()
    await upstream.close()
  }
}

const route = (metadata: unknown) =>
  (metadata as Record<string, { model: string; provider: string; trail: Array<{ model: string; outcome: string }> }>)[
    "effect-llm-router"
  ]!
const outcomes = (trail: ReadonlyArray<{ model: string; outcome: string }>) =>
  trail.map((a) => `${a.model}:${a.outcome}`)

const suite = (clientName: string, httpClient: Layer.Layer<HttpClient.HttpClient> | undefined) =>
  describe(`AiSdk with the ai package over ${clientName}`, () => {
    it("generateText over a list whose first model fails: b answers, named in the response and its metadata", () =>
      withRouter(
        httpClient,
        { a: [S.unavailable()], b: [S.succeed({ text: "Hello from b" })] },
        {},
        async (router, up) => {
          const result = await generateText({ model: router("main"), prompt: "hi", maxRetries: 0, temperature: 0.3 })
          expect(result.text).toBe("Hello from b")
          expect(result.response.modelId).toBe("b")
          expect(result.finishReason).toBe("stop")
          expect(result.usage.inputTokens).toBe(10)
          const metadata = route(result.providerMetadata)
          expect([metadata.model, metadata.provider]).toEqual(["b", "openai"])
          expect(outcomes(metadata.trail)).toEqual(["a:fallback", "b:success"])
          expect(up.requests.map((r) => r.model)).toEqual(["a", "b"])
          expect((up.requests[1]!.body as any).temperature).toBe(0.3)
          expect((up.requests[1]!.body as any).messages).toEqual([{ role: "user", content: "hi" }])
        }
      ))

    it("every model failing rejects with APICallError (not retryable, ours as cause); the SDK does not retry on top", () =>
      withRouter(httpClient, { "*": [S.rateLimited()] }, { health: false }, async (router, up) => {
        // maxRetries left at the SDK's default (2): isRetryable false keeps it from retrying.
        const error = await generateText({ model: router("main"), prompt: "hi" }).then(
          () => expect.fail("expected a failure"),
          (e: unknown) => e
        )
        expect(APICallError.isInstance(error)).toBe(true)
        const apiError = error as APICallError
        expect(apiError.isRetryable).toBe(false)
        expect(apiError.statusCode).toBe(429)
        expect(apiError.url).toBe(up.openAiBaseUrl)
        const ours = AiSdk.routerError(error)!
        expect(ours._tag).toBe("RateLimited")
        expect(apiError.cause).toBe(ours)
        expect(outcomes(("trail" in ours ? ours.trail : undefined) ?? [])).toEqual(["a:fallback", "b:failed"])
        expect((apiError.data as any).trail.map((a: any) => a.outcome)).toEqual(["fallback", "failed"])
        expect(up.requests.map((r) => r.model)).toEqual(["a", "b"])
        expect(`${apiError.message} ${JSON.stringify(apiError)} ${apiError.responseBody}`).not.toContain(KEY)
      }))

    it("streamText consumed with for-await falls back before the first token", () =>
      withRouter(
        httpClient,
        { a: [S.hang({ stage: "first-token" })], b: [S.succeed({ text: "streamed by b", chunkDelayMs: 5 })] },
        { timeout: { firstToken: "300 millis" } },
        async (router, up) => {
          const errors: Array<unknown> = []
          const result = streamText({
            model: router("main"),
            prompt: "tell me",
            maxRetries: 0,
            onError: ({ error }) => void errors.push(error)
          })
          const deltas: Array<string> = []
          for await (const delta of result.textStream) deltas.push(delta)
          expect(deltas.join("")).toBe("streamed by b")
          expect(deltas.length).toBeGreaterThan(1)
          expect(errors).toEqual([])
          expect((await result.response).modelId).toBe("b")
          expect(await result.finishReason).toBe("stop")
          expect(outcomes(route(await result.providerMetadata).trail)).toEqual(["a:fallback", "b:success"])
          expect(up.requests.map((r) => [r.model, r.stream])).toEqual([["a", true], ["b", true]])
          // The first-token timeout closed a's connection.
          expect(up.closedConnections()).toBe(1)
        }
      ))

    it("streamText whose every model fails before the first token: one error part, no text, no SDK retry", () =>
      withRouter(httpClient, { "*": [S.unavailable()] }, {}, async (router, up) => {
        const errors: Array<unknown> = []
        // maxRetries left at the SDK's default (2).
        const result = streamText({
          model: router("main"),
          prompt: "tell me",
          onError: ({ error }) => void errors.push(error)
        })
        const deltas: Array<string> = []
        for await (const delta of result.textStream) deltas.push(delta)
        expect(deltas).toEqual([])
        expect(errors).toHaveLength(1)
        expect(AiSdk.routerError(errors[0])?._tag).toBe("ServiceUnavailable")
        expect((errors[0] as APICallError).statusCode).toBe(503)
        expect(up.requests.map((r) => r.model)).toEqual(["a", "b"])
      }))

    it("aborting a stream interrupts the fiber and closes the socket", () =>
      withRouter(
        httpClient,
        { a: [S.succeed({ chunks: Array.from({ length: 200 }, (_, i) => `${i} `), chunkDelayMs: 20 })] },
        {},
        async (router, up) => {
          const controller = new AbortController()
          const closed = up.waitForClose()
          const result = streamText({
            model: router("main"),
            prompt: "count",
            maxRetries: 0,
            abortSignal: controller.signal,
            onError: () => {}
          })
          const deltas: Array<string> = []
          for await (const delta of result.textStream) {
            deltas.push(delta)
            if (deltas.length === 3) controller.abort()
          }
          await closed
          expect(up.closedConnections()).toBe(1)
          expect(deltas.slice(0, 3)).toEqual(["0 ", "1 ", "2 "])
          expect(deltas.length).toBeLessThan(200)
        }
      ))

    it("aborting generateText while the server hangs rejects with the abort and closes the socket", () =>
      withRouter(httpClient, { a: [S.hang()] }, {}, async (router, up) => {
        const controller = new AbortController()
        const closed = up.waitForClose()
        const call = generateText({
          model: router("main"),
          prompt: "hi",
          maxRetries: 0,
          abortSignal: controller.signal
        })
        await up.waitForRequests(1)
        controller.abort()
        const error = await call.then(() => expect.fail("expected an abort"), (e: unknown) => e)
        expect((error as Error).name).toBe("AbortError")
        await closed
        expect(up.closedConnections()).toBe(1)
        expect(up.requests.map((r) => r.model)).toEqual(["a"])
      }))

    it("a mid-stream cut is an error part carrying StreamInterrupted; the partial text is delivered once", () =>
      withRouter(
        httpClient,
        { a: [S.cut({ text: "Hello world, and more", afterChunks: 2, chunkDelayMs: 5 })], b: [S.succeed()] },
        {},
        async (router, up) => {
          const errors: Array<unknown> = []
          const result = streamText({
            model: router("main"),
            prompt: "tell me",
            maxRetries: 0,
            onError: ({ error }) => void errors.push(error)
          })
          const parts: Array<{ type: string; text?: string; error?: unknown }> = []
          for await (const part of result.fullStream) parts.push(part as any)
          const text = parts.filter((p) => p.type === "text-delta").map((p) => p.text).join("")
          expect(text).toBe("Hello wo")
          const errorParts = parts.filter((p) => p.type === "error")
          expect(errorParts).toHaveLength(1)
          const ours = AiSdk.routerError(errorParts[0]!.error)
          expect(ours?._tag).toBe("StreamInterrupted")
          if (ours?._tag !== "StreamInterrupted") return
          expect(ours.reason).toBe("cut")
          expect(ours.text).toBe("Hello wo")
          expect(APICallError.isInstance(errorParts[0]!.error)).toBe(true)
          // Never sent to another model once content started; the text after the error is not repeated.
          expect(up.requests.map((r) => r.model)).toEqual(["a"])
          const afterError = parts.slice(parts.findIndex((p) => p.type === "error"))
          expect(afterError.some((p) => p.type === "text-delta")).toBe(false)
          expect(errors).toHaveLength(1)
        }
      ))
  })

suite("its default HTTP client (RouterHttpClient: node:http on Node)", undefined)
suite("FetchRouterHttpClient", FetchRouterHttpClient.layer)
suite("FetchHttpClient", FetchHttpClient.layer)

describe("AiSdk: generateObject, tools, chains", () => {
  it("a chain's answer check: generateObject's JSON from b after a answered with prose (the trail says why)", () =>
    withRouter(
      undefined,
      {
        a: [S.succeed({ text: "Sure! The city is Paris." })],
        b: [S.succeed({ text: JSON.stringify({ city: "Paris", temperature: 21 }) })]
      },
      {
        accept: (response) => {
          try {
            JSON.parse(response.text)
            return true
          } catch {
            return "not JSON"
          }
        }
      },
      async (router, up) => {
        const { object, providerMetadata } = await generateObject({
          model: router("main"),
          schema: jsonSchema<{ city: string; temperature: number }>({
            type: "object",
            properties: { city: { type: "string" }, temperature: { type: "number" } },
            required: ["city", "temperature"]
          }),
          prompt: "weather?",
          maxRetries: 0
        })
        expect(object).toEqual({ city: "Paris", temperature: 21 })
        expect(up.requests.map((r) => r.model)).toEqual(["a", "b"])
        const trail = route(providerMetadata).trail as unknown as ReadonlyArray<
          { outcome: string; error?: { _tag: string; reason: string } }
        >
        expect(trail.map((a) => a.outcome)).toEqual(["fallback", "success"])
        expect(trail[0]!.error).toMatchObject({ _tag: "ResponseRejected", reason: "not JSON" })
      }
    ))

  it("generateObject with a JSON schema: response_format json_schema, the value decoded", () =>
    withRouter(
      undefined,
      { a: [S.succeed({ text: JSON.stringify({ city: "Paris", temperature: 21 }) })] },
      {},
      async (router, up) => {
        const { object } = await generateObject({
          model: router("main"),
          maxRetries: 0,
          prompt: "Weather in Paris?",
          schemaName: "weather",
          schema: jsonSchema<{ city: string; temperature: number }>({
            type: "object",
            properties: { city: { type: "string" }, temperature: { type: "number" } },
            required: ["city", "temperature"],
            additionalProperties: false
          })
        })
        expect(object).toEqual({ city: "Paris", temperature: 21 })
        const format = (up.requests[0]!.body as any).response_format
        expect(format.type).toBe("json_schema")
        expect(format.json_schema.name).toBe("weather")
        expect(format.json_schema.schema.required).toEqual(["city", "temperature"])
      }
    ))

  it("tools: definitions and tool choice sent, the model's call executed, results returned", () =>
    withRouter(
      undefined,
      { a: [S.succeed({ toolCalls: [{ id: "call_1", name: "weather", arguments: { city: "Paris" } }] })] },
      {},
      async (router, up) => {
        const result = await generateText({
          model: router("main"),
          maxRetries: 0,
          prompt: "Weather in Paris?",
          toolChoice: { type: "tool", toolName: "weather" },
          tools: {
            weather: tool({
              description: "The temperature in a city",
              inputSchema: jsonSchema<{ city: string }>({
                type: "object",
                properties: { city: { type: "string" } },
                required: ["city"]
              }),
              execute: async ({ city }) => ({ temperature: city === "Paris" ? 21 : 0 })
            })
          }
        })
        expect(result.finishReason).toBe("tool-calls")
        expect(result.toolCalls.map((c) => [c.toolCallId, c.toolName, c.input])).toEqual([["call_1", "weather", {
          city: "Paris"
        }]])
        expect(result.toolResults.map((r) => r.output)).toEqual([{ temperature: 21 }])
        const body = up.requests[0]!.body as any
        expect(body.tools).toEqual([{
          type: "function",
          function: {
            name: "weather",
            description: "The temperature in a city",
            parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] }
          }
        }])
        expect(body.tool_choice).toEqual({ type: "function", function: { name: "weather" } })
      }
    ))

  it("a chain the provider does not know throws NoSuchModelError; a bad chain rejects its calls with RouterConfigError", async () => {
    const router = AiSdk.make({ chains: { empty: [] } })
    try {
      expect(() => router("nope")).toThrow(NoSuchModelError)
      expect(() => router.embeddingModel("x")).toThrow(NoSuchModelError)
      const error = await generateText({ model: router("empty"), prompt: "hi", maxRetries: 0 }).then(
        () => expect.fail("expected a failure"),
        (e: unknown) => e
      )
      expect(error).toBeInstanceOf(RouterError.RouterConfigError)
      expect((error as RouterError.RouterConfigError).option).toBe("models")
    } finally {
      await router.dispose()
    }
  })
})

describe("AiSdk: prompt translation", () => {
  it("system, user text and image, assistant text and tool calls, tool results of each output type", () => {
    const messages = toMessages([
      { role: "system", content: "Be brief." },
      { role: "user", content: [{ type: "text", text: "Hi" }] },
      {
        role: "user",
        content: [
          { type: "text", text: "What is this?" },
          { type: "file", mediaType: "image/png", data: new Uint8Array([1, 2, 3]) },
          { type: "file", mediaType: "image/*", data: new URL("https://example.com/cat.jpg") }
        ]
      },
      {
        role: "assistant",
        content: [
          { type: "reasoning", text: "thinking" },
          { type: "text", text: "Let me look." },
          { type: "tool-call", toolCallId: "c1", toolName: "look", input: { q: "cat" } },
          { type: "tool-call", toolCallId: "c2", toolName: "run", input: {}, providerExecuted: true }
        ]
      },
      {
        role: "tool",
        content: [
          { type: "tool-result", toolCallId: "c1", toolName: "look", output: { type: "json", value: { found: true } } },
          { type: "tool-result", toolCallId: "c3", toolName: "x", output: { type: "text", value: "plain" } },
          { type: "tool-result", toolCallId: "c4", toolName: "x", output: { type: "execution-denied" } }
        ]
      }
    ])
    expect(messages).toEqual([
      { role: "system", content: "Be brief." },
      { role: "user", content: "Hi" },
      {
        role: "user",
        content: [
          { type: "text", text: "What is this?" },
          { type: "image_url", image_url: { url: "data:image/png;base64,AQID" } },
          { type: "image_url", image_url: { url: "https://example.com/cat.jpg" } }
        ]
      },
      {
        role: "assistant",
        content: "Let me look.",
        tool_calls: [{ id: "c1", type: "function", function: { name: "look", arguments: "{\"q\":\"cat\"}" } }]
      },
      { role: "tool", tool_call_id: "c1", content: "{\"found\":true}" },
      { role: "tool", tool_call_id: "c3", content: "plain" },
      { role: "tool", tool_call_id: "c4", content: "Tool execution denied." }
    ])
  })

  it("settings map to request fields; what cannot be routed is a warning; unsupported content throws", () => {
    const { request, warnings } = toRequest({
      prompt: [{ role: "user", content: [{ type: "text", text: "hi" }] }],
      maxOutputTokens: 100,
      temperature: 0.5,
      topP: 0.9,
      topK: 3,
      stopSequences: ["END"],
      seed: 7,
      headers: { "user-agent": "ai/6", "x-custom": "1" },
      responseFormat: { type: "json" }
    })
    expect(request).toEqual({
      messages: [{ role: "user", content: "hi" }],
      max_tokens: 100,
      temperature: 0.5,
      top_p: 0.9,
      stop: ["END"],
      seed: 7,
      response_format: { type: "json_object" }
    })
    expect(warnings.map((w) => (w.type === "other" ? w.message : w.feature))).toEqual(["topK", "headers"])
    expect(() => toMessages([{ role: "user", content: [{ type: "file", mediaType: "video/mp4", data: "AAAA" }] }]))
      .toThrow(/video\/mp4/)
  })
})

// Last: importing @effect/platform-node installs undici as the process-wide fetch dispatcher, so the FetchHttpClient
// tests above run before it is loaded.
suite(
  "NodeRouterHttpClient.layerUndici",
  Layer.unwrapEffect(
    Effect.map(Effect.promise(() => import("../src/node/NodeRouterHttpClient.js")), (m) => m.layerUndici)
  )
)

describe("AiSdk: the trail in provider metadata", () => {
  it("is the trail's schema encoding, attempt for attempt (errors, skips, hedges, optional fields)", () => {
    const base = { index: 1, attempt: 1, model: "a", provider: "openai", startedAt: 1000, endedAt: 1040 }
    const limited = new RouterError.RateLimited({
      provider: "openai",
      model: "a",
      attempt: 1,
      status: 429,
      retryAfterMillis: 1000
    })
    const trail = [
      new Attempt({ ...base, outcome: "retry", error: limited, waitMillis: 1000, note: "server asked to wait" }),
      new Attempt({ ...base, index: 2, outcome: "skipped", reopensAt: 5000, limit: "requests", deployment: "d1" }),
      new Attempt({ ...base, index: 3, attempt: 2, outcome: "cancelled", hedge: 1 }),
      new Attempt({ ...base, index: 4, attempt: 2, outcome: "success", cost: 0.25, probe: true, deployment: undefined })
    ]
    const json = bridge.trailToJson(trail)
    expect(json).toEqual(Schema.encodeSync(Schema.Array(Attempt))(trail))
    // Plain JSON values: what JSON carries is all of it.
    expect(JSON.parse(JSON.stringify(json))).toEqual(json)
    expect(json.map((a) => Object.getPrototypeOf(a))).toEqual(trail.map(() => Object.prototype))
  })
})
