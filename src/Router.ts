/**
 * The router: one call over an ordered list of models, with typed errors, retries with exponential backoff, ordered
 * fallback, a per-attempt timeout and a total deadline; and streams that fall back only before the first content.
 *
 * @since 0.1.0
 */
import * as Headers from "@effect/platform/Headers"
import * as HttpClient from "@effect/platform/HttpClient"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { Attempt } from "./Attempt.js"
import type { ChatChunk } from "./ChatChunk.js"
import * as ChatRequest from "./ChatRequest.js"
import { ChatResponse } from "./ChatResponse.js"
import * as GptRouter from "./GptRouter.js"
import * as errors from "./internal/errorMapping.js"
import * as plan from "./internal/plan.js"
import * as streaming from "./internal/streaming.js"
import * as transport from "./internal/transport.js"
import * as UntracedClient from "./internal/untracedClient.js"
import * as Model from "./Model.js"
import * as OpenAiCompatible from "./OpenAiCompatible.js"
import type { Endpoint, ResponseData } from "./Provider.js"
import * as RetryPolicy from "./RetryPolicy.js"
import * as RouterError from "./RouterError.js"

/**
 * The failure modes that move on to the next model by default: everything except `BadRequest`, which every model would
 * reject the same way.
 *
 * @since 0.1.0
 * @category Constants
 */
export const defaultFallbackOn: ReadonlySet<RouterError.AttemptErrorTag> = new Set(
  RouterError.attemptErrorTagList.filter((tag) => tag !== "BadRequest")
)

/**
 * @since 0.1.0
 * @category Models
 */
