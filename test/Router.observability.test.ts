import { describe, expect, it } from "@effect/vitest"
import { Effect, Option, Redacted, Tracer } from "effect"
import type { Exit } from "effect"
import { GptRouter, Model, OpenAiCompatible, Router, Telemetry } from "../src/index.js"
import * as SimulatedUpstream from "../src/testing/SimulatedUpstream.js"
import * as Script from "../src/testing/UpstreamScript.js"
import { run } from "./support/live.js"
import { captureLogs } from "./support/logs.js"

const SECRET = "sk-observability-secret-0123456789"

interface Recorded {
  readonly name: string
  readonly attributes: Map<string, unknown>
  readonly parent: string | undefined
  ended: boolean
}

// A tracer that keeps every span, to read the router's spans back.
const recordingTracer = () => {
  const spans: Array<Recorded> = []
  let id = 0
  const tracer = Tracer.make({
    span(name, parent, context, links, startTime, kind) {
      const record: Recorded = {
        name,
        attributes: new Map(),
        parent: Option.isSome(parent) && parent.value._tag === "Span" ? parent.value.name : undefined,
        ended: false
      }
      spans.push(record)
      const spanId = `span${++id}`
      const span: Tracer.Span = {
        _tag: "Span",
        name,
        spanId,
        traceId: "trace",
        parent,
        context,
        status: { _tag: "Started", startTime },
        attributes: record.attributes,
        links,
        sampled: true,
        kind,
        end(_endTime: bigint, _exit: Exit.Exit<unknown, unknown>) {
          record.ended = true
        },
        attribute(key, value) {
          record.attributes.set(key, value)
        },
        event() {},
        addLinks() {}
      }
      return span
    },
    context: (f) => f()
  })
  return { spans, tracer }
}

// No attribute of any span, key or value, carries the secret.
const expectNoSecret = (spans: ReadonlyArray<Recorded>) => {
  for (const s of spans) {
    for (const [key, value] of s.attributes) expect(`${key}=${String(value)}`).not.toContain(SECRET)
  }
}

const A = Telemetry.Attributes

const fastRetry = { minDelay: "1 millis", maxDelay: "2 millis", initialDelay: "1 millis", maxAttempts: 3 } as const

