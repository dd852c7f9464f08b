/**
 * The Gemini protocol on the in-memory FakeHttpClient: request translation (URL, key header, contents, roles,
 * systemInstruction, generationConfig, functionDeclarations, tool config), answers (text, function calls, finish
 * reasons, safety, blocked prompts, usage), streams without a terminator, and the error classifier. The status-to-mode
 * table over real sockets is in `NativeProtocols.wire.test.ts`.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import type { ChatChunk } from "../src/ChatChunk.js"
import type { ChatRequest } from "../src/ChatRequest.js"
import * as Gemini from "../src/Gemini.js"
import * as Model from "../src/Model.js"
import * as Router from "../src/Router.js"
import type * as RouterError from "../src/RouterError.js"
import * as FakeHttpClient from "../src/testing/FakeHttpClient.js"
import * as S from "../src/testing/UpstreamScript.js"

const KEY = "gemini-test-key-0123456789"
const endpoint = Gemini.endpoint({ baseUrl: FakeHttpClient.geminiBaseUrl, apiKey: Redacted.make(KEY) })
const hi: ChatRequest = { messages: [{ role: "user", content: "hi" }] }
const once = { retry: { maxAttempts: 1 }, health: false } as const
const fake = (script: S.Script) => FakeHttpClient.layer({ script, apiKey: KEY })
const router = (...names: ReadonlyArray<string>) =>
  Router.make({ models: names.map((name) => Model.make({ name, endpoint })), ...once })
const sse = (...events: ReadonlyArray<unknown>) =>
  S.fail(200, {
    body: events.map((e) => `data: ${JSON.stringify(e)}\r\n\r\n`).join(""),
    headers: { "content-type": "text/event-stream" }
  })
const text = (t: string, extra: Record<string, unknown> = {}) => ({
  candidates: [{ content: { parts: [{ text: t }], role: "model" }, index: 0, ...extra }]
})

describe("Gemini: request translation", () => {
  it("URL: the model is one percent-encoded path segment; `models/` is taken off; alt=sse for streams", () => {
    expect(Gemini.callUrl("https://g.test/", "v1beta", "gemini-2.5-flash", false)).toBe(
      "https://g.test/v1beta/models/gemini-2.5-flash:generateContent"
    )
    expect(Gemini.callUrl("https://g.test", "v1", "models/gemini-pro", true)).toBe(
      "https://g.test/v1/models/gemini-pro:streamGenerateContent?alt=sse"
    )
    expect(Gemini.callUrl("https://g.test", "v1beta", "tuned/a b:c?d#e", false)).toBe(
      "https://g.test/v1beta/models/tuned%2Fa%20b%3Ac%3Fd%23e:generateContent"
    )
  })

  it("contents with roles user/model, systemInstruction, function calls and responses, images", () => {
    expect(Gemini.toWire({
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "Weather in Paris and Rome?" },
        {
          role: "assistant",
          content: null,
          tool_calls: [
            { id: "c1", type: "function", function: { name: "weather", arguments: "{\"city\":\"Paris\"}" } },
            { id: "c2", type: "function", function: { name: "weather", arguments: "{\"city\":\"Rome\"}" } }
          ]
        },
        { role: "tool", tool_call_id: "c1", content: "{\"c\":18}" },
        { role: "tool", tool_call_id: "c2", content: "24°C" },
        { role: "assistant", content: "Paris 18, Rome 24." },
        {
          role: "user",
          content: [{ type: "text", text: "And this?" }, {
            type: "image_url",
            image_url: { url: "data:image/jpeg;base64,BBBB" }
          }]
        }
      ]
    })).toEqual({
      systemInstruction: { parts: [{ text: "Be brief." }] },
      contents: [
        { role: "user", parts: [{ text: "Weather in Paris and Rome?" }] },
        {
          role: "model",
          parts: [
            { functionCall: { id: "c1", name: "weather", args: { city: "Paris" } } },
            { functionCall: { id: "c2", name: "weather", args: { city: "Rome" } } }
          ]
        },
        {
          role: "user",
          parts: [
            { functionResponse: { id: "c1", name: "weather", response: { c: 18 } } },
            { functionResponse: { id: "c2", name: "weather", response: { content: "24°C" } } }
          ]
        },
        { role: "model", parts: [{ text: "Paris 18, Rome 24." }] },
        {
          role: "user",
          parts: [{ text: "And this?" }, { inlineData: { mimeType: "image/jpeg", data: "BBBB" } }]
        }
      ]
    })
  })

  it("generationConfig, functionDeclarations, toolConfig; OpenAI-only fields left out; extras pass through", () => {
    const body = Gemini.toWire({
      messages: [{ role: "user", content: "x" }],
      temperature: 0.2,
      top_p: 0.8,
      max_tokens: 50,
      stop: "END",
      n: 2,
      seed: 3,
      presence_penalty: 0.1,
      frequency_penalty: 0.2,
      user: "u-1",
      response_format: { type: "json_schema", json_schema: { name: "s", schema: { type: "object" } } },
      tools: [{ type: "function", function: { name: "f", description: "does f", parameters: { type: "object" } } }],
      tool_choice: { type: "function", function: { name: "f" } },
      safetySettings: [{ category: "HARM_CATEGORY_HATE_SPEECH", threshold: "BLOCK_NONE" }],
      model_kwargs: { generationConfig: { topK: 4 } }
    } as ChatRequest)
    expect(body).toEqual({
      contents: [{ role: "user", parts: [{ text: "x" }] }],
      generationConfig: {
        temperature: 0.2,
        topP: 0.8,
        maxOutputTokens: 50,
        stopSequences: ["END"],
        candidateCount: 2,
        seed: 3,
        presencePenalty: 0.1,
        frequencyPenalty: 0.2,
        responseMimeType: "application/json",
        responseJsonSchema: { type: "object" },
        topK: 4
      },
      tools: [{
        functionDeclarations: [{ name: "f", description: "does f", parametersJsonSchema: { type: "object" } }]
      }],
      toolConfig: { functionCallingConfig: { mode: "ANY", allowedFunctionNames: ["f"] } },
      safetySettings: [{ category: "HARM_CATEGORY_HATE_SPEECH", threshold: "BLOCK_NONE" }]
    })
    const mode = (tool_choice: ChatRequest["tool_choice"]) =>
      (Gemini.toWire({ messages: [{ role: "user", content: "x" }], tool_choice }).toolConfig as {
        functionCallingConfig: unknown
      }).functionCallingConfig
    expect([mode("auto"), mode("required"), mode("none")]).toEqual([{ mode: "AUTO" }, { mode: "ANY" }, {
      mode: "NONE"
    }])
  })

  it.effect("on the wire: the key only in x-goog-api-key, never in the query; the model encoded; alt=sse", () =>
    Effect.gen(function*() {
      const r = yield* router("gemini/odd name")
      yield* r.generate(hi)
      yield* Router.collect(r.stream(hi))
      const requests = yield* FakeHttpClient.requests
      expect(requests.map((q) => [q.protocol, q.path, q.query, q.model, q.stream])).toEqual([
        ["gemini", "/v1beta/models/gemini%2Fodd%20name:generateContent", "", "gemini/odd name", false],
        ["gemini", "/v1beta/models/gemini%2Fodd%20name:streamGenerateContent", "alt=sse", "gemini/odd name", true]
      ])
      for (const q of requests) {
        expect(q.headers["x-goog-api-key"]).toBe(KEY)
        expect(q.headers["authorization"]).toBeUndefined()
        expect(`${q.path}?${q.query}`).not.toContain(KEY)
        expect(q.body).toEqual({ contents: [{ role: "user", parts: [{ text: "hi" }] }] })
      }
      expect([endpoint.protocol, endpoint.provider]).toEqual(["gemini", "google"])
    }).pipe(Effect.provide(fake({ "*": [S.succeed()] }))))
})

describe("Gemini: answers", () => {
  it.effect("text and function calls, finish reasons mapped, usage from usageMetadata", () =>
    Effect.gen(function*() {
      const r = yield* router("g")
      const plain = yield* r.generate(hi)
      expect([plain.id, plain.model, plain.text, plain.choices[0]!.finishReason]).toEqual([
        "resp-1",
        "g",
        "Bonjour",
        "length"
      ])
      expect(plain.usage).toEqual({ promptTokens: 12, completionTokens: 3, totalTokens: 15 })
      const tools = yield* r.generate(hi)
      expect(tools.choices[0]!.finishReason).toBe("tool_calls")
      expect(tools.choices[0]!.toolCalls.map((t) => [t.id, t.name, t.arguments])).toEqual([
        ["c1", "weather", "{\"city\":\"Paris\"}"]
      ])
      const safety = yield* r.generate(hi)
      expect(safety.choices.map((c) => [c.index, c.text, c.finishReason, c.toolCalls.map((t) => t.id)])).toEqual([
        [0, "partial", "content_filter", []],
        [1, "b", "tool_calls", ["call_0"]]
      ])
      // thought parts are not the answer; thought tokens are completion tokens
      expect(safety.usage).toEqual({ promptTokens: 5, completionTokens: 7 + 20, totalTokens: 32 })
    }).pipe(Effect.provide(fake({
      g: [
        S.succeed({ text: "Bonjour", usage: { promptTokens: 12, completionTokens: 3 }, finishReason: "length" }),
        S.succeed({ toolCalls: [{ id: "c1", name: "weather", arguments: { city: "Paris" } }] }),
        S.fail(200, {
          body: {
            candidates: [
              { content: { parts: [{ text: "partial" }], role: "model" }, finishReason: "SAFETY", index: 0 },
              {
                content: {
                  parts: [{ text: "thinking…", thought: true }, { text: "b" }, { functionCall: { name: "f" } }]
                },
                finishReason: "STOP",
                index: 1
              }
            ],
            usageMetadata: { promptTokenCount: 5, candidatesTokenCount: 7, thoughtsTokenCount: 20, totalTokenCount: 32 }
          }
        })
      ]
    }))))

  it("finish reasons", () => {
    expect(
      ["STOP", "MAX_TOKENS", "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "OTHER"].map((r) =>
        Gemini.finishReason(r, false)
      )
    ).toEqual([
      "stop",
      "length",
      "content_filter",
      "content_filter",
      "content_filter",
      "content_filter",
      "content_filter",
      "OTHER"
    ])
    expect(Gemini.finishReason("STOP", true)).toBe("tool_calls")
  })

  it.effect("a blocked prompt is ContentFiltered and falls back; a 200 error body is its error", () =>
    Effect.gen(function*() {
      const chain = yield* router("blocked", "ok")
      const response = yield* chain.generate(hi)
      expect(response.trail.map((a) => `${a.model}:${a.outcome}:${a.error?._tag ?? ""}`)).toEqual([
        "blocked:fallback:ContentFiltered",
        "ok:success:"
      ])
      const streamed = yield* Router.collect(chain.stream(hi))
      expect(streamed.trail.map((a) => a.error?._tag ?? "")).toEqual(["ContentFiltered", ""])
      expect((yield* Effect.flip((yield* router("err")).generate(hi)))._tag).toBe("ServiceUnavailable")
    }).pipe(Effect.provide(fake({
      blocked: [
        S.fail(200, { body: { promptFeedback: { blockReason: "PROHIBITED_CONTENT" } } }),
        sse({ promptFeedback: { blockReason: "SAFETY" }, usageMetadata: { promptTokenCount: 3 } })
      ],
      ok: [S.succeed({ text: "fine" })],
      err: [S.inBandError({ type: "overloaded", message: "The model is overloaded." })]
    }))))
})

const chunksOf = <E>(stream: Stream.Stream<ChatChunk, E>) =>
  Effect.map(Stream.runCollect(stream), (c) => Chunk.toReadonlyArray(c))

describe("Gemini: streams", () => {
  it.effect("no terminator: complete when the body ends after a finishReason; function calls arrive whole", () =>
    Effect.gen(function*() {
      const chunks = yield* chunksOf((yield* router("g")).stream(hi))
      expect(chunks[0]).toMatchObject({ _tag: "Started", id: "resp-1", model: "g", provider: "google" })
      expect(chunks.slice(1)).toEqual([
        { _tag: "TextDelta", index: 0, text: "Hi " },
        { _tag: "TextDelta", index: 0, text: "you" },
        { _tag: "ToolCallDelta", index: 0, toolCallIndex: 0, id: "t1", name: "f", arguments: "{\"x\":1}" },
        { _tag: "Finish", index: 0, reason: "tool_calls" },
        { _tag: "Usage", promptTokens: 7, completionTokens: 4, totalTokens: 11 }
      ])
    }).pipe(Effect.provide(fake({
      g: [S.succeed({
        chunks: ["Hi ", "you"],
        toolCalls: [{ id: "t1", name: "f", arguments: { x: 1 } }],
        usage: { promptTokens: 7, completionTokens: 4 }
      })]
    }))))

  it.effect("usage riding on every chunk is reported once with the finish, and again only when revised after it", () =>
    Effect.gen(function*() {
      const chunks = yield* chunksOf((yield* router("g")).stream(hi))
      expect(
        chunks.filter((c) => c._tag !== "Started").map((c) => c._tag === "Usage" ? `U${c.completionTokens}` : c._tag)
      )
        .toEqual(["TextDelta", "TextDelta", "Finish", "U2", "U3"])
    }).pipe(Effect.provide(fake({
      g: [sse(
        { ...text("a"), usageMetadata: { promptTokenCount: 2, candidatesTokenCount: 1, totalTokenCount: 3 } },
        {
          ...text("b", { finishReason: "STOP" }),
          usageMetadata: { promptTokenCount: 2, candidatesTokenCount: 2, totalTokenCount: 4 }
        },
        { usageMetadata: { promptTokenCount: 2, candidatesTokenCount: 3, totalTokenCount: 5 } }
      )]
    }))))

  it.effect("a body that ends without a finishReason is truncated after content, malformed before it", () =>
    Effect.gen(function*() {
      const late = yield* Effect.flip(Router.collect((yield* router("late")).stream(hi)))
      expect(late._tag).toBe("StreamInterrupted")
      expect([(late as RouterError.StreamInterrupted).reason, (late as RouterError.StreamInterrupted).text]).toEqual([
        "truncated",
        "Hell"
      ])
      const early = yield* Effect.flip(Router.collect((yield* router("early")).stream(hi)))
      expect(early._tag).toBe("MalformedResponse")
    }).pipe(Effect.provide(fake({
      late: [S.endWithoutFinish({ afterChunks: 1 })],
      early: [S.endWithoutFinish({ afterChunks: 0 })]
    }))))

  it.effect("an error event: before content it falls back, after content it interrupts; a malformed event fails", () =>
    Effect.gen(function*() {
      const fell = yield* Router.collect((yield* router("early", "ok")).stream(hi))
      expect(fell.trail.map((a) => a.error?._tag ?? "")).toEqual(["RateLimited", ""])
      const late = yield* Effect.flip(Router.collect((yield* router("late", "ok")).stream(hi)))
      expect([late._tag, (late as RouterError.StreamInterrupted).cause?._tag]).toEqual([
        "StreamInterrupted",
        "ServerError"
      ])
      const wrong = yield* Effect.flip(Router.collect((yield* router("wrong")).stream(hi)))
      expect(wrong._tag).toBe("MalformedResponse")
      const ignored = yield* Router.collect((yield* router("unknown")).stream(hi))
      expect(ignored.text).toBe("Hello from unknown")
    }).pipe(Effect.provide(fake({
      early: [S.inBandError({ afterChunks: 0, type: "RESOURCE_EXHAUSTED", message: "Resource has been exhausted" })],
      late: [S.inBandError({ afterChunks: 1 })],
      wrong: [S.malformed({ kind: "wrong-schema" })],
      unknown: [S.malformed({ kind: "bad-event", afterChunks: 1 })],
      ok: [S.succeed()]
    }))))
})

describe("Gemini: error classification", () => {
  const error = (status: string, message = "m", details?: ReadonlyArray<unknown>) => ({
    error: { code: 0, message, status, ...(details === undefined ? {} : { details }) }
  })
  const classify = (status: number | undefined, body: unknown) => Gemini.classifyError({ status, body })
  const quota = (quotaId: string, quotaValue = "10") => ({
    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
    violations: [{ quotaMetric: "m", quotaId, quotaValue }]
  })

  it("RESOURCE_EXHAUSTED: a rate limit with its RetryInfo wait, unless the quota is daily or 0", () => {
    expect(classify(429, error("RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."))).toEqual({
      tag: "RateLimited"
    })
    expect(
      classify(
        429,
        error("RESOURCE_EXHAUSTED", "x", [quota("GenerateRequestsPerMinutePerProjectPerModel-FreeTier"), {
          "@type": "type.googleapis.com/google.rpc.RetryInfo",
          retryDelay: "36.5s"
        }])
      )
    ).toEqual({ tag: "RateLimited", retryAfterMillis: 36500 })
    expect(
      classify(429, error("RESOURCE_EXHAUSTED", "x", [quota("GenerateRequestsPerDayPerProjectPerModel-FreeTier")]))
    )
      .toEqual({ tag: "QuotaExhausted" })
    expect(classify(429, error("RESOURCE_EXHAUSTED", "x", [quota("GenerateContentInputTokensPerModelPerMinute", "0")])))
      .toEqual({ tag: "QuotaExhausted" })
    expect(
      classify(
        429,
        error(
          "RESOURCE_EXHAUSTED",
          "* Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 0, model: gemini-3-pro"
        )
      )
    ).toEqual({ tag: "QuotaExhausted" })
  })

  it("the other statuses", () => {
    const tags = [
      classify(
        400,
        error(
          "INVALID_ARGUMENT",
          "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576)."
        )
      ),
      classify(400, error("INVALID_ARGUMENT", "Invalid JSON payload received.")),
      classify(400, error("INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.")),
      classify(400, error("FAILED_PRECONDITION", "User location is not supported for the API use.")),
      classify(403, error("PERMISSION_DENIED")),
      classify(401, error("UNAUTHENTICATED")),
      classify(404, error("NOT_FOUND")),
      classify(500, error("INTERNAL")),
      classify(503, error("UNAVAILABLE", "The model is overloaded. Please try again later.")),
      classify(504, error("DEADLINE_EXCEEDED")),
      classify(undefined, { promptFeedback: { blockReason: "OTHER" } })
    ].map((c) => c?.tag)
    expect(tags).toEqual([
      "ContextLengthExceeded",
      "BadRequest",
      "AuthenticationFailed",
      "PermissionDenied",
      "PermissionDenied",
      "AuthenticationFailed",
      "ModelNotFound",
      "ServerError",
      "ServiceUnavailable",
      "Timeout",
      "ContentFiltered"
    ])
    // Not Gemini's body, or a status it does not name: the HTTP status decides.
    expect(classify(502, "<html></html>")).toBeUndefined()
    expect(classify(500, error("UNKNOWN"))).toBeUndefined()
    expect(classify(200, text("fine"))).toBeUndefined()
  })
})
