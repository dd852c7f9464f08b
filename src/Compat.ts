/**
 * The surface of LangChain's GPTRouter integration: `completionWithRetry(models, request)` over a priority list of
 * `{ name, provider }`, and endpoints read from the environment variables it reads (`GPT_ROUTER_API_BASE`,
 * `GPT_ROUTER_API_KEY`, plus `OPENAI_BASE_URL` and `OPENAI_API_KEY` for OpenAI-compatible servers,
 * `ANTHROPIC_BASE_URL` and `ANTHROPIC_API_KEY` for Anthropic, `GEMINI_BASE_URL` and `GEMINI_API_KEY` or
 * `GOOGLE_API_KEY` for Gemini). Every value is a `Config`, so a missing key is the `ConfigError` Effect reports for any
 * missing setting.
 *
 * @since 0.2.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as Anthropic from "./Anthropic.js"
import type { ChatChunk } from "./ChatChunk.js"
import type * as ChatRequest from "./ChatRequest.js"
import type { ChatResponse } from "./ChatResponse.js"
import * as Gemini from "./Gemini.js"
import * as GptRouter from "./GptRouter.js"
import * as Model from "./Model.js"
import * as OpenAiCompatible from "./OpenAiCompatible.js"
import type { Endpoint } from "./Provider.js"
import * as Router from "./Router.js"
import type * as RouterError from "./RouterError.js"

/**
 * The GPTRouter endpoint from configuration: `GPT_ROUTER_API_BASE` (default GPTRouter's own server) and
 * `GPT_ROUTER_API_KEY` (required, `Redacted`), unless other `Config`s are given.
 *
 * @since 0.2.0
 * @category config
 */
export const gptRouterEndpoint = (options: {
  readonly baseUrl?: Config.Config<string> | undefined
  readonly apiKey?: Config.Config<Redacted.Redacted> | undefined
} = {}): Config.Config<Endpoint> =>
  Config.map(
    Config.all({
      baseUrl: options.baseUrl ?? Config.withDefault(Config.string("GPT_ROUTER_API_BASE"), GptRouter.defaultBaseUrl),
      apiKey: options.apiKey ?? Config.redacted("GPT_ROUTER_API_KEY")
    }),
    GptRouter.endpoint
  )

/**
 * The OpenAI-compatible endpoint from configuration: `OPENAI_BASE_URL` (default `https://api.openai.com/v1`) and
 * `OPENAI_API_KEY` (optional: local servers need none), unless other `Config`s are given.
 *
 * @since 0.2.0
 * @category config
 */
export const openAiEndpoint = (options: {
  readonly baseUrl?: Config.Config<string> | undefined
  readonly apiKey?: Config.Config<Option.Option<Redacted.Redacted>> | undefined
} = {}): Config.Config<Endpoint> =>
  Config.map(
    Config.all({
      baseUrl: options.baseUrl ?? Config.withDefault(Config.string("OPENAI_BASE_URL"), "https://api.openai.com/v1"),
      apiKey: options.apiKey ?? Config.option(Config.redacted("OPENAI_API_KEY"))
    }),
    ({ apiKey, baseUrl }) => OpenAiCompatible.endpoint({ baseUrl, apiKey: Option.getOrUndefined(apiKey) })
  )

/**
 * The Anthropic endpoint from configuration: `ANTHROPIC_BASE_URL` (default `https://api.anthropic.com`) and
 * `ANTHROPIC_API_KEY` (required, `Redacted`), unless other `Config`s are given.
 *
 * @since 0.3.0
 * @category config
 */
export const anthropicEndpoint = (options: {
  readonly baseUrl?: Config.Config<string> | undefined
  readonly apiKey?: Config.Config<Redacted.Redacted> | undefined
} = {}): Config.Config<Endpoint> =>
  Config.map(
    Config.all({
      baseUrl: options.baseUrl ?? Config.withDefault(Config.string("ANTHROPIC_BASE_URL"), Anthropic.defaultBaseUrl),
      apiKey: options.apiKey ?? Config.redacted("ANTHROPIC_API_KEY")
    }),
    Anthropic.endpoint
  )

/**
 * The Gemini endpoint from configuration: `GEMINI_BASE_URL` (default `https://generativelanguage.googleapis.com`) and
 * `GEMINI_API_KEY`, or `GOOGLE_API_KEY` when that is unset (required, `Redacted`), unless other `Config`s are given.
 *
 * @since 0.3.0
 * @category config
 */
