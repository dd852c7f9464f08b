/**
 * The router: one call over an ordered list of models, with typed errors, retries with exponential backoff, ordered
 * fallback, a per-attempt timeout and a total deadline; and streams that fall back only before the first content.
 *
 * @since 0.1.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import type { Attempt } from "./Attempt.js"
import type { ChatChunk } from "./ChatChunk.js"
import type * as ChatRequest from "./ChatRequest.js"
import type { ChatResponse } from "./ChatResponse.js"
import type * as Health from "./Health.js"
import * as internal from "./internal/router.js"
import * as streaming from "./internal/streaming.js"
import type * as Model from "./Model.js"
import type * as RetryPolicy from "./RetryPolicy.js"
import type * as RouterError from "./RouterError.js"
import type * as Selection from "./Selection.js"
import type * as Telemetry from "./Telemetry.js"

/**
 * The failure modes that move on to the next model by default: everything except `BadRequest`, which every model would
 * reject the same way (read from each mode's `FailureMode`).
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultFallbackOn: ReadonlySet<RouterError.AttemptErrorTag> = internal.defaultFallbackOn

/**
 * Time limits of a routed call.
 *
 * @since 0.1.0
 * @category models
 */
export interface Timeouts {
  /**
   * Limit on each attempt. For a stream it always bounds the wait for the response headers; without `firstToken` it
   * bounds the attempt up to its first content.
   */
  readonly attempt?: Duration.DurationInput | undefined
  /** Streams: limit from the start of an attempt to its first content chunk. Keep-alives do not count. */
  readonly firstToken?: Duration.DurationInput | undefined
  /** Streams: the longest gap between content chunks once content started. Keep-alives do not count. */
  readonly stall?: Duration.DurationInput | undefined
  /**
   * Total limit over every attempt, retry wait and fallback of a call. For a stream it bounds the routing, up to the
   * first content; after that the stall timeout guards the stream.
   */
  readonly deadline?: Duration.DurationInput | undefined
}

/**
 * What a router is built from.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The priority list, tried in order: models, and groups of deployments of one model (`Model.group`). */
  readonly models: ReadonlyArray<Model.Entry>
  /** Retry within a model: a policy, or options of the default exponential one (GPTRouter's, by default). */
  readonly retry?: RetryPolicy.RetryPolicy | RetryPolicy.ExponentialOptions | undefined
  /** Which failure modes move on to the next model (default {@link defaultFallbackOn}). */
  readonly fallbackOn?: Iterable<RouterError.AttemptErrorTag> | undefined
  /**
   * An answer check for non-streaming calls (`generate`, and the bridges' non-streaming calls): called with each answer
   * before the router accepts it. `true` keeps it; `false`, or a reason in words, rejects it as `ResponseRejected`,
   * which falls back to the next model (retried on the same model only when `retry.retryOn` names it) and does not
   * count against the deployment. The check may be an effect (a moderation call, say): it runs within the attempt, so
   * the attempt timeout and the deadline bound it. A check that throws (or dies) rejects the answer with what it threw.
   * Streams are not checked: their content is delivered as it arrives. The answer it sees has no trail yet.
   */
  readonly accept?:
    | ((response: ChatResponse) => boolean | string | Effect.Effect<boolean | string>)
    | undefined
  readonly timeout?: Timeouts | undefined
  /** Receives each attempt as it ends (LangChain's `run_manager.on_retry`). Its failures are logged and ignored. */
  readonly onAttempt?: ((attempt: Attempt) => void | Effect.Effect<void>) | undefined
  /** Streams: the largest SSE event accepted, in bytes (default 1 MiB); a larger one is a `MalformedResponse`. */
  readonly maxEventBytes?: number | undefined
  /**
   * Deployment health across calls (a circuit breaker per deployment; see `Health`), on by default; `false` turns it
   * off, so that every call starts again at the top of the list. The table is the `Health.HealthStore` in context,
   * or this router's own.
   */
  readonly health?: Health.Options | false | undefined
  /**
   * Hedged requests (off by default): when a call has not succeeded after `delay`, the same request also goes to
   * another deployment, and the first success wins (see `Selection.HedgeOptions`).
   */
  readonly hedge?: Selection.HedgeOptions | undefined
  /**
   * Tried, in order, instead of the rest of the list when a model's content filter refuses the request
   * (`ContentFiltered`); off unless given.
   */
  readonly contentPolicyFallbacks?: ReadonlyArray<Model.Entry> | undefined
  /**
   * Spending limits, counted at the models' prices (`Model.make({ price })`; models without a price cost nothing):
   * `perCall` skips a model whose estimated cost for the request (its prompt at the input price, its `max_tokens` at
   * the output price) exceeds it; `perPeriod` fails calls with `BudgetExceeded` once this period's spending reaches
   * `limit` (periods aligned on the epoch; the budget lives in the `Health.HealthStore` in context, so routers and
   * processes sharing a store and a `name` share it).
   */
  readonly budget?: {
    readonly perCall?: number | undefined
    readonly perPeriod?: {
      readonly limit: number
      readonly period: Duration.DurationInput
      /** [`"default"`] */
      readonly name?: string | undefined
    } | undefined
  } | undefined
  /**
   * Telemetry beyond the spans a tracer gets anyway (see `Telemetry`): `metrics` records the GenAI and router
   * metrics, `captureContent` puts prompts and answers on the spans. Both off by default.
   */
  readonly telemetry?: Telemetry.Options | undefined
}

