/**
 * The router as an @effect/ai LanguageModel, under the TestClock on the FakeHttpClient: generateObject served by the
 * second model after the first is rate limited, a toolkit tool-call round trip, streamText falling back before its
 * first token and failing with the partial text after it, and the error mapping (our typed error kept as the cause).
 */
import * as AiError from "@effect/ai/AiError"
import * as Chat from "@effect/ai/Chat"
import * as LanguageModel from "@effect/ai/LanguageModel"
import * as Tool from "@effect/ai/Tool"
import * as Toolkit from "@effect/ai/Toolkit"
import { describe, expect, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import { EffectAi } from "../src/ai/index.js"
import * as aiError from "../src/ai/internal/aiError.js"
import type { Attempt } from "../src/Attempt.js"
import * as Model from "../src/Model.js"
import * as OpenAiCompatible from "../src/OpenAiCompatible.js"
import * as RetryPolicy from "../src/RetryPolicy.js"
import type * as Router from "../src/Router.js"
import * as RouterError from "../src/RouterError.js"
import * as FakeHttpClient from "../src/testing/FakeHttpClient.js"
import * as S from "../src/testing/UpstreamScript.js"

const KEY = "sk-effect-ai-test-0123456789"
const endpoint = OpenAiCompatible.endpoint({ baseUrl: FakeHttpClient.openAiBaseUrl, apiKey: Redacted.make(KEY) })
const models = [Model.make({ name: "a", endpoint }), Model.make({ name: "b", endpoint })]
/** One retry a second later, no jitter: a at 0 and 1000, then b at 1000. */
const oneRetry: Router.Options["retry"] = {
  initialDelay: "1 second",
  factor: 1,
  minDelay: 0,
  maxAttempts: 2,
  jitter: 0
}

const routed = (script: S.Script, options: Partial<Router.Options> = {}, config: EffectAi.Config = {}) =>
  EffectAi.layerRouter({ models, retry: oneRetry, ...options }, config).pipe(
    Layer.provideMerge(FakeHttpClient.layer({ script, apiKey: KEY }))
  )

const arrivals = Effect.map(FakeHttpClient.requests, (rs) => rs.map((r) => [r.model, r.receivedAt] as const))
const bodies = Effect.map(FakeHttpClient.requests, (rs) => rs.map((r) => r.body as Record<string, any>))
const outcomes = (trail: ReadonlyArray<Attempt>) => trail.map((a) => `${a.model}:${a.outcome}`)
const adjust = (millis: number) => TestClock.adjust(Duration.millis(millis))

const failure = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure")
  const error = exit.cause._tag === "Fail" ? exit.cause.error : undefined
  if (error === undefined) throw new Error(`expected a typed failure, got ${String(exit.cause)}`)
  return error
}

const Weather = Schema.Struct({ city: Schema.String, temperature: Schema.Number })

describe("EffectAi: generateObject", () => {
  it.effect("served by the second model after the first is rate limited: value, request, route and instants", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.fork(
        LanguageModel.generateObject({ prompt: "Weather in Paris?", schema: Weather, objectName: "weather" })
      )
      yield* adjust(999)
      expect(yield* arrivals).toEqual([["a", 0]])
      expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
      yield* adjust(1)
      const response = yield* Fiber.join(fiber)
      expect(response.value).toEqual({ city: "Paris", temperature: 21 })
      expect(yield* arrivals).toEqual([["a", 0], ["a", 1000], ["b", 1000]])

      const route = EffectAi.route(response.content)!
      expect([route.model, route.provider]).toEqual(["b", "openai"])
      expect(outcomes(route.trail)).toEqual(["a:retry", "a:fallback", "b:success"])
      expect(route.trail.slice(0, 2).map((a) => a.error?._tag)).toEqual(["RateLimited", "RateLimited"])
      expect(response.finishReason).toBe("stop")
      expect(response.usage.inputTokens).toBe(10)

      const body = (yield* bodies)[2]!
      expect(body.messages).toEqual([{ role: "user", content: "Weather in Paris?" }])
      expect(body.response_format.type).toBe("json_schema")
      expect(body.response_format.json_schema.name).toBe("weather")
      expect(body.response_format.json_schema.schema.required).toEqual(["city", "temperature"])
      expect(body.response_format.json_schema.strict).toBeUndefined()
      expect(body.tools).toBeUndefined()
    }).pipe(Effect.provide(routed({
      a: [S.rateLimited()],
      b: [S.succeed({ text: JSON.stringify({ city: "Paris", temperature: 21 }) })]
    }))))

  it.effect("an answer that does not fit the schema is MalformedOutput, after the router's success", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(LanguageModel.generateObject({ prompt: "?", schema: Weather }))
      expect(error._tag).toBe("MalformedOutput")
      // Not a router failure: nothing of ours to unwrap.
      expect(Option.isNone(EffectAi.routerError(error))).toBe(true)
    }).pipe(Effect.provide(routed({ a: [S.succeed({ text: "{\"city\":\"Paris\"}" })] }))))
})