export interface Timeouts {
  /** Limit on each attempt (for a stream: until its first content, unless `firstToken` is set). */
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
 * @since 0.1.0
 * @category Models
 */
export interface Options {
  /** The priority list, tried in order. */
  readonly models: ReadonlyArray<Model.Model>
  /** Retry within a model: a policy, or options of the default exponential one (the seed's, by default). */
  readonly retry?: RetryPolicy.RetryPolicy | RetryPolicy.ExponentialOptions | undefined
  /** Which failure modes move on to the next model (default {@link defaultFallbackOn}). */
  readonly fallbackOn?: Iterable<RouterError.AttemptErrorTag> | undefined
  readonly timeout?: Timeouts | undefined
  /** Receives each attempt as it ends (the seed's `run_manager.on_retry`). Its failures are logged and ignored. */
  readonly onAttempt?: ((attempt: Attempt) => void | Effect.Effect<void>) | undefined
  /** Streams: the largest SSE event accepted, in bytes (default 1 MiB); a larger one is a `MalformedResponse`. */
  readonly maxEventBytes?: number | undefined
}

/**
 * @since 0.1.0
 * @category Models
 */
export interface Service {
  readonly models: ReadonlyArray<Model.Model>
  /** One routed call. */
  readonly generate: (request: ChatRequest.ChatRequest) => Effect.Effect<ChatResponse, RouterError.RouterError>
  /** One routed stream; it starts with `Started` naming the model that answers. */
  readonly stream: (request: ChatRequest.ChatRequest) => Stream.Stream<ChatChunk, RouterError.RouterStreamError>
}

/**
 * @since 0.1.0
 * @category Context
 */
export class Router extends Context.Tag("effect-llm-router/Router")<Router, Service>() {}

const positiveDuration = (
  value: Duration.DurationInput | undefined,
  option: string
): Effect.Effect<number | undefined, RouterError.RouterConfigError> => {
  if (value === undefined) return Effect.succeed(undefined)
  const decoded = Duration.decodeUnknown(value)
  if (Option.isNone(decoded) || !(Duration.toMillis(decoded.value) > 0)) {
    return Effect.fail(
      new RouterError.RouterConfigError({ option, reason: `must be a positive duration (got ${String(value)})` })
    )
  }
  const millis = Duration.toMillis(decoded.value)
  return Effect.succeed(Number.isFinite(millis) ? millis : undefined)
}

const configError = (option: string, reason: string) => new RouterError.RouterConfigError({ option, reason })

const checkModels = (models: ReadonlyArray<Model.Model>): Effect.Effect<void, RouterError.RouterConfigError> =>
  Effect.suspend(() => {
    if (!Array.isArray(models) || models.length === 0) {
      return Effect.fail(configError("models", "the priority list needs at least one model"))
    }
    for (let i = 0; i < models.length; i++) {
      const model = models[i]!
      if (typeof model.name !== "string" || model.name.length === 0) {
        return Effect.fail(configError(`models[${i}].name`, "must be a non-empty string"))
      }
      try {
        const url = new URL(model.endpoint.baseUrl)
        if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error(url.protocol)
      } catch {
        return Effect.fail(
          configError(`models[${i}].endpoint.baseUrl`, `not an http(s) URL: ${JSON.stringify(model.endpoint.baseUrl)}`)
        )
      }
      const probe = ChatRequest.validate({ messages: [{ role: "user", content: "" }], ...model.overrides })
      if (probe._tag === "Left") {
        return Effect.fail(configError(`models[${i}].overrides.${probe.left.field}`, probe.left.reason))
      }
    }
    return Effect.void
  })

const resolveRetry = (
  retry: Options["retry"]
): Effect.Effect<RetryPolicy.RetryPolicy, RouterError.RouterConfigError> => {
  if (retry !== undefined && RetryPolicy.isRetryPolicy(retry)) return Effect.succeed(retry)
  const problem = RetryPolicy.checkExponentialOptions(retry ?? {})
  return problem === undefined
    ? Effect.succeed(RetryPolicy.exponential(retry ?? {}))
    : Effect.fail(configError(problem.option, problem.reason))
}

// The tracer a fiber has when the application installed none: spans made for it go nowhere.
const builtInTracer = Effect.runSync(Effect.tracer)

/**
 * Builds the router. Fails with `RouterConfigError` on bad configuration.
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make = (options: Options): Effect.Effect<Service, RouterError.RouterConfigError, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    yield* checkModels(options.models)
    const retry = yield* resolveRetry(options.retry)
    const timeout = options.timeout ?? {}
    const attemptTimeoutMillis = yield* positiveDuration(timeout.attempt, "timeout.attempt")
    const firstTokenTimeoutMillis = yield* positiveDuration(timeout.firstToken, "timeout.firstToken")
    const stallTimeoutMillis = yield* positiveDuration(timeout.stall, "timeout.stall")
    const deadlineMillis = yield* positiveDuration(timeout.deadline, "timeout.deadline")
    const maxEventBytes = options.maxEventBytes ?? 1_048_576
    if (!Number.isInteger(maxEventBytes) || maxEventBytes < 1) {
      return yield* Effect.fail(configError("maxEventBytes", `must be a positive integer (got ${maxEventBytes})`))
    }
    const fallbackOn = new Set(options.fallbackOn ?? defaultFallbackOn)
    const models = [...options.models]

    const baseClient = yield* HttpClient.HttpClient
    // Without a tracer the client's span per request costs throughput for nothing.
    const quietBase = HttpClient.withTracerDisabledWhen(baseClient, () => true)
    // No per-attempt `withScope`: a non-streaming call reads its whole body, and a stream's body is read through
    // `response.stream`, which aborts the request when it ends however it ends (early `take`, interruption, or the
    // attempt's scope closing on failure). The client aborts on interruption before the headers by itself. A scope
    // would only add an abort, and its AbortError, to every request.
    const contexts = (execute: transport.Context["execute"]) => {
      const byEndpoint = new Map<Endpoint, transport.Context>()
      return (model: Model.Model): transport.Context => {
        let ctx = byEndpoint.get(model.endpoint)
        if (ctx === undefined) {
          ctx = { execute, endpoint: model.endpoint, redact: errors.makeRedactor(model.endpoint.secrets) }
          byEndpoint.set(model.endpoint, ctx)
        }
        return ctx
      }
    }
    const tracedContext = contexts((request) => baseClient.execute(request))
    const quietContext = contexts(
      UntracedClient.untracedExecute(baseClient) ?? ((request) => quietBase.execute(request))
    )

    const planConfig = (traced: boolean): plan.PlanConfig => ({
      models,
      retry,
      fallbackOn,
      attemptTimeoutMillis,
      deadlineMillis,
      onAttempt: options.onAttempt,
      traced
    })
    const tracedPlan = planConfig(true)
    const quietPlan = planConfig(false)
    // Secrets ride in headers the platform does not know to redact from spans (GPTRouter's `ws-secret`).
    const redactedNames = Headers.currentRedactedNames
    const withWsSecret = (names: ReadonlyArray<string | RegExp>) => [...names, "ws-secret"]

    const generate = (request: ChatRequest.ChatRequest): Effect.Effect<ChatResponse, RouterError.RouterError> =>
      Effect.flatMap(Effect.tracer, (tracer) => {
        const validated = ChatRequest.validate(request)
        if (validated._tag === "Left") return Effect.fail(validated.left)
        const traced = tracer !== builtInTracer
        const context = traced ? tracedContext : quietContext
        const call = Effect.flatMap(
          plan.run(
            traced ? tracedPlan : quietPlan,
            validated.right,
            false,
            traced
              ? (call, model) => Effect.tap(transport.generate(context(model), call), annotateUsage)
              : (call, model) => transport.generate(context(model), call),
            "attempt"
          ),
          (success) => {
            const data = success.value
            // The body has been read: the attempt's scope has nothing left to release, close it.
            return Effect.as(
              Scope.close(success.scope, Exit.void),
              new ChatResponse({
                id: data.id,
                model: data.model,
                provider: data.provider,
                choices: data.choices,
                ...(data.usage === undefined ? {} : { usage: data.usage }),
                trail: success.trail
              }, { disableValidation: true })
            )
          }
        )
        return traced
          ? Effect.locallyWith(
            Effect.withSpan(Effect.tap(call, annotateResponse), "effect-llm-router.generate", {
              attributes: { "llm.models": models.map((m) => `${m.provider}/${m.name}`).join(",") }
            }),
            redactedNames,
            withWsSecret
          )
          : call
      })

    const streamConfig = (traced: boolean): streaming.StreamConfig => ({
      plan: traced ? tracedPlan : quietPlan,
      context: traced ? tracedContext : quietContext,
      firstTokenTimeoutMillis,
      stallTimeoutMillis,
      maxEventBytes
    })
    const openTraced = streaming.opener(streamConfig(true))
    const openQuiet = streaming.opener(streamConfig(false))
    const stream = (request: ChatRequest.ChatRequest): Stream.Stream<ChatChunk, RouterError.RouterStreamError> =>
      // Validation, the tracer check and routing run when the stream is pulled, in the stream's own scope.
      streaming.fromOpen((scope) =>
        Effect.flatMap(Effect.tracer, (tracer) => {
          const validated = ChatRequest.validate(request)
          if (validated._tag === "Left") return Effect.fail(validated.left)
          if (tracer === builtInTracer) return openQuiet(validated.right, scope)
          // The span lives in the stream's scope: it covers the routing and every read, and ends with the stream.
          return Scope.extend(
            Effect.flatMap(Effect.makeSpanScoped("effect-llm-router.stream"), (span) =>
              Effect.zipRight(
                Effect.locallyScopedWith(redactedNames, withWsSecret),
                Effect.withParentSpan(openTraced(validated.right, scope), span)
              )),
            scope
          )
        })
      )

    return { models, generate, stream } satisfies Service
  })

const annotateUsage = (data: ResponseData) =>
  data.usage === undefined ? Effect.void : Effect.annotateCurrentSpan({
    "llm.usage.prompt_tokens": data.usage.promptTokens,
    "llm.usage.completion_tokens": data.usage.completionTokens
  })

const annotateResponse = (response: ChatResponse) =>
  Effect.annotateCurrentSpan({
    "llm.response.model": response.model,
    "llm.response.provider": response.provider,
    "llm.attempts": response.trail.length,
    ...(response.usage === undefined ? {} : {
      "llm.usage.prompt_tokens": response.usage.promptTokens,
      "llm.usage.completion_tokens": response.usage.completionTokens
    })
  })

/**
 * The router as a layer. Needs an `HttpClient` (e.g. `FetchHttpClient.layer`).
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer = (options: Options): Layer.Layer<Router, RouterError.RouterConfigError, HttpClient.HttpClient> =>
  Layer.effect(Router, make(options))

/**
 * A model for {@link layerConfig}: which endpoint from the environment serves it.
 *
 * @since 0.1.0
 * @category Models
 */
export interface ConfiguredModel {
  readonly name: string
  /** `openai` (an OpenAI-compatible server: `OPENAI_BASE_URL`, `OPENAI_API_KEY`) or `gptrouter` (default). */
  readonly via?: "openai" | "gptrouter" | undefined
  /** The provider label (GPTRouter's `providerName`; default `openai`). */
  readonly provider?: string | undefined
  readonly overrides?: ChatRequest.Overrides | undefined
}

/**
 * Endpoints read from the environment, as the seed reads them: `GPT_ROUTER_API_BASE` (default the seed's server),
 * `GPT_ROUTER_API_KEY`, `OPENAI_BASE_URL` (default `https://api.openai.com/v1`) and `OPENAI_API_KEY`. Keys are
 * `Redacted`.
 *
 * @since 0.1.0
 * @category Config
 */
export const endpointsConfig = Config.all({
  gptRouterBase: Config.string("GPT_ROUTER_API_BASE").pipe(Config.withDefault(GptRouter.defaultBaseUrl)),
  gptRouterKey: Config.option(Config.redacted("GPT_ROUTER_API_KEY")),
  openAiBase: Config.string("OPENAI_BASE_URL").pipe(Config.withDefault("https://api.openai.com/v1")),
  openAiKey: Config.option(Config.redacted("OPENAI_API_KEY"))
})

/**
 * Builds models on the endpoints of {@link endpointsConfig}. Fails when a model needs a key that is not set.
 *
 * @since 0.1.0
 * @category Config
 */
export const modelsFromConfig = (
  models: ReadonlyArray<ConfiguredModel>
): Effect.Effect<ReadonlyArray<Model.Model>, RouterError.RouterConfigError> =>
  Effect.gen(function*() {
    const env = yield* Effect.mapError(
      endpointsConfig,
      (e) => configError("environment", String(e).replace(/\s+/g, " "))
    )
    let gptRouter: Endpoint | undefined
    let openAi: Endpoint | undefined
    const out: Array<Model.Model> = []
    for (let i = 0; i < models.length; i++) {
      const m = models[i]!
      let endpoint: Endpoint
      if ((m.via ?? "gptrouter") === "gptrouter") {
        if (Option.isNone(env.gptRouterKey)) {
          return yield* Effect.fail(configError("GPT_ROUTER_API_KEY", `is not set (needed by models[${i}] ${m.name})`))
        }
        gptRouter ??= GptRouter.endpoint({ baseUrl: env.gptRouterBase, apiKey: env.gptRouterKey.value })
        endpoint = gptRouter
      } else {
        openAi ??= OpenAiCompatible.endpoint({
          baseUrl: env.openAiBase,
          apiKey: Option.getOrUndefined(env.openAiKey)
        })
        endpoint = openAi
      }
      out.push(Model.make({ name: m.name, endpoint, provider: m.provider, overrides: m.overrides }))
    }
    return out
  })

/**
 * The router as a layer whose endpoints and keys come from the environment (see {@link endpointsConfig}).
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerConfig = (
  options: Omit<Options, "models"> & { readonly models: ReadonlyArray<ConfiguredModel> }
): Layer.Layer<Router, RouterError.RouterConfigError, HttpClient.HttpClient> =>
  Layer.effect(
    Router,
    Effect.flatMap(modelsFromConfig(options.models), (models) => make({ ...options, models }))
  )

/**
 * One routed call through the `Router` in context.
 *
 * @since 0.1.0
 * @category Accessors
 */
export const generate = (
  request: ChatRequest.ChatRequest
): Effect.Effect<ChatResponse, RouterError.RouterError, Router> => Effect.flatMap(Router, (r) => r.generate(request))

/**
 * One routed stream through the `Router` in context.
 *
 * @since 0.1.0
 * @category Accessors
 */
export const stream = (
  request: ChatRequest.ChatRequest
): Stream.Stream<ChatChunk, RouterError.RouterStreamError, Router> =>
  Stream.unwrap(Effect.map(Router, (r) => r.stream(request)))

/**
 * Runs a stream to its end and returns the same response `generate` would (streaming transport, one result).
 *
 * @since 0.1.0
 * @category Combinators
 */
export const collect: <E, R>(self: Stream.Stream<ChatChunk, E, R>) => Effect.Effect<ChatResponse, E, R> =
  streaming.collect

/**
 * A model of the seed's priority list: `GPTRouterModel { name, provider_name }`.
 *
 * @since 0.1.0
 * @category Models
 */
export interface PriorityModel {
  readonly name: string
  readonly provider: string
}

/**
 * Options of {@link completionWithRetry}.
 *
 * @since 0.1.0
 * @category Models
 */
export type CompletionOptions = Omit<Options, "models"> & {
  /** Where the models are served (default: GPTRouter from `GPT_ROUTER_API_BASE` / `GPT_ROUTER_API_KEY`). */
  readonly endpoint?: Endpoint | undefined
  /** The seed's `max_retries`: attempts per model (default 4). Ignored when `retry` is given. */
  readonly maxRetries?: number | undefined
}

/**
 * The seed's entry point, `completion_with_retry(llm, models_priority_list, **kwargs)`: an ordered list of
 * `{ name, provider }` models plus the prompt parameters. Returns the routed response, or with `stream: true` a
 * `Stream` of chunks (the seed returns a generator).
 *
 * @since 0.1.0
 * @category Seed
 */
export function completionWithRetry(
  models: ReadonlyArray<PriorityModel>,
  request: ChatRequest.ChatRequest & { readonly stream: true },
  options?: CompletionOptions
): Stream.Stream<ChatChunk, RouterError.RouterStreamError | RouterError.RouterConfigError, HttpClient.HttpClient>
export function completionWithRetry(
  models: ReadonlyArray<PriorityModel>,
  request: ChatRequest.ChatRequest & { readonly stream?: false | undefined },
  options?: CompletionOptions
): Effect.Effect<ChatResponse, RouterError.RouterError | RouterError.RouterConfigError, HttpClient.HttpClient>
export function completionWithRetry(
  models: ReadonlyArray<PriorityModel>,
  request: ChatRequest.ChatRequest & { readonly stream?: boolean | undefined },
  options: CompletionOptions = {}
): unknown {
  const { stream: wantsStream, ...rest } = request as ChatRequest.ChatRequest & { stream?: boolean }
  const router = Effect.gen(function*() {
    const endpoint = options.endpoint ?? (yield* gptRouterFromEnv)
    const { endpoint: _, maxRetries, ...routerOptions } = options
    return yield* make({
      ...routerOptions,
      retry: routerOptions.retry ?? (maxRetries === undefined ? undefined : { maxAttempts: maxRetries }),
      models: models.map((m) => Model.make({ name: m.name, provider: m.provider, endpoint }))
    })
  })
  return wantsStream === true
    ? Stream.unwrap(Effect.map(router, (r) => r.stream(rest)))
    : Effect.flatMap(router, (r) => r.generate(rest))
}

const gptRouterFromEnv: Effect.Effect<Endpoint, RouterError.RouterConfigError> = Effect.gen(function*() {
  const env = yield* Effect.mapError(endpointsConfig, (e) => configError("environment", String(e)))
  if (Option.isNone(env.gptRouterKey)) {
    return yield* Effect.fail(configError("GPT_ROUTER_API_KEY", "is not set and no endpoint was given"))
  }
  return GptRouter.endpoint({ baseUrl: env.gptRouterBase, apiKey: env.gptRouterKey.value })
})
