/**
 * The Anthropic Messages protocol on the in-memory FakeHttpClient: request translation, answers (text, tool_use, stop
 * reasons, usage), stream events (ping, tool-call deltas, the error event before and after content, truncation,
 * malformed events) and the error classifier. The status-to-mode table over real sockets is in
 * `NativeProtocols.wire.test.ts`.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as Anthropic from "../src/Anthropic.js"
import type { ChatChunk } from "../src/ChatChunk.js"
import type { ChatRequest } from "../src/ChatRequest.js"
import * as Model from "../src/Model.js"
import * as Router from "../src/Router.js"
import type * as RouterError from "../src/RouterError.js"
import * as FakeHttpClient from "../src/testing/FakeHttpClient.js"
import * as S from "../src/testing/UpstreamScript.js"

const KEY = "sk-ant-test-0123456789abcdef"
const endpoint = Anthropic.endpoint({ baseUrl: FakeHttpClient.anthropicBaseUrl, apiKey: Redacted.make(KEY) })
const hi: ChatRequest = { messages: [{ role: "user", content: "hi" }] }
const once = { retry: { maxAttempts: 1 }, health: false } as const
const fake = (script: S.Script) => FakeHttpClient.layer({ script, apiKey: KEY })
const router = (...names: ReadonlyArray<string>) =>
  Router.make({ models: names.map((name) => Model.make({ name, endpoint })), ...once })
const outcomes = (error: RouterError.RouterStreamError) =>
  ("trail" in error ? error.trail ?? [] : []).map((a) => `${a.model}:${a.outcome}:${a.error?._tag ?? ""}`)

describe("Anthropic: request translation", () => {
  it("system messages become `system`, tool results `tool_result` blocks, tool calls `tool_use` blocks", () => {
    const body = Anthropic.toWire("claude", {
      messages: [
        { role: "system", content: "Be brief." },
        { role: "system", content: "Answer in French." },
        { role: "user", content: "Weather in Paris and Rome?" },
        {
          role: "assistant",
          content: "Checking.",
          tool_calls: [
            { id: "t1", type: "function", function: { name: "weather", arguments: "{\"city\":\"Paris\"}" } },
            { id: "t2", type: "function", function: { name: "weather", arguments: "{\"city\":\"Rome\"}" } }
          ]
        },
        { role: "tool", tool_call_id: "t1", content: "18°C" },
        { role: "tool", tool_call_id: "t2", content: "24°C" },
        { role: "assistant", content: "Paris 18, Rome 24." },
        {
          role: "user",
          content: [{ type: "text", text: "And this?" }, {
            type: "image_url",
            image_url: { url: "data:image/png;base64,AAAA" }
          }, { type: "image_url", image_url: { url: "https://example.test/a.png" } }]
        }
      ]
    }, false)
    expect(body).toEqual({
      model: "claude",
      max_tokens: Anthropic.defaultMaxTokens,
      system: "Be brief.\n\nAnswer in French.",
      messages: [
        { role: "user", content: "Weather in Paris and Rome?" },
        {
          role: "assistant",
          content: [
            { type: "text", text: "Checking." },
            { type: "tool_use", id: "t1", name: "weather", input: { city: "Paris" } },
            { type: "tool_use", id: "t2", name: "weather", input: { city: "Rome" } }
          ]
        },
        {
          role: "user",
          content: [
            { type: "tool_result", tool_use_id: "t1", content: "18°C" },
            { type: "tool_result", tool_use_id: "t2", content: "24°C" }
          ]
        },
        { role: "assistant", content: "Paris 18, Rome 24." },
        {
          role: "user",
          content: [
            { type: "text", text: "And this?" },
            { type: "image", source: { type: "base64", media_type: "image/png", data: "AAAA" } },
            { type: "image", source: { type: "url", url: "https://example.test/a.png" } }
          ]
        }
      ]
    })
  })

  it("parameters: max_tokens given or defaulted, stop, tools, tool choice, user; OpenAI-only sampling left out; extras pass", () => {
    const request = {
      messages: [{ role: "user" as const, content: "x" }],
      max_tokens: 99,
      temperature: 0.3,
      top_p: 0.9,
      stop: "END",
      n: 1,
      seed: 7,
      presence_penalty: 0.5,
      frequency_penalty: 0.5,
      user: "u-1",
      tools: [
        { type: "function" as const, function: { name: "f", description: "does f", parameters: { type: "object" } } },
        { type: "function" as const, function: { name: "g" } }
      ],
      tool_choice: "required" as const,
      top_k: 5,
      model_kwargs: { thinking: { type: "enabled", budget_tokens: 1024 } }
    }
    expect(Anthropic.toWire("claude", request, true)).toEqual({
      model: "claude",
      max_tokens: 99,
      messages: [{ role: "user", content: "x" }],
      temperature: 0.3,
      top_p: 0.9,
      top_k: 5,
      stop_sequences: ["END"],
      metadata: { user_id: "u-1" },
      tools: [
        { name: "f", description: "does f", input_schema: { type: "object" } },
        { name: "g", input_schema: { type: "object", properties: {} } }
      ],
      tool_choice: { type: "any" },
      thinking: { type: "enabled", budget_tokens: 1024 },
      stream: true
    })
    const choice = (tool_choice: ChatRequest["tool_choice"]) =>
      Anthropic.toWire("c", { messages: request.messages, tool_choice }, false, 10).tool_choice
    expect([choice("auto"), choice("none"), choice({ type: "function", function: { name: "f" } })]).toEqual([
      { type: "auto" },
      { type: "none" },
      { type: "tool", name: "f" }
    ])
    // parallel_tool_calls: false is Anthropic's disable_parallel_tool_use; stream_options is OpenAI's own.
    expect(
      Anthropic.toWire(
        "c",
        {
          messages: request.messages,
          parallel_tool_calls: false,
          stream_options: { include_usage: true }
        } as ChatRequest,
        false,
        10
      )
    ).toEqual({
      model: "c",
      max_tokens: 10,
      messages: request.messages,
      tool_choice: { type: "auto", disable_parallel_tool_use: true }
    })
    expect(
      Anthropic.toWire(
        "c",
        { messages: request.messages, tool_choice: "required", parallel_tool_calls: true } as ChatRequest,
        false,
        10
      )
        .tool_choice
    ).toEqual({ type: "any" })
    // The endpoint's own default max_tokens; an `n` above 1 is sent for the server to refuse, not silently dropped.
    expect(Anthropic.toWire("c", { messages: request.messages, n: 2 }, false, 10)).toMatchObject({
      max_tokens: 10,
      n: 2
    })
  })

  it.effect("the request on the wire: path, x-api-key, anthropic-version, body with the endpoint's max_tokens", () =>
    Effect.gen(function*() {
      const custom = Anthropic.endpoint({
        baseUrl: `${FakeHttpClient.anthropicBaseUrl}/`,
        apiKey: Redacted.make(KEY),
        defaultMaxTokens: 321,
        headers: { "anthropic-beta": "tools-2024" }
      })
      const r = yield* Router.make({ models: [Model.make({ name: "claude-x", endpoint: custom })], ...once })
      yield* r.generate({ messages: [{ role: "system", content: "S" }, ...hi.messages], temperature: 0 })
      const [request] = yield* FakeHttpClient.requests
      expect(request!.protocol).toBe("anthropic")
      expect(request!.path).toBe("/v1/messages")
      expect(request!.headers["x-api-key"]).toBe(KEY)
      expect(request!.headers["anthropic-version"]).toBe(Anthropic.defaultVersion)
      expect(request!.headers["anthropic-beta"]).toBe("tools-2024")
      expect(request!.headers["authorization"]).toBeUndefined()
      expect(request!.body).toEqual({
        model: "claude-x",
        max_tokens: 321,
        system: "S",
        messages: hi.messages,
        temperature: 0
      })
      expect(custom.provider).toBe("anthropic")
      expect(custom.protocol).toBe("anthropic")
    }).pipe(Effect.provide(fake({ "*": [S.succeed()] }))))
})

describe("Anthropic: answers", () => {
  it.effect("text and tool_use blocks, stop_reason mapped, usage from input/output tokens", () =>
    Effect.gen(function*() {
      const r = yield* router("claude")
      const text = yield* r.generate(hi)
      expect(text.id).toBe("msg_1")
      expect(text.choices.map((c) => [c.text, c.finishReason, c.role])).toEqual([["Bonjour", "length", "assistant"]])
      expect(text.usage).toEqual({ promptTokens: 12, completionTokens: 3, totalTokens: 15 })
      const tools = yield* r.generate(hi)
      expect(tools.choices[0]!.finishReason).toBe("tool_calls")
      expect(tools.choices[0]!.text).toBe("")
      expect(tools.choices[0]!.toolCalls.map((t) => [t.id, t.name, t.arguments])).toEqual([
        ["toolu_1", "weather", "{\"city\":\"Paris\"}"]
      ])
      const raw = yield* r.generate(hi)
      // end_turn and stop_sequence are `stop`, refusal `content_filter`; cache tokens count as prompt tokens.
      expect(raw.choices[0]!.finishReason).toBe("content_filter")
      expect(raw.text).toBe("ab")
      expect(raw.usage).toEqual({ promptTokens: 1 + 20 + 300, completionTokens: 2, totalTokens: 323 })
    }).pipe(Effect.provide(fake({
      claude: [
        S.succeed({ text: "Bonjour", usage: { promptTokens: 12, completionTokens: 3 }, finishReason: "length" }),
        S.succeed({ toolCalls: [{ id: "toolu_1", name: "weather", arguments: { city: "Paris" } }] }),
        S.fail(200, {
          body: {
            id: "msg_x",
            type: "message",
            role: "assistant",
            model: "claude",
            content: [{ type: "thinking", thinking: "hmm" }, { type: "text", text: "a" }, { type: "text", text: "b" }],
            stop_reason: "refusal",
            usage: { input_tokens: 1, cache_creation_input_tokens: 20, cache_read_input_tokens: 300, output_tokens: 2 }
          }
        })
      ]
    }))))

  it("stop reasons", () => {
    expect(["end_turn", "stop_sequence", "max_tokens", "tool_use", "refusal", "pause_turn"].map(Anthropic.finishReason))
      .toEqual(["stop", "stop", "length", "tool_calls", "content_filter", "pause_turn"])
  })

  it.effect("a 200 whose body is an error object is that error, not a malformed answer", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip((yield* router("a")).generate(hi))
      expect(error._tag).toBe("ServiceUnavailable")
      const malformed = yield* Effect.flip((yield* router("b")).generate(hi))
      expect(malformed._tag).toBe("MalformedResponse")
    }).pipe(Effect.provide(fake({
      a: [S.inBandError({ type: "overloaded_error", message: "Overloaded" })],
      b: [S.malformed({ kind: "wrong-schema" })]
    }))))
})

const collect = <E>(stream: Stream.Stream<ChatChunk, E>) =>
  Effect.map(Stream.runCollect(stream), (c) => Chunk.toReadonlyArray(c).filter((x) => x._tag !== "Started"))

describe("Anthropic: streams", () => {
  it.effect("message_start names the answer; text, tool-call deltas, finish and usage, then message_stop", () =>
    Effect.gen(function*() {
      const r = yield* router("claude")
      const chunks = Chunk.toReadonlyArray(yield* Stream.runCollect(r.stream(hi)))
      expect(chunks[0]).toMatchObject({ _tag: "Started", id: "msg_1", model: "claude", provider: "anthropic" })
      expect(chunks.slice(1)).toEqual([
        { _tag: "TextDelta", index: 0, text: "Hi " },
        { _tag: "TextDelta", index: 0, text: "there" },
        { _tag: "ToolCallDelta", index: 0, toolCallIndex: 0, id: "t1", name: "f", arguments: "" },
        { _tag: "ToolCallDelta", index: 0, toolCallIndex: 0, arguments: "{\"x\":1}" },
        { _tag: "ToolCallDelta", index: 0, toolCallIndex: 1, id: "t2", name: "g", arguments: "" },
        { _tag: "ToolCallDelta", index: 0, toolCallIndex: 1, arguments: "{}" },
        { _tag: "Finish", index: 0, reason: "tool_calls" },
        { _tag: "Usage", promptTokens: 7, completionTokens: 5, totalTokens: 12 }
      ])
      const response = yield* Router.collect(r.stream(hi))
      expect(response.text).toBe("Hi there")
      expect(response.choices[0]!.toolCalls.map((t) => [t.id, t.name, t.arguments])).toEqual([
        ["t1", "f", "{\"x\":1}"],
        ["t2", "g", "{}"]
      ])
    }).pipe(Effect.provide(fake({
      claude: [S.succeed({
        chunks: ["Hi ", "there"],
        toolCalls: [{ id: "t1", name: "f", arguments: { x: 1 } }, { id: "t2", name: "g", arguments: "{}" }],
        usage: { promptTokens: 7, completionTokens: 5 }
      })]
    }))))

  it.effect("ping is not content: a stream that sends message_start and ping, then nothing, times out on its first token", () =>
    Effect.gen(function*() {
      const r = yield* Router.make({
        models: [Model.make({ name: "claude", endpoint })],
        ...once,
        timeout: { firstToken: "1 second" }
      })
      const fiber = yield* Effect.fork(Effect.flip(Router.collect(r.stream(hi))))
      yield* TestClock.adjust("999 millis")
      expect(fiber.unsafePoll()).toBeNull()
      yield* TestClock.adjust("1 millis")
      const error = yield* Fiber.join(fiber)
      expect(error._tag).toBe("Timeout")
      expect((error as RouterError.Timeout).phase).toBe("first-token")
    }).pipe(Effect.provide(fake({ claude: [S.stall({ afterChunks: 0 })] }))))

  it.effect("an error event before content falls back; after content it is StreamInterrupted with the text so far", () =>
    Effect.gen(function*() {
      const chain = yield* router("a", "b")
      const response = yield* Router.collect(chain.stream(hi))
      expect(response.text).toBe("from b")
      expect(response.trail.map((t) => `${t.model}:${t.outcome}:${t.error?._tag ?? ""}`)).toEqual([
        "a:fallback:ServiceUnavailable",
        "b:success:"
      ])
      const broken = yield* Effect.flip(Router.collect((yield* router("c", "b")).stream(hi)))
      expect(broken._tag).toBe("StreamInterrupted")
      const interrupted = broken as RouterError.StreamInterrupted
      expect(interrupted.reason).toBe("in-band-error")
      expect(interrupted.text).toBe("Hell")
      expect(interrupted.cause?._tag).toBe("RateLimited")
    }).pipe(Effect.provide(fake({
      a: [S.inBandError({ afterChunks: 0, type: "overloaded_error", message: "Overloaded" })],
      b: [S.succeed({ text: "from b" })],
      c: [S.inBandError({ afterChunks: 1, text: "Hello", type: "rate_limit_error", message: "slow down" })]
    }))))

  it.effect("a body that ends after content without message_delta or message_stop is truncated; before content it falls back", () =>
    Effect.gen(function*() {
      const truncated = yield* Effect.flip(Router.collect((yield* router("a")).stream(hi)))
      expect(truncated._tag).toBe("StreamInterrupted")
      expect((truncated as RouterError.StreamInterrupted).reason).toBe("truncated")
      const empty = yield* Effect.flip(Router.collect((yield* router("e")).stream(hi)))
      expect(empty._tag).toBe("MalformedResponse")
      expect(outcomes(empty)).toEqual(["e:failed:MalformedResponse"])
    }).pipe(Effect.provide(fake({
      a: [S.endWithoutFinish({ afterChunks: 2 })],
      e: [S.endWithoutFinish({ afterChunks: 0 })]
    }))))

  it.effect("a malformed event fails the stream; an event type Anthropic may add later is ignored", () =>
    Effect.gen(function*() {
      const wrong = yield* Effect.flip(Router.collect((yield* router("w")).stream(hi)))
      expect(wrong._tag).toBe("MalformedResponse")
      const notJson = yield* Effect.flip(Router.collect((yield* router("n")).stream(hi)))
      expect(notJson._tag).toBe("StreamInterrupted")
      expect((notJson as RouterError.StreamInterrupted).reason).toBe("malformed")
      const unknown = yield* collect((yield* router("u")).stream(hi))
      expect(unknown.map((c) => c._tag === "TextDelta" ? c.text : c._tag).join("|")).toBe(
        "Hell|o fr|om u|Finish|Usage"
      )
    }).pipe(Effect.provide(fake({
      w: [S.malformed({ kind: "wrong-schema" })],
      n: [S.malformed({ kind: "not-json", afterChunks: 1 })],
      u: [S.malformed({ kind: "bad-event", afterChunks: 1 })]
    }))))
})

describe("Anthropic: error classification", () => {
  const body = (type: string, message = "m", details?: unknown) => ({
    type: "error",
    error: { type, message, ...(details === undefined ? {} : { details }) }
  })
  const tag = (status: number | undefined, b: unknown) => Anthropic.classifyError({ status, body: b })?.tag

  it("error.type decides, refined by the message", () => {
    expect([
      tag(429, body("rate_limit_error")),
      tag(429, body("rate_limit_error", "x", { error_code: "enforced_spend_limit_reached" })),
      tag(529, body("overloaded_error", "Overloaded")),
      tag(undefined, body("overloaded_error")),
      tag(400, body("invalid_request_error", "prompt is too long: 208310 tokens > 200000 maximum")),
      tag(
        400,
        body(
          "invalid_request_error",
          "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits."
        )
      ),
      tag(400, body("invalid_request_error", "You have reached your specified API usage limits.")),
      tag(400, body("invalid_request_error", "messages: field required")),
      tag(undefined, body("invalid_request_error", "bad")),
      tag(401, body("authentication_error")),
      tag(403, body("permission_error")),
      tag(404, body("not_found_error", "model: claude-nope")),
      tag(413, body("request_too_large")),
      tag(402, body("billing_error")),
      tag(500, body("api_error")),
      tag(504, body("timeout_error"))
    ]).toEqual([
      "RateLimited",
      "QuotaExhausted",
      "ServiceUnavailable",
      "ServiceUnavailable",
      "ContextLengthExceeded",
      "QuotaExhausted",
      "QuotaExhausted",
      // a 400 of no other kind: the status decides (BadRequest); with no status (in-band) it is BadRequest
      undefined,
      "BadRequest",
      "AuthenticationFailed",
      "PermissionDenied",
      "ModelNotFound",
      "ContextLengthExceeded",
      "QuotaExhausted",
      "ServerError",
      "Timeout"
    ])
  })

  it("a body that is not Anthropic's, or a type it does not name, is left to the status", () => {
    expect(tag(502, "<html>bad gateway</html>")).toBeUndefined()
    expect(tag(502, { error: "plain" })).toBeUndefined()
    expect(tag(409, body("conflict_error"))).toBeUndefined()
    // invalid_request_error on a status: the status decides unless the message refines it.
    expect(tag(422, body("invalid_request_error", "bad"))).toBeUndefined()
  })
})