const GetWeather = Tool.make("GetWeather", {
  description: "The current temperature in a city",
  parameters: { city: Schema.String },
  success: Schema.Struct({ temperature: Schema.Number })
})
const Tools = Toolkit.make(GetWeather)
const ToolsLive = Tools.toLayer({
  GetWeather: ({ city }) => Effect.succeed({ temperature: city === "Paris" ? 21 : 0 })
})

describe("EffectAi: toolkit", () => {
  it.effect("a tool call round trip: the call, the handler's result, and both sent back on the next turn", () =>
    Effect.gen(function*() {
      const chat = yield* Chat.empty
      const first = yield* chat.generateText({ prompt: "Weather in Paris?", toolkit: Tools })
      expect(first.finishReason).toBe("tool-calls")
      expect(first.toolCalls.map((c) => [c.id, c.name, c.params])).toEqual([["call_1", "GetWeather", {
        city: "Paris"
      }]])
      expect(first.toolResults.map((r) => [r.id, r.result])).toEqual([["call_1", { temperature: 21 }]])

      const second = yield* chat.generateText({ prompt: "And now?", toolkit: Tools })
      expect(second.text).toBe("21 degrees in Paris")

      const [request1, request2] = yield* bodies
      expect(request1!.tools).toEqual([{
        type: "function",
        function: {
          name: "GetWeather",
          description: "The current temperature in a city",
          parameters: {
            type: "object",
            properties: { city: { type: "string" } },
            required: ["city"],
            additionalProperties: false
          }
        }
      }])
      expect(request1!.tool_choice).toBe("auto")
      expect(request2!.messages).toEqual([
        { role: "user", content: "Weather in Paris?" },
        {
          role: "assistant",
          content: null,
          tool_calls: [{
            id: "call_1",
            type: "function",
            function: { name: "GetWeather", arguments: "{\"city\":\"Paris\"}" }
          }]
        },
        { role: "tool", tool_call_id: "call_1", content: "{\"temperature\":21}" },
        { role: "user", content: "And now?" }
      ])
    }).pipe(
      Effect.provide(ToolsLive),
      Effect.provide(routed({
        a: [
          S.succeed({ toolCalls: [{ id: "call_1", name: "GetWeather", arguments: { city: "Paris" } }] }),
          S.succeed({ text: "21 degrees in Paris" })
        ]
      }))
    ))

  it.effect("tool choice: a named tool, `required`, and `oneOf` with its mode", () =>
    Effect.gen(function*() {
      yield* LanguageModel.generateText({ prompt: "1", toolkit: Tools, toolChoice: { tool: "GetWeather" } })
      yield* LanguageModel.generateText({ prompt: "2", toolkit: Tools, toolChoice: "required" })
      yield* LanguageModel.generateText({ prompt: "3", toolkit: Tools, toolChoice: { oneOf: ["GetWeather"] } })
      yield* LanguageModel.generateText({ prompt: "4", toolkit: Tools, toolChoice: "none" })
      expect((yield* bodies).map((b) => b.tool_choice)).toEqual([
        { type: "function", function: { name: "GetWeather" } },
        "required",
        "auto",
        "none"
      ])
    }).pipe(Effect.provide(ToolsLive), Effect.provide(routed({ a: [S.succeed({ text: "ok" })] }))))

  it.effect("a streamed tool call: params parts, the call, the handler's result", () =>
    Effect.gen(function*() {
      const parts = yield* Stream.runCollect(LanguageModel.streamText({ prompt: "Weather?", toolkit: Tools }))
      const types = [...parts].map((p) => p.type)
      expect(types.filter((t) => t.startsWith("tool-params")).slice(0, 2)).toEqual([
        "tool-params-start",
        "tool-params-delta"
      ])
      const call = [...parts].find((p) => p.type === "tool-call")
      const result = [...parts].find((p) => p.type === "tool-result")
      expect(call?.type === "tool-call" && [call.id, call.name, call.params]).toEqual(["call_9", "GetWeather", {
        city: "Oslo"
      }])
      expect(result?.type === "tool-result" && result.result).toEqual({ temperature: 0 })
      const finish = [...parts].find((p) => p.type === "finish")
      expect(finish?.type === "finish" && finish.reason).toBe("tool-calls")
    }).pipe(
      Effect.provide(ToolsLive),
      Effect.provide(routed({
        a: [S.succeed({ toolCalls: [{ id: "call_9", name: "GetWeather", arguments: { city: "Oslo" } }] })]
      }))
    ))
})

