/**
 * The router's spans and metrics through `@effect/opentelemetry` into the OpenTelemetry SDK's in-memory exporters,
 * read back as an exporter would ship them.
 */
import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import { describe, expect, it } from "@effect/vitest"
import type { HrTime } from "@opentelemetry/api"
import { SpanKind, SpanStatusCode } from "@opentelemetry/api"
import type { DataPoint, Histogram, MetricData } from "@opentelemetry/sdk-metrics"
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  PeriodicExportingMetricReader
} from "@opentelemetry/sdk-metrics"
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base"
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Effect, Either, Redacted, Stream } from "effect"
import type { RouterError } from "../src/index.js"
import { Model, OpenAiCompatible, Router, Telemetry } from "../src/index.js"
import * as SimulatedUpstream from "../src/testing/SimulatedUpstream.js"
import * as Script from "../src/testing/UpstreamScript.js"
import { run } from "./support/live.js"

const SECRET = "sk-telemetry-secret-0123456789abcdef"
const A = Telemetry.Attributes
const N = Telemetry.Names

const fastRetry = { minDelay: "1 millis", maxDelay: "2 millis", initialDelay: "1 millis", maxAttempts: 2 } as const

/** A fresh SDK per test: an in-memory span exporter and a metric reader whose exporter keeps what it was sent. */
const otel = () => {
  const spans = new InMemorySpanExporter()
  const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
  const reader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 3_600_000 })
  const layer = NodeSdk.layer(() => ({
    resource: { serviceName: "telemetry-test" },
    spanProcessor: new SimpleSpanProcessor(spans),
    metricReader: reader
  }))
  const metrics = Effect.promise(async () => {
    metricExporter.reset()
    await reader.forceFlush()
    return metricExporter.getMetrics().flatMap((rm) => rm.scopeMetrics.flatMap((sm) => sm.metrics))
  })
  return { spans, layer, metrics }
}

const byName = (spans: ReadonlyArray<ReadableSpan>, name: string) => spans.filter((s) => s.name === name)
const parentId = (span: ReadableSpan) => span.parentSpanContext?.spanId
const millis = (t: HrTime) => t[0] * 1000 + t[1] / 1e6

/** The data points of one metric whose attributes include `where`. */
const points = (metrics: ReadonlyArray<MetricData>, name: string, where: Record<string, string | number> = {}) =>
  metrics.filter((m) => m.descriptor.name === name).flatMap((m) =>
    (m.dataPoints as ReadonlyArray<DataPoint<unknown>>).filter((p) =>
      Object.entries(where).every(([k, v]) => p.attributes[k] === v)
    )
  )
const counter = (metrics: ReadonlyArray<MetricData>, name: string, where: Record<string, string | number>) =>
  points(metrics, name, where).reduce((sum, p) => sum + (p.value as number), 0)
const histogram = (metrics: ReadonlyArray<MetricData>, name: string, where: Record<string, string | number>) =>
  points(metrics, name, where).map((p) => p.value as Histogram)

/** Every attribute and event attribute of every span, as text, to look for the key. */
const everything = (spans: ReadonlyArray<ReadableSpan>, metrics: ReadonlyArray<MetricData>) =>
  JSON.stringify([
    spans.map((s) => [s.name, s.attributes, s.events.map((e) => [e.name, e.attributes]), s.status]),
    metrics.map((m) => [m.descriptor, m.dataPoints.map((p) => p.attributes)])
  ])