/**
 * The router's service.
 *
 * @since 0.1.0
 * @category models
 */
export interface Service {
  readonly models: ReadonlyArray<Model.Entry>
  /** One routed call. */
  readonly generate: (request: ChatRequest.ChatRequest) => Effect.Effect<ChatResponse, RouterError.RouterError>
  /** One routed stream; it starts with `Started` naming the model that answers. */
  readonly stream: (request: ChatRequest.ChatRequest) => Stream.Stream<ChatChunk, RouterError.RouterStreamError>
  /**
   * The health of each deployment of the list, in order (a group's deployments in the group's order), then of the
   * content-policy fallbacks not already listed.
   */
  readonly health: Effect.Effect<ReadonlyArray<Health.Deployment>>
}

/**
 * The router in context.
 *
 * @since 0.1.0
 * @category context
 */
export class Router extends Context.Tag("effect-llm-router/Router")<Router, Service>() {}

/**
 * Builds the router. Fails with `RouterConfigError` on bad configuration (an empty list, a base URL that does not
 * parse, an override that is not a valid request field, a negative duration…).
 *
 * @example
 * ```ts
 * import { FetchHttpClient } from "@effect/platform"
 * import { Effect, Redacted } from "effect"
 * import { Model, OpenAiCompatible, Router } from "effect-llm-router"
 *
 * const openai = OpenAiCompatible.endpoint({
 *   baseUrl: "https://api.openai.com/v1",
 *   apiKey: Redacted.make("sk-...")
 * })
 *
 * const program = Effect.gen(function*() {
 *   const router = yield* Router.make({
 *     models: [Model.make({ name: "gpt-4o-mini", endpoint: openai }), Model.make({ name: "gpt-4o", endpoint: openai })],
 *     retry: { maxAttempts: 3 },
 *     timeout: { attempt: "30 seconds", deadline: "2 minutes" }
 *   })
 *   const response = yield* router.generate({ messages: [{ role: "user", content: "Hello" }] })
 *   return `${response.model}: ${response.text}`
 * }).pipe(Effect.provide(FetchHttpClient.layer))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (options: Options) => Effect.Effect<Service, RouterError.RouterConfigError, HttpClient.HttpClient> =
  internal.make

/**
 * The router as a layer. Needs an `HttpClient` (e.g. `FetchHttpClient.layer`, or `NodeRouterHttpClient.layerUndici`
 * from `effect-llm-router/node`).
 *
 * @example
 * ```ts
 * import { FetchHttpClient } from "@effect/platform"
 * import { Config, Effect, Layer } from "effect"
 * import { Model, OpenAiCompatible, Router } from "effect-llm-router"
 *
 * const RouterLive = Layer.unwrapEffect(Effect.gen(function*() {
 *   const apiKey = yield* Config.redacted("OPENAI_API_KEY")
 *   const openai = OpenAiCompatible.endpoint({ baseUrl: "https://api.openai.com/v1", apiKey })
 *   return Router.layer({
 *     models: [Model.make({ name: "gpt-4o-mini", endpoint: openai }), Model.make({ name: "gpt-4o", endpoint: openai })]
 *   })
 * })).pipe(Layer.provide(FetchHttpClient.layer))
 *
 * const answer = Router.generate({ messages: [{ role: "user", content: "Hello" }] }).pipe(
 *   Effect.map((response) => response.text),
 *   Effect.catchTag("RateLimited", (e) => Effect.succeed(`busy, retry in ${e.retryAfterMillis ?? 0} ms`)),
 *   Effect.provide(RouterLive)
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<Router, RouterError.RouterConfigError, HttpClient.HttpClient> =>
  Layer.effect(Router, make(options))

/**
 * One routed call through the `Router` in context.
 *
 * @since 0.1.0
 * @category accessors
 */
export const generate = (
  request: ChatRequest.ChatRequest
): Effect.Effect<ChatResponse, RouterError.RouterError, Router> => Effect.flatMap(Router, (r) => r.generate(request))

/**
 * One routed stream through the `Router` in context.
 *
 * @example
 * ```ts
 * import { Effect, Stream } from "effect"
 * import { Router } from "effect-llm-router"
 *
 * // Prints the text as it arrives; a failure after the first token is a StreamInterrupted holding the partial text.
 * const printed = Router.stream({ messages: [{ role: "user", content: "Tell me a story" }] }).pipe(
 *   Stream.runForEach((chunk) => chunk._tag === "TextDelta" ? Effect.sync(() => process.stdout.write(chunk.text)) : Effect.void),
 *   Effect.catchTag("StreamInterrupted", (e) => Effect.logWarning(`cut after ${e.text.length} characters`))
 * )
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const stream = (
  request: ChatRequest.ChatRequest
): Stream.Stream<ChatChunk, RouterError.RouterStreamError, Router> =>
  Stream.unwrap(Effect.map(Router, (r) => r.stream(request)))

/**
 * Runs a stream to its end and returns the same response `generate` would (streaming transport, one result).
 *
 * @since 0.1.0
 * @category combinators
 */
export const collect: <E, R>(self: Stream.Stream<ChatChunk, E, R>) => Effect.Effect<ChatResponse, E, R> =
  streaming.collect
