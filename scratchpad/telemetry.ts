/**
 * `npx tsx scratchpad/telemetry.ts`: the spans and metrics of a few routed calls, printed to the console.
 *
 * A simulated upstream in-process (no network, no keys) plays the demo's kinds of trouble: a model rate limited with
 * `Retry-After`, one answering 503, a group's deployment that is down, a stream cut after its first words. The
 * router runs under `@effect/opentelemetry` with the OpenTelemetry SDK's in-memory span exporter and a metric reader;
 * after the calls, each trace is printed as a tree (span, duration, attributes, events) and each metric as its data
 * points.
 */
import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import type { HrTime } from "@opentelemetry/api"
import type { DataPoint, Histogram, MetricData } from "@opentelemetry/sdk-metrics"
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  PeriodicExportingMetricReader
} from "@opentelemetry/sdk-metrics"
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base"
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import { Model, OpenAiCompatible, Router } from "../src/index.js"
import * as SimulatedUpstream from "../src/testing/SimulatedUpstream.js"
import * as Script from "../src/testing/UpstreamScript.js"

const spanExporter = new InMemorySpanExporter()
const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
const reader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 3_600_000 })
const Otel = NodeSdk.layer(() => ({
  resource: { serviceName: "telemetry-scratchpad" },
  spanProcessor: new SimpleSpanProcessor(spanExporter),
  metricReader: reader
}))

const hi = { messages: [{ role: "user" as const, content: "Why route over several models?" }], max_tokens: 200 }

const calls = Effect.gen(function*() {
  const upstream = yield* SimulatedUpstream.make({
    script: {
      "gpt-4o": [Script.rateLimited({ retryAfterMs: 50 }), Script.unavailable()],
      "claude-3-5-sonnet": [
        Script.succeed({ text: "Because one model will fail you.", usage: { promptTokens: 12, completionTokens: 8 } })
      ],
      "llama-eu": [Script.unavailable()],
      "llama-us": [Script.succeed({ text: "From the US deployment." })],
      "streamer": [Script.cut({ text: "This answer is cut after a few words", afterChunks: 3 })]
    }
  })
  const endpoint = OpenAiCompatible.endpoint({ baseUrl: upstream.openAiBaseUrl, apiKey: Redacted.make("sk-demo") })
  const us = OpenAiCompatible.endpoint({
    baseUrl: upstream.openAiBaseUrl,
    apiKey: Redacted.make("sk-demo-us"),
    provider: "meta"
  })
  const retry = { maxAttempts: 2, minDelay: "20 millis", initialDelay: "20 millis", jitter: 0 } as const
  const telemetry = { metrics: true, captureContent: true }

  // 1. Retry after Retry-After, then fallback to the next model.
  const router = yield* Router.make({
    models: [Model.make({ name: "gpt-4o", endpoint }), Model.make({ name: "claude-3-5-sonnet", endpoint })],
    retry,
    telemetry
  })
  yield* router.generate(hi)

  // 2. A group of two deployments: the first is down, the group's next one answers at once.
  const grouped = yield* Router.make({
    models: [
      Model.group({
        name: "llama",
        deployments: [Model.make({ name: "llama-eu", endpoint }), Model.make({ name: "llama-us", endpoint: us })],
        strategy: "round-robin"
      })
    ],
    retry,
    telemetry
  })
  yield* grouped.generate(hi)

  // 3. A stream cut after its first words.
  const streaming = yield* Router.make({ models: [Model.make({ name: "streamer", endpoint })], retry, telemetry })
  yield* streaming.stream(hi).pipe(Stream.runDrain, Effect.either)
}).pipe(Effect.scoped, Effect.provide(FetchHttpClient.layer))

const millis = (t: HrTime) => t[0] * 1000 + t[1] / 1e6
const shown = (value: unknown) => {
  const text = typeof value === "string" ? value : JSON.stringify(value)
  return text.length > 100 ? `${text.slice(0, 99)}…` : text
}

const printTrace = (spans: ReadonlyArray<ReadableSpan>) => {
  const children = new Map<string | undefined, Array<ReadableSpan>>()
  const ids = new Set(spans.map((s) => s.spanContext().spanId))
  for (const s of spans) {
    const parent = s.parentSpanContext?.spanId
    const key = parent !== undefined && ids.has(parent) ? parent : undefined
    children.set(key, [...(children.get(key) ?? []), s])
  }
  const print = (span: ReadableSpan, depth: number) => {
    const pad = "  ".repeat(depth)
    const took = (millis(span.endTime) - millis(span.startTime)).toFixed(1)
    console.log(`${pad}● ${span.name}  ${took} ms  [${span.status.code === 2 ? "ERROR" : "ok"}]`)
    for (const [key, value] of Object.entries(span.attributes)) {
      if (
        key.startsWith("gen_ai.") || key.startsWith("effect_llm_router.") || key.startsWith("server.") ||
        key === "error.type"
      ) {
        console.log(`${pad}    ${key} = ${shown(value)}`)
      }
    }
    for (const event of span.events.filter((e) => e.name.startsWith("effect_llm_router."))) {
      const at = (millis(event.time) - millis(span.startTime)).toFixed(1)
      console.log(`${pad}    ⚑ +${at} ms ${event.name} ${shown(event.attributes)}`)
    }
    const sorted = (children.get(span.spanContext().spanId) ?? []).sort((a, b) =>
      millis(a.startTime) - millis(b.startTime)
    )
    // The HTTP client's own spans, one line each.
    for (const child of sorted) {
      if (child.name.startsWith("http.client")) console.log(`${pad}  ○ ${child.name}`)
      else print(child, depth + 1)
    }
  }
  for (const root of children.get(undefined) ?? []) print(root, 0)
}

const printMetrics = (metrics: ReadonlyArray<MetricData>) => {
  for (const metric of metrics) {
    const { description, name, unit } = metric.descriptor
    if (!name.startsWith("gen_ai.") && !name.startsWith("effect_llm_router.")) continue
    console.log(`\n${name} (${unit}): ${description}`)
    for (const point of metric.dataPoints as ReadonlyArray<DataPoint<unknown>>) {
      const labels = Object.entries(point.attributes).filter(([k]) => k !== "unit").map(([k, v]) => `${k}=${v}`)
        .join(" ")
      const value = typeof point.value === "number"
        ? String(point.value)
        : `count=${(point.value as Histogram).count} sum=${((point.value as Histogram).sum ?? 0).toFixed(3)}`
      console.log(`  ${value}  ${labels}`)
    }
  }
}

const program = Effect.gen(function*() {
  yield* calls
  yield* Effect.promise(() => reader.forceFlush())
  console.log("Spans\n=====")
  printTrace(spanExporter.getFinishedSpans())
  console.log("\nMetrics\n=======")
  printMetrics(metricExporter.getMetrics().flatMap((rm) => rm.scopeMetrics.flatMap((sm) => sm.metrics)))
}).pipe(Effect.provide(Otel))

Effect.runPromise(program).catch((error) => {
  console.error(error)
  process.exitCode = 1
})