describe("observability", () => {
  it.live("the routed call and each attempt (chat {model}) run in spans naming model, provider, attempt, outcome and tokens", () =>
    Effect.gen(function*() {
      const upstream = yield* SimulatedUpstream.make({
        script: {
          "m": [Script.unavailable(), Script.succeed({ text: "ok", usage: { promptTokens: 7, completionTokens: 3 } })]
        }
      })
      const endpoint = OpenAiCompatible.endpoint({ baseUrl: upstream.openAiBaseUrl, apiKey: Redacted.make(SECRET) })
      const router = yield* Router.make({ models: [Model.make({ name: "m", endpoint })], retry: fastRetry })
      const { spans, tracer } = recordingTracer()
      const response = yield* router.generate({ messages: [{ role: "user", content: "hi" }] }).pipe(
        Effect.withTracer(tracer)
      )
      expect(response.text).toBe("ok")
      const call = spans.filter((s) => s.name === "effect-llm-router.generate")
      expect(call).toHaveLength(1)
      expect(call[0]!.attributes.get(A.servedBy)).toBe("openai/m")
      expect(call[0]!.attributes.get(A.attempts)).toBe(2)
      const attempts = spans.filter((s) => s.name === "chat m")
      expect(attempts.map((s) => [s.attributes.get(A.attempt), s.attributes.get(A.outcome)])).toEqual([
        [1, "retry"],
        [2, "success"]
      ])
      expect(attempts.map((s) => s.attributes.get(A.errorType))).toEqual(["ServiceUnavailable", undefined])
      for (const s of attempts) {
        expect(s.attributes.get(A.requestModel)).toBe("m")
        expect(s.attributes.get(A.providerName)).toBe("openai")
        expect(s.attributes.get(A.operationName)).toBe("chat")
        expect(s.parent).toBe("effect-llm-router.generate")
        expect(s.ended).toBe(true)
      }
      expect(attempts[1]!.attributes.get(A.usageInputTokens)).toBe(7)
      expect(attempts[1]!.attributes.get(A.usageOutputTokens)).toBe(3)
      // The HTTP client's own spans are kept when a tracer is installed.
      expect(spans.filter((s) => s.parent === "chat m").length).toBeGreaterThanOrEqual(2)
    }).pipe(run))

  it.live("no span attribute carries a key, for a bearer key or GPTRouter's ws-secret", () =>
    Effect.gen(function*() {
      const upstream = yield* SimulatedUpstream.make({
        script: { "a": [Script.unavailable({ message: `bad key ${SECRET}` })], "b": [Script.succeed()] }
      })
      const openai = OpenAiCompatible.endpoint({ baseUrl: upstream.openAiBaseUrl, apiKey: Redacted.make(SECRET) })
      const gpt = GptRouter.endpoint({ baseUrl: upstream.gptRouterBaseUrl, apiKey: Redacted.make(SECRET) })
      const router = yield* Router.make({
        models: [Model.make({ name: "a", endpoint: openai }), Model.make({ name: "b", endpoint: gpt })],
        retry: { ...fastRetry, maxAttempts: 1 }
      })
      const { spans, tracer } = recordingTracer()
      yield* router.generate({ messages: [{ role: "user", content: "hi" }] }).pipe(Effect.withTracer(tracer))
      const headerAttributes = spans.flatMap((s) => [...s.attributes.keys()]).filter((k) => k.includes("header"))
      expect(headerAttributes.some((k) => k.endsWith("ws-secret"))).toBe(true)
      expect(headerAttributes.some((k) => k.endsWith("authorization"))).toBe(true)
      expectNoSecret(spans)
    }).pipe(run))

  it.live("a traced stream runs in a span, and its requests' ws-secret is redacted", () =>
    Effect.gen(function*() {
      const upstream = yield* SimulatedUpstream.make({
        script: { "g": [Script.unavailable(), Script.succeed({ text: "hello" })] }
      })
      const gpt = GptRouter.endpoint({ baseUrl: upstream.gptRouterBaseUrl, apiKey: Redacted.make(SECRET) })
      const router = yield* Router.make({ models: [Model.make({ name: "g", endpoint: gpt })], retry: fastRetry })
      const { spans, tracer } = recordingTracer()
      const response = yield* Router.collect(router.stream({ messages: [{ role: "user", content: "hi" }] })).pipe(
        Effect.withTracer(tracer)
      )
      expect(response.text).toBe("hello")
      const streamSpans = spans.filter((s) => s.name === "effect-llm-router.stream")
      expect(streamSpans).toHaveLength(1)
      expect(streamSpans[0]!.ended).toBe(true)
      const attempts = spans.filter((s) => s.name === "chat g")
      expect(attempts.map((s) => s.attributes.get(A.outcome))).toEqual(["retry", "success"])
      expect(attempts.every((s) => s.ended)).toBe(true)
      expect(attempts.map((s) => s.parent)).toEqual(["effect-llm-router.stream", "effect-llm-router.stream"])
      const headerKeys = spans.flatMap((s) => [...s.attributes.keys()])
      expect(headerKeys.some((k) => k.endsWith("ws-secret"))).toBe(true)
      expectNoSecret(spans)
    }).pipe(run))

  it.live("each retry logs a warning naming the model, failure tag and wait, and no key", () =>
    Effect.gen(function*() {
      const upstream = yield* SimulatedUpstream.make({
        script: { "m": [Script.rateLimited({ retryAfterMs: 20, message: SECRET }), Script.succeed()] }
      })
      const endpoint = OpenAiCompatible.endpoint({ baseUrl: upstream.openAiBaseUrl, apiKey: Redacted.make(SECRET) })
      const router = yield* Router.make({ models: [Model.make({ name: "m", endpoint })], retry: fastRetry })
      const { layer, lines } = captureLogs()
      yield* router.generate({ messages: [{ role: "user", content: "hi" }] }).pipe(Effect.provide(layer))
      const warnings = lines.filter((l) => l.level === "WARN")
      expect(warnings).toHaveLength(1)
      expect(warnings[0]!.message).toBe("Retrying openai/m in 20ms after RateLimited (attempt 1)")
      expect(warnings[0]!.annotations).toMatchObject({
        model: "m",
        provider: "openai",
        error: "RateLimited",
        waitMillis: 20
      })
      expect(JSON.stringify(lines)).not.toContain(SECRET)
    }).pipe(run))
})