describe("EffectAi: streamText", () => {
  const deltas = (parts: ReadonlyArray<{ readonly type: string }>) =>
    parts.flatMap((p) => (p.type === "text-delta" ? [(p as unknown as { delta: string }).delta] : []))

  it.effect("falls back before its first token: b streams from 2000, the metadata names b and the trail", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.fork(Stream.runCollect(LanguageModel.streamText({ prompt: "Tell me" })))
      yield* adjust(1999)
      expect(yield* arrivals).toEqual([["a", 0]])
      yield* adjust(1)
      expect(yield* arrivals).toEqual([["a", 0], ["b", 2000]])
      yield* adjust(1000)
      const parts = [...(yield* Fiber.join(fiber))]
      expect(deltas(parts).join("")).toBe("streamed by b")
      expect(parts.map((p) => p.type).filter((t) => t !== "text-delta")).toEqual([
        "response-metadata",
        "text-start",
        "text-end",
        "finish"
      ])
      const metadata = parts[0]!
      expect(metadata.type === "response-metadata" && Option.getOrNull(metadata.modelId)).toBe("b")
      const route = EffectAi.route(parts)!
      expect(outcomes(route.trail)).toEqual(["a:fallback", "b:success"])
      const error = route.trail[0]!.error
      expect(error?._tag === "Timeout" && error.phase).toBe("first-token")
      const finish = parts.at(-1)!
      expect(finish.type === "finish" && [finish.reason, finish.usage.inputTokens]).toEqual(["stop", 10])
      expect((yield* FakeHttpClient.FakeUpstream).closedConnections()).toBe(1)
    }).pipe(Effect.provide(routed(
      { a: [S.hang({ stage: "first-token" })], b: [S.succeed({ text: "streamed by b", chunkDelayMs: 100 })] },
      { retry: RetryPolicy.none, timeout: { firstToken: "2 seconds" } }
    ))))

  it.effect("a cut after the first token fails with the partial text, delivered once, and no fallback", () =>
    Effect.gen(function*() {
      const received: Array<{ readonly type: string }> = []
      const fiber = yield* Effect.fork(
        LanguageModel.streamText({ prompt: "Tell me" }).pipe(
          Stream.runForEach((part) => Effect.sync(() => received.push(part)))
        )
      )
      yield* adjust(1000)
      const error = failure(yield* Fiber.await(fiber))
      expect(error._tag).toBe("HttpRequestError")
      expect(error._tag === "HttpRequestError" && error.reason).toBe("Transport")
      const ours = EffectAi.unwrapError(error)
      expect(ours._tag).toBe("StreamInterrupted")
      if (ours._tag !== "StreamInterrupted") return
      expect(ours.reason).toBe("cut")
      expect(ours.text).toBe("Hello wo")
      expect(deltas(received).join("")).toBe("Hello wo")
      expect(received.map((p) => p.type).includes("finish")).toBe(false)
      expect(outcomes(ours.trail ?? [])).toEqual(["a:success"])
      expect(yield* arrivals).toEqual([["a", 0]])
    }).pipe(Effect.provide(routed({
      a: [S.cut({ text: "Hello world, and more", afterChunks: 2, chunkDelayMs: 100 })],
      b: [S.succeed()]
    }))))
})