export const geminiEndpoint = (options: {
  readonly baseUrl?: Config.Config<string> | undefined
  readonly apiKey?: Config.Config<Redacted.Redacted> | undefined
} = {}): Config.Config<Endpoint> =>
  Config.map(
    Config.all({
      baseUrl: options.baseUrl ?? Config.withDefault(Config.string("GEMINI_BASE_URL"), Gemini.defaultBaseUrl),
      apiKey: options.apiKey ??
        Config.orElse(Config.redacted("GEMINI_API_KEY"), () => Config.redacted("GOOGLE_API_KEY"))
    }),
    Gemini.endpoint
  )

/**
 * How a configured model is reached: `gptrouter`, an OpenAI-compatible server (`openai`), or natively `anthropic` or
 * `gemini`.
 *
 * @since 0.3.0
 * @category models
 */
export type Via = "openai" | "gptrouter" | "anthropic" | "gemini"

/**
 * A model of {@link modelsConfig}: which endpoint serves it.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConfiguredModel {
  readonly name: string
  /** `openai` (an OpenAI-compatible server), `anthropic`, `gemini` (since 0.3.0) or `gptrouter` (default). */
  readonly via?: Via | undefined
  /** The provider label (GPTRouter's `providerName`; default: the endpoint's, `openai` for GPTRouter). */
  readonly provider?: string | undefined
  readonly overrides?: ChatRequest.Overrides | undefined
}

/**
 * Where the models of {@link modelsConfig} are served. Each endpoint is read only when a model needs it, so a list of
 * OpenAI-compatible models does not ask for `GPT_ROUTER_API_KEY`.
 *
 * @since 0.2.0
 * @category models
 */
export interface Endpoints {
  /** Default {@link gptRouterEndpoint}`()`. */
  readonly gptRouter?: Config.Config<Endpoint> | undefined
  /** Default {@link openAiEndpoint}`()`. */
  readonly openAi?: Config.Config<Endpoint> | undefined
  /** Default {@link anthropicEndpoint}`()`. */
  readonly anthropic?: Config.Config<Endpoint> | undefined
  /** Default {@link geminiEndpoint}`()`. */
  readonly gemini?: Config.Config<Endpoint> | undefined
}

/**
 * The models of a priority list on the endpoints from configuration.
 *
 * @since 0.2.0
 * @category config
 */
export const modelsConfig = (
  models: ReadonlyArray<ConfiguredModel>,
  endpoints: Endpoints = {}
): Config.Config<ReadonlyArray<Model.Model>> => {
  const uses = (via: Via) => models.some((m) => (m.via ?? "gptrouter") === via)
  const read = (via: Via, given: Config.Config<Endpoint> | undefined, fallback: () => Config.Config<Endpoint>) =>
    uses(via) ? given ?? fallback() : Config.succeed(undefined)
  return Config.map(
    Config.all({
      gptrouter: read("gptrouter", endpoints.gptRouter, gptRouterEndpoint),
      openai: read("openai", endpoints.openAi, openAiEndpoint),
      anthropic: read("anthropic", endpoints.anthropic, anthropicEndpoint),
      gemini: read("gemini", endpoints.gemini, geminiEndpoint)
    }),
    (resolved) =>
      models.map((m) =>
        Model.make({
          name: m.name,
          endpoint: resolved[m.via ?? "gptrouter"]!,
          provider: m.provider,
          overrides: m.overrides
        })
      )
  )
}

/**
 * Options of {@link layerConfig}: the router's options, with models on endpoints from configuration.
 *
 * @since 0.2.0
 * @category models
 */
export interface LayerConfigOptions extends Omit<Router.Options, "models">, Endpoints {
  readonly models: ReadonlyArray<ConfiguredModel>
}

