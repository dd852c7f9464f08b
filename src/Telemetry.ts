/**
 * What the router emits for OpenTelemetry (or any tracer and metric exporter the application installs): spans and
 * metrics in the OpenTelemetry GenAI semantic conventions (v1.41.0, the last release that holds them in
 * `open-telemetry/semantic-conventions`), plus the router's own attributes, events and metrics under
 * `effect_llm_router.*`.
 *
 * Spans (when the application installs a tracer, e.g. `@effect/opentelemetry`; none otherwise):
 * - one per routed call, `effect-llm-router.generate` or `effect-llm-router.stream`, carrying the list
 *   (`effect_llm_router.models`), who served it, the number of attempts, `error.type` when it failed, and an event per
 *   retry, fallback, skip, cancelled hedge, stream interruption and breaker change;
 * - one child per attempt, a GenAI inference span named `chat {model}` (kind client) with the `gen_ai.*`
 *   request, response and usage attributes, `server.address` / `server.port`, `error.type` when it failed, and the
 *   router's `effect_llm_router.attempt`, `.index`, `.outcome`, `.wait_ms`, `.deployment`, `.hedge`, `.probe`. A
 *   stream's serving attempt lasts until the stream ends (its usage and finish reasons are known then).
 *
 * Token usage is on the attempt spans only, so that a backend summing `gen_ai.usage.*` counts each token once.
 * Prompt and completion content (`gen_ai.input.messages`, `gen_ai.output.messages`) only with `captureContent`.
 * Keys never appear: they are `Redacted`, and no attribute is built from a header or a URL's credentials.
 *
 * Metrics (Effect `Metric`s, only when the router's `telemetry.metrics` is on): see the constants below.
 *
 * @since 0.3.0
 */
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"

/**
 * A router's telemetry options (`Router.Options.telemetry`).
 *
 * @example
 * ```ts
 * import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
 * import { FetchHttpClient } from "@effect/platform"
 * import { PeriodicExportingMetricReader, ConsoleMetricExporter } from "@opentelemetry/sdk-metrics"
 * import { BatchSpanProcessor, ConsoleSpanExporter } from "@opentelemetry/sdk-trace-base"
 * import { Effect, Redacted } from "effect"
 * import { Model, OpenAiCompatible, Router } from "effect-llm-router"
 * const endpoint = OpenAiCompatible.endpoint({ baseUrl: "https://api.openai.com/v1", apiKey: Redacted.make("sk-...") })
 * const program = Effect.gen(function*() {
 *   const router = yield* Router.make({
 *     models: [Model.make({ name: "gpt-4o-mini", endpoint })],
 *     telemetry: { metrics: true, captureContent: false }
 *   })
 *   return yield* router.generate({ messages: [{ role: "user", content: "Hello" }] })
 * }).pipe(
 *   Effect.provide(FetchHttpClient.layer),
 *   Effect.provide(NodeSdk.layer(() => ({
 *     resource: { serviceName: "my-app" },
 *     spanProcessor: new BatchSpanProcessor(new ConsoleSpanExporter()),
 *     metricReader: new PeriodicExportingMetricReader({ exporter: new ConsoleMetricExporter() })
 *   })))
 * )
 * ```
 *
 * @since 0.3.0
 * @category models
 */
export interface Options {
  /**
   * Record the metrics below on every call (default `false`: Effect's metric registry is process-wide and keeps
   * every series it is given, exported or not).
   */
  readonly metrics?: boolean | undefined
  /**
   * Put the request's messages (`gen_ai.input.messages`) and the answer (`gen_ai.output.messages`) on the attempt
   * spans, as JSON in the conventions' message schemas (default `false`: they may hold personal data).
   */
  readonly captureContent?: boolean | undefined
}

/**
 * The version of the OpenTelemetry semantic conventions whose GenAI names the router follows.
 *
 * @since 0.3.0
 * @category constants
 */
export const semanticConventionsVersion = "1.41.0"

/**
 * Attribute names: the conventions' (`gen_ai.*`, `server.*`, `error.type`) and the router's own.
 *
 * @since 0.3.0
 * @category constants
 */