describe("EffectAi: errors", () => {
  it.effect("every model rate limited: HttpResponseError 429 carrying RateLimited with its trail; catchTag after unwrapError", () =>
    Effect.gen(function*() {
      // The retries wait 1 s each on the TestClock: a at 0 and 1000, b at 1000 and 2000.
      const settled = <A, E>(effect: Effect.Effect<A, E, LanguageModel.LanguageModel>) =>
        Effect.gen(function*() {
          const fiber = yield* Effect.fork(effect)
          yield* adjust(2000)
          return yield* Fiber.join(fiber)
        })
      const error = yield* settled(Effect.flip(LanguageModel.generateText({ prompt: "hi" })))
      expect(error._tag).toBe("HttpResponseError")
      if (error._tag !== "HttpResponseError") return
      expect(error.response.status).toBe(429)
      expect(error.request.url).toBe(FakeHttpClient.openAiBaseUrl)
      expect(error.request.headers).toEqual({})
      const ours = Option.getOrThrow(EffectAi.routerError(error))
      expect(ours._tag).toBe("RateLimited")
      expect(error.cause).toBe(ours)
      expect(error.description).toBe(ours.message)
      expect(outcomes("trail" in ours ? ours.trail ?? [] : [])).toEqual([
        "a:retry",
        "a:fallback",
        "b:retry",
        "b:failed"
      ])
      const handled = yield* settled(
        LanguageModel.generateText({ prompt: "hi" }).pipe(
          Effect.map((r) => r.text),
          Effect.mapError(EffectAi.unwrapError),
          Effect.catchTag("RateLimited", (e) => Effect.succeed(`busy: ${e.provider}/${e.model}, ${e.trail?.length}`))
        )
      )
      expect(handled).toBe("busy: openai/b, 4")
      // The key is in no error: not in the message, not in the encoded form.
      expect(`${error.message} ${JSON.stringify(error)} ${String(error.cause)}`).not.toContain(KEY)
    }).pipe(Effect.provide(routed({ "*": [S.rateLimited()] }, { health: false }))))

  it.effect("a bad request field from the configuration: MalformedInput carrying InvalidRequest, nothing sent", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(LanguageModel.generateText({ prompt: "hi" }))
      expect(error._tag).toBe("MalformedInput")
      const ours = EffectAi.unwrapError(error)
      expect(ours._tag === "InvalidRequest" && ours.field).toBe("temperature")
      expect(yield* arrivals).toEqual([])
    }).pipe(Effect.provide(routed({ a: [S.succeed()] }, {}, { request: { temperature: 7 } }))))

  it.effect("configured request fields are sent; the call's own fields win", () =>
    Effect.gen(function*() {
      yield* LanguageModel.generateText({ prompt: "hi" })
      const [body] = yield* bodies
      expect([body!.temperature, body!.max_tokens, body!.messages.length]).toEqual([0.2, 64, 1])
    }).pipe(Effect.provide(routed({ a: [S.succeed()] }, {}, {
      request: { temperature: 0.2, max_tokens: 64, messages: [] } as any
    }))))

  const attempt = { provider: "openai", model: "a", attempt: 1 }
  const cases: ReadonlyArray<readonly [RouterError.AnyError, AiError.AiError["_tag"], string?]> = [
    [new RouterError.InvalidRequest({ field: "messages", reason: "empty" }), "MalformedInput"],
    [new RouterError.RateLimited({ ...attempt, status: 429 }), "HttpResponseError", "429"],
    [new RouterError.QuotaExhausted({ ...attempt, status: 402 }), "HttpResponseError", "402"],
    [new RouterError.AuthenticationFailed({ ...attempt, status: 401 }), "HttpResponseError", "401"],
    [new RouterError.PermissionDenied({ ...attempt, status: 403 }), "HttpResponseError", "403"],
    [new RouterError.BadRequest({ ...attempt, status: 400 }), "HttpResponseError", "400"],
    [new RouterError.ContextLengthExceeded({ ...attempt, status: 400 }), "HttpResponseError", "400"],
    [new RouterError.ContentFiltered({ ...attempt, status: 400 }), "HttpResponseError", "400"],
    [new RouterError.ModelNotFound({ ...attempt, status: 404 }), "HttpResponseError", "404"],
    [new RouterError.ServerError({ ...attempt, status: 500 }), "HttpResponseError", "500"],
    [new RouterError.ServiceUnavailable({ ...attempt, status: 503 }), "HttpResponseError", "503"],
    [new RouterError.Timeout({ ...attempt, status: 408, phase: "server" }), "HttpResponseError", "408"],
    [new RouterError.Timeout({ ...attempt, phase: "first-token", afterMillis: 10 }), "HttpRequestError"],
    [new RouterError.NetworkError({ ...attempt, reason: "ECONNRESET" }), "HttpRequestError"],
    [new RouterError.MalformedResponse({ ...attempt, reason: "not JSON" }), "MalformedOutput"],
    [new RouterError.ServerError(attempt), "UnknownError"],
    [new RouterError.DeadlineExceeded({ deadlineMillis: 10 }), "UnknownError"],
    [new RouterError.NoModelAvailable({ reason: "all open" }), "UnknownError"],
    [new RouterError.BudgetExceeded({ budget: "team", limit: 10, spent: 10, resetsAt: 0 }), "UnknownError"],
    ...(["cut", "stall", "truncated", "malformed", "in-band-error"] as const).map((reason) =>
      [
        new RouterError.StreamInterrupted({ ...attempt, reason, text: "Hel", toolCalls: [], chunks: 2 }),
        reason === "cut" || reason === "stall"
          ? "HttpRequestError"
          : reason === "in-band-error"
          ? "UnknownError"
          : "MalformedOutput"
      ] as const
    )
  ]
  it.each(
    cases.map(([e, tag, status]) => [`${e._tag}${"reason" in e ? ` ${e.reason}` : ""} → ${tag}`, e, tag, status])
  )(
    "%s, with ours as the cause",
    (_, error, tag, status) => {
      const mapped = aiError.toAiError(models, "generateText")(error as RouterError.AnyError)
      expect(mapped._tag).toBe(tag)
      expect(AiError.isAiError(mapped)).toBe(true)
      expect(mapped.cause).toBe(error)
      expect(EffectAi.unwrapError(mapped)).toBe(error)
      if (status !== undefined && mapped._tag === "HttpResponseError") {
        expect(String(mapped.response.status)).toBe(status)
      }
    }
  )

  it("the request URL of a mapped error is the base URL of the failed deployment, inside a group too", () => {
    const other = OpenAiCompatible.endpoint({ baseUrl: "http://127.0.0.1:9/v1" })
    const entries = [
      Model.make({ name: "a", endpoint }),
      Model.group({ deployments: [Model.make({ name: "g", endpoint: other })] })
    ]
    const mapped = aiError.toAiError(entries, "generateText")(
      new RouterError.ServerError({ provider: "openai", model: "g", attempt: 1, status: 500 })
    )
    expect(mapped._tag === "HttpResponseError" && mapped.request.url).toBe("http://127.0.0.1:9/v1")
  })

  it("unwrapError leaves other errors alone", () => {
    const plain = new AiError.UnknownError({ module: "m", method: "x" })
    expect(EffectAi.unwrapError(plain)).toBe(plain)
    const other = new Error("mine")
    expect(EffectAi.unwrapError(other)).toBe(other)
  })
})