describe("telemetry through @effect/opentelemetry", () => {
  it.live("a call that retries, falls back and succeeds: spans, events and metrics in the GenAI conventions", () => {
    const { layer, metrics, spans } = otel()
    return Effect.gen(function*() {
      const upstream = yield* SimulatedUpstream.make({
        script: {
          "t1-a": [Script.unavailable({ message: `no, ${SECRET}` }), Script.unavailable()],
          "t1-b": [Script.succeed({ text: "hello", usage: { promptTokens: 7, completionTokens: 3 } })]
        }
      })
      const endpoint = OpenAiCompatible.endpoint({ baseUrl: upstream.openAiBaseUrl, apiKey: Redacted.make(SECRET) })
      const router = yield* Router.make({
        models: [
          Model.make({ name: "t1-a", endpoint }),
          Model.make({ name: "t1-b", endpoint, price: { input: 2_000_000, output: 4_000_000 } })
        ],
        retry: fastRetry,
        telemetry: { metrics: true }
      })
      const response = yield* router.generate({
        messages: [{ role: "user", content: "a prompt nobody should see" }],
        max_tokens: 50,
        temperature: 0.5
      })
      expect(response.text).toBe("hello")
      const port = Number(new URL(upstream.openAiBaseUrl).port)

      const finished = spans.getFinishedSpans()
      const [call] = byName(finished, N.generate)
      expect(call).toBeDefined()
      expect(call!.attributes[A.servedBy]).toBe("openai/t1-b")
      expect(call!.attributes[A.attempts]).toBe(3)
      // 7 input tokens at 2 per token, 3 output tokens at 4.
      expect(call!.attributes[A.cost]).toBe(26)
      // @effect/opentelemetry 0.64 hands array attributes to OpenTelemetry as JSON text.
      expect(JSON.parse(call!.attributes[A.models] as string)).toEqual(["openai/t1-a", "openai/t1-b"])
      // Usage only on the attempts, so that a backend summing gen_ai.usage.* counts it once.
      expect(Object.keys(call!.attributes).filter((k) => k.startsWith("gen_ai."))).toEqual([])

      const attempts = finished.filter((s) => s.name.startsWith("chat "))
      expect(attempts.map((s) => s.name)).toEqual(["chat t1-a", "chat t1-a", "chat t1-b"])
      for (const s of attempts) {
        expect(parentId(s)).toBe(call!.spanContext().spanId)
        expect(s.kind).toBe(SpanKind.CLIENT)
        expect(s.attributes).toMatchObject({
          [A.operationName]: "chat",
          [A.providerName]: "openai",
          [A.serverAddress]: "127.0.0.1",
          [A.serverPort]: port,
          [A.requestMaxTokens]: 50,
          [A.requestTemperature]: 0.5
        })
        expect(s.attributes[A.inputMessages]).toBeUndefined()
        expect(s.attributes[A.outputMessages]).toBeUndefined()
      }
      expect(attempts.map((s) => [s.attributes[A.requestModel], s.attributes[A.attempt], s.attributes[A.outcome]]))
        .toEqual([["t1-a", 1, "retry"], ["t1-a", 2, "fallback"], ["t1-b", 1, "success"]])
      expect(attempts.map((s) => s.attributes[A.errorType])).toEqual([
        "ServiceUnavailable",
        "ServiceUnavailable",
        undefined
      ])
      expect(attempts.map((s) => s.status.code)).toEqual([
        SpanStatusCode.ERROR,
        SpanStatusCode.ERROR,
        SpanStatusCode.OK
      ])
      expect(typeof attempts[0]!.attributes[A.waitMillis]).toBe("number")
      expect(attempts[2]!.attributes).toMatchObject({
        [A.responseModel]: "t1-b",
        [A.usageInputTokens]: 7,
        [A.usageOutputTokens]: 3,
        [A.cost]: 26
      })
      expect(JSON.parse(attempts[2]!.attributes[A.responseFinishReasons] as string)).toEqual(["stop"])
      // Each attempt lies within the call, in order.
      expect(millis(attempts[0]!.endTime)).toBeLessThanOrEqual(millis(attempts[1]!.startTime))
      expect(millis(attempts[2]!.endTime)).toBeLessThanOrEqual(millis(call!.endTime))

      // The router's events (Effect also turns each log line, e.g. the retry warning, into an event).
      const events = call!.events.filter((e) => e.name.startsWith("effect_llm_router."))
      expect(events.map((e) => [e.name, e.attributes?.[A.requestModel], e.attributes?.[A.errorType]])).toEqual([
        [N.retry, "t1-a", "ServiceUnavailable"],
        [N.fallback, "t1-a", "ServiceUnavailable"]
      ])
      expect(events[0]!.attributes).toMatchObject({ [A.attempt]: 1, [A.outcome]: "retry" })
      expect(typeof events[0]!.attributes?.[A.waitMillis]).toBe("number")

      const m = yield* metrics
      const t1a = { [A.requestModel]: "t1-a", [A.providerName]: "openai" }
      const t1b = { [A.requestModel]: "t1-b", [A.providerName]: "openai" }
      expect(counter(m, "effect_llm_router.attempts", { ...t1a, [A.outcome]: "retry" })).toBe(1)
      expect(counter(m, "effect_llm_router.attempts", { ...t1a, [A.outcome]: "fallback" })).toBe(1)
      expect(counter(m, "effect_llm_router.attempts", { ...t1b, [A.outcome]: "success" })).toBe(1)
      expect(counter(m, "effect_llm_router.fallbacks", { ...t1a, [A.errorType]: "ServiceUnavailable" })).toBe(1)
      const failed = histogram(m, "gen_ai.client.operation.duration", { ...t1a, [A.errorType]: "ServiceUnavailable" })
      expect(failed.map((h) => h.count)).toEqual([2])
      const served = histogram(m, "gen_ai.client.operation.duration", { ...t1b, [A.operationName]: "chat" })
      expect(served.map((h) => h.count)).toEqual([1])
      expect(points(m, "gen_ai.client.operation.duration", t1b)[0]!.attributes[A.errorType]).toBeUndefined()
      expect(served[0]!.buckets.boundaries).toEqual(Telemetry.durationBoundaries)
      const input = histogram(m, "gen_ai.client.token.usage", { ...t1b, [A.tokenType]: "input" })
      const output = histogram(m, "gen_ai.client.token.usage", { ...t1b, [A.tokenType]: "output" })
      expect(input.map((h) => [h.count, h.sum])).toEqual([[1, 7]])
      expect(output.map((h) => [h.count, h.sum])).toEqual([[1, 3]])
      expect(input[0]!.buckets.boundaries).toEqual(Telemetry.tokenBoundaries)
      expect(counter(m, "effect_llm_router.cost", t1b)).toBe(26)
      expect(points(m, "effect_llm_router.cost", t1a)).toEqual([])
      const units = Object.fromEntries(m.map((x) => [x.descriptor.name, x.descriptor.unit]))
      expect(units).toMatchObject({
        "gen_ai.client.operation.duration": "s",
        "gen_ai.client.token.usage": "{token}",
        "effect_llm_router.attempts": "{attempt}"
      })

      const text = everything(finished, m)
      expect(text).not.toContain(SECRET)
      expect(text).not.toContain("a prompt nobody should see")
    }).pipe(Effect.provide(layer), run)
  })

  it.live("a stream interrupted after content: the event, the serving attempt's span to the end, the metrics", () => {
    const { layer, metrics, spans } = otel()
    return Effect.gen(function*() {
      const upstream = yield* SimulatedUpstream.make({
        script: { "t2-a": [Script.cut({ text: "Hello world, and more", afterChunks: 2 })] }
      })
      const endpoint = OpenAiCompatible.endpoint({ baseUrl: upstream.openAiBaseUrl, apiKey: Redacted.make(SECRET) })
      const router = yield* Router.make({
        models: [Model.make({ name: "t2-a", endpoint })],
        retry: fastRetry,
        telemetry: { metrics: true }
      })
      const texts: Array<string> = []
      const result = yield* router.stream({ messages: [{ role: "user", content: "hi" }] }).pipe(
        Stream.runForEach((chunk) => Effect.sync(() => chunk._tag === "TextDelta" && texts.push(chunk.text))),
        Effect.either
      )
      expect(texts.join("").length).toBeGreaterThan(0)
      expect(Either.isLeft(result) && result.left._tag).toBe("StreamInterrupted")
      const reason = (result as Either.Left<RouterError.StreamInterrupted, void>).left.reason

      const finished = spans.getFinishedSpans()
      const [call] = byName(finished, N.stream)
      expect(call).toBeDefined()
      expect(call!.attributes[A.errorType]).toBe("StreamInterrupted")
      expect(call!.attributes[A.servedBy]).toBe("openai/t2-a")
      const interrupted = call!.events.filter((e) => e.name === N.streamInterrupted)
      expect(interrupted).toHaveLength(1)
      expect(interrupted[0]!.attributes).toMatchObject({ [A.requestModel]: "t2-a", [A.interruptReason]: reason })

      const [attempt] = byName(finished, "chat t2-a")
      expect(attempt).toBeDefined()
      expect(parentId(attempt!)).toBe(call!.spanContext().spanId)
      expect(attempt!.attributes).toMatchObject({
        [A.requestStream]: true,
        [A.outcome]: "success",
        [A.interruptReason]: reason,
        [A.responseModel]: "t2-a"
      })
      expect(typeof attempt!.attributes[A.responseTimeToFirstChunk]).toBe("number")
      expect(attempt!.status.code).toBe(SpanStatusCode.ERROR)
      // The serving attempt's span covers the stream up to its interruption, within the call's span.
      expect(millis(attempt!.endTime)).toBeLessThanOrEqual(millis(call!.endTime))
      expect(millis(attempt!.endTime)).toBeGreaterThan(
        millis(attempt!.startTime) + (attempt!.attributes[A.responseTimeToFirstChunk] as number) * 1000 - 1
      )

      const m = yield* metrics
      const t2a = { [A.requestModel]: "t2-a", [A.providerName]: "openai" }
      expect(counter(m, "effect_llm_router.stream.interruptions", { ...t2a, [A.interruptReason]: reason })).toBe(1)
      expect(histogram(m, "gen_ai.client.operation.time_to_first_chunk", t2a).map((h) => h.count)).toEqual([1])
      const duration = points(m, "gen_ai.client.operation.duration", t2a)
      expect(duration).toHaveLength(1)
      expect(duration[0]!.attributes[A.errorType]).toBeDefined()
      expect(everything(finished, m)).not.toContain(SECRET)
    }).pipe(Effect.provide(layer), run)
  })

  it.live("a stream read to its end: its serving attempt's span carries its usage, finish reason and cost", () => {
    const { layer, metrics, spans } = otel()
    return Effect.gen(function*() {
      const upstream = yield* SimulatedUpstream.make({
        script: { "t6-a": [Script.succeed({ text: "all of it", usage: { promptTokens: 4, completionTokens: 5 } })] }
      })
      const endpoint = OpenAiCompatible.endpoint({ baseUrl: upstream.openAiBaseUrl, apiKey: Redacted.make(SECRET) })
      const router = yield* Router.make({
        models: [Model.make({ name: "t6-a", endpoint, price: { input: 1_000_000, output: 2_000_000 } })],
        telemetry: { metrics: true }
      })
      const response = yield* Router.collect(router.stream({ messages: [{ role: "user", content: "hi" }] }))
      expect(response.text).toBe("all of it")
      const [attempt] = byName(spans.getFinishedSpans(), "chat t6-a")
      expect(attempt!.attributes).toMatchObject({
        [A.requestStream]: true,
        [A.usageInputTokens]: 4,
        [A.usageOutputTokens]: 5,
        [A.cost]: 14
      })
      expect(JSON.parse(attempt!.attributes[A.responseFinishReasons] as string)).toEqual(["stop"])
      expect(attempt!.status.code).toBe(SpanStatusCode.OK)
      const m = yield* metrics
      const t6a = { [A.requestModel]: "t6-a", [A.providerName]: "openai" }
      expect(counter(m, "effect_llm_router.cost", t6a)).toBe(14)
      expect(histogram(m, "gen_ai.client.token.usage", { ...t6a, [A.tokenType]: "output" }).map((h) => h.sum))
        .toEqual([5])
      expect(points(m, "gen_ai.client.operation.duration", t6a).map((p) => p.attributes[A.errorType])).toEqual([
        undefined
      ])
    }).pipe(Effect.provide(layer), run)
  })

  it.live("captureContent puts the prompt and the answer on the attempt spans, in the conventions' schemas", () => {
    const { layer, spans } = otel()
    return Effect.gen(function*() {
      const upstream = yield* SimulatedUpstream.make({ script: { "t3-a": [Script.succeed({ text: "the answer" })] } })
      const endpoint = OpenAiCompatible.endpoint({ baseUrl: upstream.openAiBaseUrl, apiKey: Redacted.make(SECRET) })
      const router = yield* Router.make({
        models: [Model.make({ name: "t3-a", endpoint })],
        telemetry: { captureContent: true }
      })
      yield* router.generate({
        messages: [{ role: "system", content: "be brief" }, { role: "user", content: "the question" }]
      })
      const [attempt] = byName(spans.getFinishedSpans(), "chat t3-a")
      expect(JSON.parse(attempt!.attributes[A.inputMessages] as string)).toEqual([
        { role: "system", parts: [{ type: "text", content: "be brief" }] },
        { role: "user", parts: [{ type: "text", content: "the question" }] }
      ])
      expect(JSON.parse(attempt!.attributes[A.outputMessages] as string)).toEqual([
        { role: "assistant", parts: [{ type: "text", content: "the answer" }], finish_reason: "stop" }
      ])
    }).pipe(Effect.provide(layer), run)
  })

  it.live("a hedged call: the losing request's span ends as cancelled, and the call span has a cancel event", () => {
    const { layer, metrics, spans } = otel()
    return Effect.gen(function*() {
      const upstream = yield* SimulatedUpstream.make({
        script: { "t5-slow": [Script.hang()], "t5-fast": [Script.succeed({ headersDelayMs: 10 })] }
      })
      const endpoint = OpenAiCompatible.endpoint({ baseUrl: upstream.openAiBaseUrl, apiKey: Redacted.make(SECRET) })
      const router = yield* Router.make({
        models: [Model.make({ name: "t5-slow", endpoint }), Model.make({ name: "t5-fast", endpoint })],
        retry: { maxAttempts: 1 },
        hedge: { delay: "30 millis" },
        telemetry: { metrics: true }
      })
      const response = yield* router.generate({ messages: [{ role: "user", content: "hi" }] })
      expect(response.model).toBe("t5-fast")
      const finished = spans.getFinishedSpans()
      const [call] = byName(finished, N.generate)
      const [slow] = byName(finished, "chat t5-slow")
      const [fast] = byName(finished, "chat t5-fast")
      expect(slow!.attributes).toMatchObject({ [A.outcome]: "cancelled", [A.hedge]: 0 })
      expect(fast!.attributes).toMatchObject({ [A.outcome]: "success", [A.hedge]: 1 })
      expect(parentId(slow!)).toBe(call!.spanContext().spanId)
      expect(parentId(fast!)).toBe(call!.spanContext().spanId)
      const cancels = call!.events.filter((e) => e.name === N.cancel)
      expect(cancels.map((e) => [e.attributes?.[A.requestModel], e.attributes?.[A.hedge]])).toEqual([["t5-slow", 0]])
      const m = yield* metrics
      const slowLabels = { [A.requestModel]: "t5-slow", [A.providerName]: "openai" }
      expect(counter(m, "effect_llm_router.attempts", { ...slowLabels, [A.outcome]: "cancelled" })).toBe(1)
      expect(
        histogram(m, "gen_ai.client.operation.duration", { ...slowLabels, [A.errorType]: "cancelled" })
          .map((h) => h.count)
      ).toEqual([1])
    }).pipe(Effect.provide(layer), run)
  })

  it.live("metrics are off unless asked for; a breaker change is counted and is an event", () => {
    const { layer, metrics, spans } = otel()
    return Effect.gen(function*() {
      const upstream = yield* SimulatedUpstream.make({
        script: { "t4-a": [Script.succeed()], "t4-b": [Script.unavailable()], "t4-c": [Script.succeed()] }
      })
      const endpoint = OpenAiCompatible.endpoint({ baseUrl: upstream.openAiBaseUrl, apiKey: Redacted.make(SECRET) })
      const quiet = yield* Router.make({ models: [Model.make({ name: "t4-a", endpoint })] })
      yield* quiet.generate({ messages: [{ role: "user", content: "hi" }] })
      const breaking = yield* Router.make({
        models: [Model.make({ name: "t4-b", endpoint }), Model.make({ name: "t4-c", endpoint })],
        retry: { ...fastRetry, maxAttempts: 1 },
        health: { consecutiveFailures: 1, failureRate: false, cooldown: "1 minute" },
        telemetry: { metrics: true }
      })
      yield* breaking.generate({ messages: [{ role: "user", content: "hi" }] })
      // Its breaker is open: the next call skips it, and says why.
      yield* breaking.generate({ messages: [{ role: "user", content: "again" }] })
      const m = yield* metrics
      expect(points(m, "effect_llm_router.attempts", { [A.requestModel]: "t4-a" })).toEqual([])
      expect(points(m, "gen_ai.client.operation.duration", { [A.requestModel]: "t4-a" })).toEqual([])
      expect(
        counter(m, "effect_llm_router.breaker.transitions", {
          [A.requestModel]: "t4-b",
          [A.breakerFrom]: "closed",
          [A.breakerTo]: "open"
        })
      ).toBe(1)
      const [first, second] = byName(spans.getFinishedSpans(), N.generate).filter((s) =>
        s.attributes[A.servedBy] === "openai/t4-c"
      )
      const breaker = first!.events.filter((e) => e.name === N.breaker)
      expect(breaker.map((e) => [e.attributes?.[A.requestModel], e.attributes?.[A.breakerTo]])).toEqual([
        ["t4-b", "open"]
      ])
      const skips = second!.events.filter((e) => e.name === N.skip)
      expect(skips).toHaveLength(1)
      expect(skips[0]!.attributes).toMatchObject({ [A.requestModel]: "t4-b", [A.outcome]: "skipped" })
      expect(String(skips[0]!.attributes?.[A.skipReason])).toMatch(/open/)
      expect(byName(spans.getFinishedSpans(), "chat t4-b")).toHaveLength(1)
      expect(counter(m, "effect_llm_router.attempts", { [A.requestModel]: "t4-b", [A.outcome]: "skipped" })).toBe(1)
    }).pipe(Effect.provide(layer), run)
  })
})
