/**
 * The router's implementation: checks the options, builds the plan's configuration once, and runs `generate` and
 * `stream` on it (traced or not, see below).
 *
 * @internal
 */
import * as Headers from "@effect/platform/Headers"
import * as HttpClient from "@effect/platform/HttpClient"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as DefaultServices from "effect/DefaultServices"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import * as Tracer from "effect/Tracer"
import type { ChatChunk } from "../ChatChunk.js"
import * as ChatRequest from "../ChatRequest.js"
import type { ChatResponse } from "../ChatResponse.js"
import * as Health from "../Health.js"
import * as Model from "../Model.js"
import type { Call, Endpoint, ResponseData } from "../Provider.js"
import * as RetryPolicy from "../RetryPolicy.js"
import type { Options, Service } from "../Router.js"
import * as RouterError from "../RouterError.js"
import * as Telemetry from "../Telemetry.js"
import * as construct from "./construct.js"
import * as costs from "./cost.js"
import * as errors from "./errorMapping.js"
import * as healthInternal from "./health.js"
import * as hedge from "./hedge.js"
import * as limits from "./limits.js"
import type * as plan from "./plan.js"
import * as Selection from "./selection.js"
import * as streaming from "./streaming.js"
import * as telemetry from "./telemetry.js"
import * as transport from "./transport.js"
import * as UntracedClient from "./untracedClient.js"

/** @internal */
export const defaultFallbackOn: ReadonlySet<RouterError.AttemptErrorTag> = new Set(
  RouterError.attemptErrorTagList.filter((tag) => RouterError.failureModes[tag].fallsBack)
)

/** @internal */
export const configError = (option: string, reason: string) => new RouterError.RouterConfigError({ option, reason })

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

const checkModel = (model: Model.Model, at: string): RouterError.RouterConfigError | undefined => {
  if (typeof model !== "object" || model === null) return configError(at, "must be a Model (Model.make) or a group")
  if (typeof model.name !== "string" || model.name.length === 0) {
    return configError(`${at}.name`, "must be a non-empty string")
  }
  try {
    const url = new URL(model.endpoint.baseUrl)
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error(url.protocol)
  } catch {
    return configError(`${at}.endpoint.baseUrl`, `not an http(s) URL: ${JSON.stringify(model.endpoint?.baseUrl)}`)
  }
  const probe = ChatRequest.validate({ messages: [{ role: "user", content: "" }], ...model.overrides })
  if (probe._tag === "Left") return configError(`${at}.overrides.${probe.left.field}`, probe.left.reason)
  const window = model.contextWindow
  if (window !== undefined && !(Number.isInteger(window) && window >= 1)) {
    return configError(`${at}.contextWindow`, `must be a whole number of tokens ≥ 1 (got ${String(window)})`)
  }
  return costs.checkPrice(model.price, `${at}.price`) ?? limits.check(model.limits, `${at}.limits`)
}

