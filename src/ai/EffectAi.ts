/**
 * The router as an `@effect/ai` `LanguageModel` (0.37, the Effect 3 line): `LanguageModel.generateText`,
 * `streamText`, `generateObject` and toolkit tool calls run through routing: typed failure modes, retries with
 * Retry-After, ordered fallback, fallback only before the first token, stall and first-token timeouts, a trail.
 *
 * The prompt becomes Chat Completions messages (system, user text, images and PDFs, assistant text and tool calls,
 * tool results), the toolkit's tools become function tools with their JSON Schema, and `toolChoice` becomes
 * `tool_choice`; `generateObject` asks for a `json_schema` response format. The answer becomes a `response-metadata`
 * part (the response id, the model that served, and under `metadata["effect-llm-router"]` its provider and the trail,
 * read with {@link route}), a text part, tool-call parts and a finish part with the reason and usage. A stream gives
 * the same as text, tool-params and finish parts.
 *
 * Failures are `AiError`s, each failure mode the closest one, with the router's typed error as its `cause`:
 *
 * | router error | `AiError` |
 * | --- | --- |
 * | `InvalidRequest` | `MalformedInput` |
 * | an attempt's failure with an HTTP status (`RateLimited`, `ServerError`, `BadRequest`, `Timeout` 408, …) | `HttpResponseError` (`StatusCode`, the status, the redacted body excerpt) |
 * | `NetworkError`, `Timeout` without a status, `StreamInterrupted` `cut` or `stall` | `HttpRequestError` (`Transport`) |
 * | `MalformedResponse`, `ResponseRejected`, `StreamInterrupted` `truncated` or `malformed` | `MalformedOutput` |
 * | `DeadlineExceeded`, `NoModelAvailable`, `BudgetExceeded`, in-band failures without a status, `StreamInterrupted` `in-band-error` | `UnknownError` |
 *
 * `Effect.mapError(EffectAi.unwrapError)` gives back the router's own error (with its trail) wherever an `AiError`
 * carries one, so that `Effect.catchTag("RateLimited", …)` works again.
 *
 * @since 0.3.0
 */
import type * as AiError from "@effect/ai/AiError"
import * as LanguageModel from "@effect/ai/LanguageModel"
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import type { Attempt } from "../Attempt.js"
import type * as ChatRequest from "../ChatRequest.js"
import { metadataKey } from "../internal/bridge.js"
import * as Router from "../Router.js"
import type * as RouterError from "../RouterError.js"
import * as aiError from "./internal/aiError.js"
import * as internal from "./internal/languageModel.js"

/**
 * How the bridge builds requests.
 *
 * @since 0.3.0
 * @category models
 */
export interface Config {
  /** Request fields sent with every call (`temperature`, `max_tokens`, `model_kwargs`, …); a call's tools win. */
  readonly request?: ChatRequest.Overrides | undefined
  /** `strict` of the `json_schema` response format of `generateObject` (not sent by default). */
  readonly strictJsonSchema?: boolean | undefined
}

/**
 * Who served a call and how: the model and provider that answered and the trail of attempts that led to it. Found
 * under `metadata["effect-llm-router"]` of the `response-metadata` part.
 *
 * @since 0.3.0
 * @category models
 */
export interface Route {
  readonly model: string
  readonly provider: string
  readonly trail: ReadonlyArray<Attempt>
}

/**
 * The `LanguageModel` service over a router.
 *
 * @since 0.3.0
 * @category constructors
 */
export const make = (router: Router.Service, config: Config = {}): Effect.Effect<LanguageModel.Service> =>
  internal.make(router, config)

/**
 * `LanguageModel` over the `Router` in context.
 *
 * @since 0.3.0
 * @category layers
 */
export const layer = (config: Config = {}): Layer.Layer<LanguageModel.LanguageModel, never, Router.Router> =>
  Layer.effect(LanguageModel.LanguageModel, Effect.flatMap(Router.Router, (router) => make(router, config)))

/**
 * `LanguageModel` over a router built from these options (one router for the layer's lifetime, so deployment health
 * carries across calls).
 *
 * @example
 * ```ts
 * import { LanguageModel } from "@effect/ai"
 * import { Effect, Layer, Redacted } from "effect"
 * import { Model, OpenAiCompatible, RouterHttpClient } from "effect-llm-router"
 * import { EffectAi } from "effect-llm-router/ai"
 *
 * const openai = OpenAiCompatible.endpoint({ baseUrl: "https://api.openai.com/v1", apiKey: Redacted.make("sk-...") })
 *
 * const Routed = EffectAi.layerRouter({
 *   models: [Model.make({ name: "gpt-4o-mini", endpoint: openai }), Model.make({ name: "gpt-4o", endpoint: openai })],
 *   timeout: { deadline: "1 minute" }
 * }).pipe(Layer.provide(RouterHttpClient.layer))
 *
 * const haiku = LanguageModel.generateText({ prompt: "A haiku about retries" }).pipe(
 *   Effect.map((response) => response.text),
 *   Effect.mapError(EffectAi.unwrapError),
 *   Effect.catchTag("RateLimited", (e) => Effect.succeed(`busy: ${e.trail?.length ?? 0} attempts`)),
 *   Effect.provide(Routed)
 * )
 * ```
 *
 * @since 0.3.0
 * @category layers
 */
export const layerRouter = (
  options: Router.Options,
  config: Config = {}
): Layer.Layer<LanguageModel.LanguageModel, RouterError.RouterConfigError, HttpClient.HttpClient> =>
  Layer.effect(LanguageModel.LanguageModel, Effect.flatMap(Router.make(options), (router) => make(router, config)))

/**
 * The router's error an `AiError` carries as its `cause`, if any.
 *
 * @since 0.3.0
 * @category errors
 */
export const routerError: (error: unknown) => Option.Option<RouterError.AnyError> = aiError.routerError

/**
 * Gives back the router's own error wherever an `AiError` carries one, and leaves every other error as it is. Use it
 * with `Effect.mapError` or `Stream.mapError`, then `Effect.catchTag` on the router's tags.
 *
 * @since 0.3.0
 * @category errors
 */
export const unwrapError: <E>(error: E) => Exclude<E, AiError.AiError> | AiError.AiError | RouterError.AnyError =
  aiError.unwrap as any

/**
 * Who served a response (from its parts: `response.content` of `generateText` or `generateObject`, or the parts of
 * `streamText` seen so far), or `undefined` when no part says.
 *
 * @since 0.3.0
 * @category accessors
 */
export const route = (
  parts: Iterable<{ readonly type: string; readonly metadata?: unknown }>
): Route | undefined => {
  for (const part of parts) {
    if (part.type !== "response-metadata") continue
    const value = (part.metadata as Record<string, unknown> | undefined)?.[metadataKey]
    if (value !== undefined) return value as Route
  }
  return undefined
}