export const Attributes = {
  operationName: "gen_ai.operation.name",
  providerName: "gen_ai.provider.name",
  requestModel: "gen_ai.request.model",
  requestMaxTokens: "gen_ai.request.max_tokens",
  requestTemperature: "gen_ai.request.temperature",
  requestTopP: "gen_ai.request.top_p",
  requestFrequencyPenalty: "gen_ai.request.frequency_penalty",
  requestPresencePenalty: "gen_ai.request.presence_penalty",
  requestStopSequences: "gen_ai.request.stop_sequences",
  requestSeed: "gen_ai.request.seed",
  requestChoiceCount: "gen_ai.request.choice.count",
  requestStream: "gen_ai.request.stream",
  responseId: "gen_ai.response.id",
  responseModel: "gen_ai.response.model",
  responseFinishReasons: "gen_ai.response.finish_reasons",
  responseTimeToFirstChunk: "gen_ai.response.time_to_first_chunk",
  usageInputTokens: "gen_ai.usage.input_tokens",
  usageOutputTokens: "gen_ai.usage.output_tokens",
  tokenType: "gen_ai.token.type",
  inputMessages: "gen_ai.input.messages",
  outputMessages: "gen_ai.output.messages",
  errorType: "error.type",
  serverAddress: "server.address",
  serverPort: "server.port",
  /** The call's list: `provider/model`, or `group:name` for a group. */
  models: "effect_llm_router.models",
  /** The attempt's number on its model (1-based). */
  attempt: "effect_llm_router.attempt",
  /** The attempt's position in the whole call (1-based), as in the trail. */
  index: "effect_llm_router.index",
  /** What the router did after the attempt (`Attempt.Outcome`). */
  outcome: "effect_llm_router.outcome",
  /** `retry`: the wait before the next attempt, in milliseconds. */
  waitMillis: "effect_llm_router.wait_ms",
  /** Why the router chose the outcome when it is not obvious (the trail's `note`). */
  note: "effect_llm_router.note",
  /** `skipped`: why nothing was sent. */
  skipReason: "effect_llm_router.skip_reason",
  /** `skipped` at a limit: which one. */
  limit: "effect_llm_router.limit",
  /** `skipped`: when the deployment reopens (epoch milliseconds), when known. */
  reopensAt: "effect_llm_router.reopens_at",
  /** A group's deployment (`Health.deploymentId`). */
  deployment: "effect_llm_router.deployment",
  /** A hedged call: which of its requests (0 the first). */
  hedge: "effect_llm_router.hedge",
  /** The attempt probed a half-open deployment. */
  probe: "effect_llm_router.probe",
  /** The call span: the number of attempts. */
  attempts: "effect_llm_router.attempts",
  /** What an answer cost at its model's price (`Model.make({ price })`), on the serving attempt and the call. */
  cost: "effect_llm_router.cost",
  /** The call span: `provider/model` that served the call. */
  servedBy: "effect_llm_router.served_by",
  /** A stream interruption's reason (`StreamInterrupted.reason`). */
  interruptReason: "effect_llm_router.interrupt_reason",
  /** Breaker changes: the states, and why. */
  breakerFrom: "effect_llm_router.breaker.from",
  breakerTo: "effect_llm_router.breaker.to",
  breakerReason: "effect_llm_router.breaker.reason"
} as const

/**
 * Span and event names.
 *
 * @since 0.3.0
 * @category constants
 */
export const Names = {
  generate: "effect-llm-router.generate",
  stream: "effect-llm-router.stream",
  /** The attempt span's operation: its name is `chat {model}`. */
  operation: "chat",
  retry: "effect_llm_router.retry",
  fallback: "effect_llm_router.fallback",
  skip: "effect_llm_router.skip",
  cancel: "effect_llm_router.cancel",
  failed: "effect_llm_router.failed",
  streamInterrupted: "effect_llm_router.stream_interrupted",
  breaker: "effect_llm_router.breaker"
} as const

/**
 * The conventions' bucket boundaries for durations, in seconds.
 *
 * @since 0.3.0
 * @category constants
 */
export const durationBoundaries: ReadonlyArray<number> = [
  0.01,
  0.02,
  0.04,
  0.08,
  0.16,
  0.32,
  0.64,
  1.28,
  2.56,
  5.12,
  10.24,
  20.48,
  40.96,
  81.92
]

/**
 * The conventions' bucket boundaries for token counts.
 *
 * @since 0.3.0
 * @category constants
 */