const checkModels = (
  models: ReadonlyArray<Model.Entry>,
  option = "models"
): Effect.Effect<void, RouterError.RouterConfigError> =>
  Effect.suspend(() => {
    if (!Array.isArray(models) || models.length === 0) {
      return Effect.fail(configError(option, "the priority list needs at least one model"))
    }
    for (let i = 0; i < models.length; i++) {
      const entry = models[i]!
      if (Model.isGroup(entry)) {
        const bad = Selection.check(entry, `${option}[${i}]`)
        if (bad !== undefined) return Effect.fail(bad)
        for (let j = 0; j < entry.deployments.length; j++) {
          const badDeployment = checkModel(entry.deployments[j]!.model, `${option}[${i}].deployments[${j}].model`)
          if (badDeployment !== undefined) return Effect.fail(badDeployment)
        }
      } else {
        const bad = checkModel(entry, `${option}[${i}]`)
        if (bad !== undefined) return Effect.fail(bad)
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

// The tracer a fiber has when the application installed none (the default services' own): spans made for it go
// nowhere, so the router makes none.
const builtInTracer = Context.get(DefaultServices.liveServices, Tracer.Tracer)

const resolveBudget = (
  options: Options["budget"]
): Effect.Effect<plan.BudgetConfig | undefined, RouterError.RouterConfigError> => {
  if (options === undefined) return Effect.succeed(undefined)
  const perCall = options.perCall
  if (perCall !== undefined && !(typeof perCall === "number" && Number.isFinite(perCall) && perCall > 0)) {
    return Effect.fail(configError("budget.perCall", `must be a positive finite amount (got ${String(perCall)})`))
  }
  const perPeriod = options.perPeriod
  if (perPeriod === undefined) return Effect.succeed({ perCall, perPeriod: undefined })
  if (!(typeof perPeriod.limit === "number" && Number.isFinite(perPeriod.limit) && perPeriod.limit > 0)) {
    return Effect.fail(
      configError("budget.perPeriod.limit", `must be a positive finite amount (got ${String(perPeriod.limit)})`)
    )
  }
  const decoded = Duration.decodeUnknown(perPeriod.period)
  const periodMillis = Option.isSome(decoded) ? Duration.toMillis(decoded.value) : NaN
  if (!(periodMillis >= 1000 && Number.isFinite(periodMillis))) {
    return Effect.fail(
      configError(
        "budget.perPeriod.period",
        `must be a finite duration of at least 1 second (got ${String(perPeriod.period)})`
      )
    )
  }
  const name = perPeriod.name ?? "default"
  // The budget lives in the store in context (shared), else with this router.
  return Effect.map(Effect.serviceOption(Health.HealthStore), (store) => ({
    perCall,
    perPeriod: {
      name,
      limit: perPeriod.limit,
      periodMillis,
      budgets: Option.flatMap(store, (s) => Option.fromNullable(s.budgets)).pipe(Option.getOrElse(costs.makeMemory))
    }
  }))
}

const resolveHealth = (
  options: Options["health"]
): Effect.Effect<plan.HealthConfig | undefined, RouterError.RouterConfigError> => {
  if (options === false) return Effect.succeed(undefined)
  const policy = healthInternal.resolvePolicy(options ?? {})
  if (policy instanceof RouterError.RouterConfigError) return Effect.fail(policy)
  // A store in context is shared (across routers, or processes); without one, this router keeps its own.
  return Effect.map(
    Effect.serviceOption(Health.HealthStore),
    (found) => {
      const store = Option.getOrElse(found, Health.makeMemory)
      return { store, policy, sync: healthInternal.syncOf(store) }
    }
  )
}

const usageOf = (data: { readonly usage?: ChatResponse["usage"] }) => data.usage

const emptyHealth = (model: Model.Model): Health.Deployment => ({
  id: Health.deploymentId(model),
  model: model.name,
  provider: model.provider,
  state: "closed",
  consecutiveFailures: 0,
  recentRequests: 0,
  recentFailures: 0,
  trips: 0,
  reopensAt: undefined,
  inFlight: 0,
  probing: false,
  reason: undefined,
  limits: model.limits ?? {},
  remainingRequests: model.limits?.requestsPerMinute,
  remainingTokens: model.limits?.tokensPerMinute
})

/** @internal */
export const make = (options: Options): Effect.Effect<Service, RouterError.RouterConfigError, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    yield* checkModels(options.models)
    if (options.contentPolicyFallbacks !== undefined) {
      yield* checkModels(options.contentPolicyFallbacks, "contentPolicyFallbacks")
    }
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
    const accept = options.accept
    if (accept !== undefined && typeof accept !== "function") {
      return yield* Effect.fail(configError("accept", `must be a function (got ${typeof accept})`))
    }
    const healthConfig = yield* resolveHealth(options.health)
    if (healthConfig === undefined) {
      for (
        const [option, list] of [["models", options.models], [
          "contentPolicyFallbacks",
          options.contentPolicyFallbacks ?? []
        ]] as const
      ) {
        const limited = list.findIndex((entry) => Model.deploymentsOf(entry).some((model) => limits.any(model.limits)))
        if (limited >= 0) {
          return yield* Effect.fail(
            configError(`${option}[${limited}].limits`, "needs deployment health, which counts them (health is false)")
          )
        }
      }
    }
    const models = [...options.models]
    const contentPolicyFallbacks = options.contentPolicyFallbacks === undefined
      ? undefined
      : [...options.contentPolicyFallbacks]
    const deployments = [...new Set([...models, ...(contentPolicyFallbacks ?? [])].flatMap(Model.deploymentsOf))]

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

    const budget = yield* resolveBudget(options.budget)
    const selection = new Selection.State()
    const hedgeState = hedge.resolve(options.hedge)
    if (hedgeState instanceof RouterError.RouterConfigError) return yield* Effect.fail(hedgeState)
    const planConfig = (traced: boolean): plan.PlanConfig => ({
      models,
      selection,
      hedge: hedgeState,
      contentPolicyFallbacks,
      budget,
      retry,
      fallbackOn,
      attemptTimeoutMillis,
      deadlineMillis,
      onAttempt: options.onAttempt,
      traced,
      telemetry: telemetry.resolve(options.telemetry, traced),
      health: healthConfig
    })
    const tracedPlan = planConfig(true)
    const quietPlan = planConfig(false)
    const callAttributes = telemetry.callAttributes(models)
    // Secrets ride in headers the platform does not know to redact from spans (GPTRouter's `ws-secret`).
    const redactedNames = Headers.currentRedactedNames
    const withWsSecret = (names: ReadonlyArray<string | RegExp>) => [...names, "ws-secret"]

    const threw = (cause: unknown) => `the check threw: ${cause instanceof Error ? cause.message : String(cause)}`
    /** A non-streaming attempt, its answer through `options.accept` when there is one (a rejection is its failure). */
    const checked = (ctx: transport.Context, call: Call): Effect.Effect<ResponseData, RouterError.AttemptError> =>
      accept === undefined ? transport.generate(ctx, call) : Effect.flatMap(transport.generate(ctx, call), (data) => {
        const answer = construct.chatResponse({
          id: data.id,
          model: data.model,
          provider: data.provider,
          choices: data.choices,
          ...(data.usage === undefined ? {} : { usage: data.usage }),
          trail: []
        })
        const decide = (verdict: boolean | string): Effect.Effect<ResponseData, RouterError.AttemptError> => {
          if (verdict === true) return Effect.succeed(data)
          const reason = typeof verdict === "string" && verdict.length > 0 ? verdict : "the check returned false"
          return Effect.fail(errors.make("ResponseRejected", call, {
            reason: ctx.redact(reason),
            body: errors.excerpt(answer.text, ctx.redact)
          }))
        }
        let verdict: boolean | string | Effect.Effect<boolean | string>
        try {
          verdict = accept(answer)
        } catch (cause) {
          return decide(threw(cause))
        }
        return Effect.isEffect(verdict)
          ? Effect.flatMap(Effect.catchAllDefect(verdict, (cause) => Effect.succeed(threw(cause))), decide)
          : decide(verdict)
      })

    const generate = (request: ChatRequest.ChatRequest): Effect.Effect<ChatResponse, RouterError.RouterError> =>
      Effect.flatMap(Effect.tracer, (tracer) => {
        const validated = ChatRequest.validate(request)
        if (validated._tag === "Left") return Effect.fail(validated.left)
        const traced = tracer !== builtInTracer
        const context = traced ? tracedContext : quietContext
        const call = Effect.flatMap(
          hedge.routed(
            traced ? tracedPlan : quietPlan,
            validated.right,
            false,
            traced
              ? (call, model) =>
                Effect.tap(
                  checked(context(model), call),
                  (data) => telemetry.annotateResponse(tracedPlan.telemetry, data)
                )
              : (call, model) => checked(context(model), call),
            "attempt",
            usageOf
          ),
          (success) => {
            const data = success.value
            const state = traced ? tracedPlan.telemetry : quietPlan.telemetry
            // The body has been read: the attempt's scope has nothing left to release, close it.
            return Effect.as(
              state.metrics
                ? Effect.zipRight(Scope.close(success.scope, Exit.void), telemetry.answered(state, success.model, data))
                : Scope.close(success.scope, Exit.void),
              construct.chatResponse({
                id: data.id,
                model: data.model,
                provider: data.provider,
                ...(success.inGroup ? { deployment: Health.deploymentId(success.model) } : {}),
                choices: data.choices,
                ...(data.usage === undefined ? {} : { usage: data.usage }),
                ...(data.usage === undefined || success.model.price === undefined
                  ? {}
                  : { cost: costs.of(success.model.price, data.usage) }),
                trail: success.trail
              })
            )
          }
        )
        return traced
          ? Effect.locallyWith(
            Effect.withSpan(
              Effect.tapBoth(call, { onSuccess: telemetry.annotateCall, onFailure: telemetry.annotateCallError }),
              Telemetry.Names.generate,
              { attributes: callAttributes }
            ),
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
            Effect.flatMap(Effect.makeSpanScoped(Telemetry.Names.stream, { attributes: callAttributes }), (span) =>
              Effect.zipRight(
                Effect.locallyScopedWith(redactedNames, withWsSecret),
                Effect.withParentSpan(
                  Effect.tapError(openTraced(validated.right, scope), (error) =>
                    Effect.sync(() => span.attribute(Telemetry.Attributes.errorType, error._tag))),
                  span
                )
              )),
            scope
          )
        })
      )

    const health = Effect.flatMap(Clock.currentTimeMillis, (now) =>
      healthConfig === undefined
        ? Effect.succeed(deployments.map((model) => emptyHealth(model)))
        : Effect.map(healthConfig.store.snapshot(now), (known) => {
          const byId = new Map(known.map((d) => [d.id, d]))
          return deployments.map((model) => byId.get(Health.deploymentId(model)) ?? emptyHealth(model))
        }))

    return { models, generate, stream, health } satisfies Service
  })