/**
 * The router as a layer whose endpoints and keys come from configuration (the environment, by default). A missing
 * key fails the layer with Effect's `ConfigError` naming the variable; bad options with `RouterConfigError`.
 *
 * @example
 * ```ts
 * import { FetchHttpClient } from "@effect/platform"
 * import { Config, Layer } from "effect"
 * import { Compat } from "effect-llm-router"
 *
 * // GPT_ROUTER_API_KEY from the environment; the OpenAI-compatible server's URL and key from other variables.
 * export const RouterLive = Compat.layerConfig({
 *   models: [{ name: "claude-3-haiku", provider: "anthropic" }, { name: "llama3", via: "openai" }],
 *   openAi: Compat.openAiEndpoint({
 *     baseUrl: Config.string("LOCAL_LLM_URL"),
 *     apiKey: Config.option(Config.redacted("LOCAL_LLM_KEY"))
 *   }),
 *   timeout: { deadline: "1 minute" }
 * }).pipe(Layer.provide(FetchHttpClient.layer))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: LayerConfigOptions
): Layer.Layer<Router.Router, RouterError.RouterConfigError | ConfigError.ConfigError, HttpClient.HttpClient> => {
  const { anthropic, gemini, gptRouter, models, openAi, ...rest } = options
  return Layer.effect(
    Router.Router,
    Effect.flatMap(
      modelsConfig(models, { gptRouter, openAi, anthropic, gemini }),
      (resolved) => Router.make({ ...rest, models: resolved })
    )
  )
}

/**
 * A model of GPTRouter's priority list: `GPTRouterModel { name, provider_name }`.
 *
 * @since 0.1.0
 * @category models
 */
export interface PriorityModel {
  readonly name: string
  readonly provider: string
}

/**
 * Options of {@link completionWithRetry}.
 *
 * @since 0.1.0
 * @category models
 */
export type CompletionOptions = Omit<Router.Options, "models"> & {
  /** Where the models are served (default: {@link gptRouterEndpoint}`()`, from the environment). */
  readonly endpoint?: Endpoint | undefined
  /** LangChain's `max_retries`: attempts per model (default 4). Ignored when `retry` is given. */
  readonly maxRetries?: number | undefined
}

/**
 * LangChain's GPTRouter entry point, `completion_with_retry(llm, models_priority_list, **kwargs)`: an ordered list of
 * `{ name, provider }` models plus the prompt parameters. Returns the routed response, or with `stream: true` a
 * `Stream` of chunks (LangChain returns a generator).
 *
 * @example
 * ```ts
 * import { FetchHttpClient } from "@effect/platform"
 * import { Effect } from "effect"
 * import { Compat } from "effect-llm-router"
 *
 * const models = [{ name: "gpt-4o", provider: "openai" }, { name: "claude-3-haiku", provider: "anthropic" }]
 * const messages = [{ role: "user" as const, content: "Hello" }]
 *
 * // Keys from GPT_ROUTER_API_KEY; a missing key is a ConfigError.
 * export const once = Compat.completionWithRetry(models, { messages, temperature: 0.7 }).pipe(
 *   Effect.provide(FetchHttpClient.layer)
 * )
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export function completionWithRetry(
  models: ReadonlyArray<PriorityModel>,
  request: ChatRequest.ChatRequest & { readonly stream: true },
  options?: CompletionOptions
): Stream.Stream<
  ChatChunk,
  RouterError.RouterStreamError | RouterError.RouterConfigError | ConfigError.ConfigError,
  HttpClient.HttpClient
>
export function completionWithRetry(
  models: ReadonlyArray<PriorityModel>,
  request: ChatRequest.ChatRequest & { readonly stream?: false | undefined },
  options?: CompletionOptions
): Effect.Effect<
  ChatResponse,
  RouterError.RouterError | RouterError.RouterConfigError | ConfigError.ConfigError,
  HttpClient.HttpClient
>
export function completionWithRetry(
  models: ReadonlyArray<PriorityModel>,
  request: ChatRequest.ChatRequest & { readonly stream?: boolean | undefined },
  options: CompletionOptions = {}
): unknown {
  const { stream: wantsStream, ...rest } = request as ChatRequest.ChatRequest & { stream?: boolean }
  const { endpoint: given, maxRetries, ...routerOptions } = options
  const router = Effect.gen(function*() {
    const endpoint = given ?? (yield* gptRouterEndpoint())
    return yield* Router.make({
      ...routerOptions,
      retry: routerOptions.retry ?? (maxRetries === undefined ? undefined : { maxAttempts: maxRetries }),
      models: models.map((m) => Model.make({ name: m.name, provider: m.provider, endpoint }))
    })
  })
  return wantsStream === true
    ? Stream.unwrap(Effect.map(router, (r) => r.stream(rest)))
    : Effect.flatMap(router, (r) => r.generate(rest))
}