export const tokenBoundaries: ReadonlyArray<number> = [
  1,
  4,
  16,
  64,
  256,
  1024,
  4096,
  16384,
  65536,
  262144,
  1048576,
  4194304,
  16777216,
  67108864
]

/**
 * The metrics' units (UCUM, as the conventions give them). The router adds each as a `unit` label to its metric's
 * updates: `@effect/opentelemetry` reads a metric's unit from that label.
 *
 * @since 0.3.0
 * @category constants
 */
export const units = {
  operationDuration: "s",
  tokenUsage: "{token}",
  timeToFirstChunk: "s",
  attempts: "{attempt}",
  fallbacks: "{fallback}",
  streamInterruptions: "{interruption}",
  breakerTransitions: "{transition}",
  cost: "{cost}"
} as const

/**
 * `gen_ai.client.operation.duration` (s): each attempt's duration (a stream's until it ends), with `error.type` when
 * it failed (`cancelled` for a hedge that lost). Tags: `gen_ai.operation.name`, `gen_ai.provider.name`,
 * `gen_ai.request.model`, `server.address`, `server.port`, `error.type`.
 *
 * @since 0.3.0
 * @category metrics
 */
export const operationDuration = Metric.histogram(
  "gen_ai.client.operation.duration",
  MetricBoundaries.fromIterable(durationBoundaries),
  "GenAI operation duration."
)

/**
 * `gen_ai.client.token.usage` ({token}): the input and output tokens of each answer that reported usage, tagged
 * `gen_ai.token.type` (`input` or `output`) and as the duration, plus `gen_ai.response.model`.
 *
 * @since 0.3.0
 * @category metrics
 */
export const tokenUsage = Metric.histogram(
  "gen_ai.client.token.usage",
  MetricBoundaries.fromIterable(tokenBoundaries),
  "Number of input and output tokens used."
)

/**
 * `gen_ai.client.operation.time_to_first_chunk` (s): a stream's time from the start of the attempt that served it to
 * its first content. Tags as the duration.
 *
 * @since 0.3.0
 * @category metrics
 */
export const timeToFirstChunk = Metric.histogram(
  "gen_ai.client.operation.time_to_first_chunk",
  MetricBoundaries.fromIterable(durationBoundaries),
  "Time to receive the first chunk."
)

/**
 * `effect_llm_router.attempts` ({attempt}): attempts by `gen_ai.request.model`, `gen_ai.provider.name` and
 * `effect_llm_router.outcome` (skips included: nothing was sent).
 *
 * @since 0.3.0
 * @category metrics
 */
export const attempts = Metric.counter("effect_llm_router.attempts", {
  description: "Attempts of routed calls, by model and outcome."
})

/**
 * `effect_llm_router.fallbacks` ({fallback}): moves to the next model (or a group's next deployment), by the model left
 * (`gen_ai.request.model`, `gen_ai.provider.name`) and `error.type`.
 *
 * @since 0.3.0
 * @category metrics
 */
export const fallbacks = Metric.counter("effect_llm_router.fallbacks", {
  description: "Fallbacks to the next model, by the model left."
})

/**
 * `effect_llm_router.stream.interruptions` ({interruption}): streams that broke after content, by
 * `effect_llm_router.interrupt_reason`, `gen_ai.request.model` and `gen_ai.provider.name`.
 *
 * @since 0.3.0
 * @category metrics
 */
export const streamInterruptions = Metric.counter("effect_llm_router.stream.interruptions", {
  description: "Streams interrupted after their first content, by reason."
})

/**
 * `effect_llm_router.breaker.transitions` ({transition}): deployment breaker changes, by `gen_ai.request.model`,
 * `gen_ai.provider.name`, `effect_llm_router.breaker.from` and `effect_llm_router.breaker.to`.
 *
 * @since 0.3.0
 * @category metrics
 */
export const breakerTransitions = Metric.counter("effect_llm_router.breaker.transitions", {
  description: "Deployment circuit breaker state changes."
})

/**
 * `effect_llm_router.cost` ({cost}): what the answers of models with a price cost (`Model.make({ price })`), in the
 * prices' currency, by `gen_ai.request.model` and `gen_ai.provider.name`; a stream counts at its end.
 *
 * @since 0.3.0
 * @category metrics
 */
export const cost = Metric.counter("effect_llm_router.cost", {
  description: "What answers cost at their models' prices."
})
