/**
 * The routing plan: models in order × retries per model. Runs one attempt at a time, records the trail, applies the
 * retry policy, `Retry-After`, the per-attempt timeout and the total deadline, and decides when to fall back. The
 * attempt itself (non-streaming call, or opening a stream) is a parameter, so both share this machinery.
 *
 * @internal
 */
// Why this steps the policy's Schedule itself instead of handing it to `Effect.retry` or `ExecutionPlan`: not speed
// (bench/micro/plan.mjs, medians of 11 rounds, 2026-11-30: a call whose first attempt succeeds spends 8.7 µs here,
// 13.2 µs in Effect.retry with the same Schedule and 21.1 µs in ExecutionPlan, about 1% of a 460 µs call; a call retried
// once spends 55 µs here and 49 µs in Effect.retry). It is the decisions taken between the Schedule's answer and the
// sleep, which `Effect.retry` does not expose: a `Retry-After` longer than the backoff replaces it, one over the cap or
// one that would pass the deadline falls back at once instead of sleeping, and the trail records each attempt's outcome
// and wait before the wait starts.
import type * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as ScheduleDecision from "effect/ScheduleDecision"
import * as Intervals from "effect/ScheduleIntervals"
import * as Scope from "effect/Scope"
import { Attempt } from "../Attempt.js"
import type { ChatRequest } from "../ChatRequest.js"
import type { Model } from "../Model.js"
import type { Call } from "../Provider.js"
import type { RetryPolicy } from "../RetryPolicy.js"
import * as RouterError from "../RouterError.js"
import { formatMillis } from "./format.js"

/** @internal */
export interface PlanConfig {
  readonly models: ReadonlyArray<Model>
  readonly retry: RetryPolicy
  readonly fallbackOn: ReadonlySet<RouterError.AttemptErrorTag>
  readonly attemptTimeoutMillis: number | undefined
  readonly deadlineMillis: number | undefined
  readonly onAttempt: ((attempt: Attempt) => void | Effect.Effect<void>) | undefined
  /** Whether spans are worth creating (a tracer other than the built-in no-export one is installed). */
  readonly traced: boolean
}

/** @internal */
export interface Success<A> {
  readonly value: A
  readonly model: Model
  readonly trail: ReadonlyArray<Attempt>
}

/**
 * An attempt: succeeds with a value, or fails with the attempt's error. What it opens it releases in `scope`, which
 * stays open on success (a stream's body is read later) and is closed at once on failure.
 *
 * @internal
 */
export type AttemptFn<A> = (
  call: Call,
  model: Model,
  scope: Scope.Scope
) => Effect.Effect<A, RouterError.AttemptError>

const applyOverrides = (request: ChatRequest, model: Model): ChatRequest =>
  Object.keys(model.overrides).length === 0 ? request : { ...request, ...model.overrides }

const siblingsOf = (models: ReadonlyArray<Model>, index: number) => {
  const current = models[index]!
  const out: Array<{ readonly model: string; readonly provider: string }> = []
  for (let i = index + 1; i < models.length; i++) {
    const m = models[i]!
    if (m.endpoint === current.endpoint) out.push({ model: m.name, provider: m.provider })
  }
  return out
}

// An upstream router (GPTRouter) answering that none of the models it was sent is healthy.
const noModelsPattern = /no models? (is |are )?available/i

/**
 * The error that ends a call. When the last model tried sits behind an upstream router that reported no healthy
 * model, nothing in the list can serve: that is `NoModelAvailable`, not one model's outage.
 */
const finalError = (
  error: RouterError.AttemptError,
  trail: ReadonlyArray<Attempt>
): RouterError.RouterError =>
  error._tag === "ServiceUnavailable" && error.body !== undefined && noModelsPattern.test(error.body)
    ? new RouterError.NoModelAvailable({
      reason: `${error.provider}/${error.model} (HTTP ${error.status ?? "?"}): ${error.body}`,
      trail
    }, { disableValidation: true })
    : RouterError.withTrail(error, trail)

/** A cut by the deadline, told apart from the attempt's own timeout. */
class DeadlineCut {
  readonly _tag = "DeadlineCut"
}

interface Ctx<A> {
  readonly config: PlanConfig
  readonly request: ChatRequest
  readonly stream: boolean
  readonly attemptFn: AttemptFn<A>
  readonly timeoutPhase: "attempt" | "first-token"
  readonly clock: Clock.Clock
  readonly deadlineAt: number
  readonly trail: Array<Attempt>
}

type Outcome<A> = Effect.Effect<Success<A> & { readonly scope: Scope.CloseableScope }, RouterError.RouterError>

const record = <A>(ctx: Ctx<A>, fields: ConstructorParameters<typeof Attempt>[0]): Effect.Effect<void> => {
  const attempt = new Attempt(fields, { disableValidation: true })
  ctx.trail.push(attempt)
  const onAttempt = ctx.config.onAttempt
  if (onAttempt === undefined) return Effect.void
  // A callback's failure or defect must not change the routed call's outcome.
  return Effect.catchAllCause(
    Effect.suspend(() => {
      const result = onAttempt(attempt)
      return Effect.isEffect(result) ? result : Effect.void
    }),
    (cause) => Effect.logDebug("onAttempt callback failed", cause)
  )
}

const deadlineExceeded = <A>(ctx: Ctx<A>, model?: Model) =>
  new RouterError.DeadlineExceeded({
    deadlineMillis: ctx.config.deadlineMillis ?? 0,
    ...(model === undefined ? {} : { model: model.name, provider: model.provider }),
    trail: [...ctx.trail]
  }, { disableValidation: true })

/**
 * Runs the plan. On success the attempt's scope is returned open, owned by the caller.
 *
 * Written as a chain of continuations rather than a generator: a routed call that succeeds at once runs a handful of
 * effects, and this is on the path of every call. The clock is read once from context and then synchronously.
 *
 * @internal
 */
export const run = <A>(
  config: PlanConfig,
  request: ChatRequest,
  stream: boolean,
  attemptFn: AttemptFn<A>,
  timeoutPhase: "attempt" | "first-token"
): Outcome<A> =>
  Effect.clockWith((clock) => {
    const startedAt = clock.unsafeCurrentTimeMillis()
    const ctx: Ctx<A> = {
      config,
      request,
      stream,
      attemptFn,
      timeoutPhase,
      clock,
      deadlineAt: config.deadlineMillis === undefined ? Infinity : startedAt + config.deadlineMillis,
      trail: []
    }
    return tryModel(ctx, 0)
  })

// Only called with an index in the list: the layer rejects an empty list, and a model falls back only when it is not
// the last (`PerModel.isLast`).
const tryModel = <A>(ctx: Ctx<A>, index: number): Outcome<A> => {
  const { models } = ctx.config
  const model = models[index]!
  const policy = model.retry ?? ctx.config.retry
  const perModel: PerModel = {
    index,
    model,
    policy,
    maxRetryAfterMillis: Duration.toMillis(policy.maxRetryAfter),
    request: applyOverrides(ctx.request, model),
    siblings: siblingsOf(models, index),
    isLast: index === models.length - 1
  }
  return tryAttempt(ctx, perModel, 1, policy.schedule.initial)
}

interface PerModel {
  readonly index: number
  readonly model: Model
  readonly policy: RetryPolicy
  readonly maxRetryAfterMillis: number
  readonly request: ChatRequest
  readonly siblings: ReadonlyArray<{ readonly model: string; readonly provider: string }>
  readonly isLast: boolean
}

const tryAttempt = <A>(ctx: Ctx<A>, m: PerModel, attemptNo: number, scheduleState: unknown): Outcome<A> => {
  const { config, trail } = ctx
  const model = m.model
  const attemptStart = ctx.clock.unsafeCurrentTimeMillis()
  const remaining = ctx.deadlineAt - attemptStart
  if (remaining <= 0) return Effect.fail(deadlineExceeded(ctx))
  const call: Call = {
    model: model.name,
    provider: model.provider,
    attempt: attemptNo,
    request: m.request,
    stream: ctx.stream,
    siblings: m.siblings
  }
  const own = config.attemptTimeoutMillis ?? Infinity
  const limit = Math.min(own, remaining)
  const timedOut = () =>
    new RouterError.Timeout({
      provider: model.provider,
      model: model.name,
      attempt: attemptNo,
      phase: ctx.timeoutPhase,
      afterMillis: limit
    }, { disableValidation: true })

  return Effect.flatMap(Scope.make(), (scope) => {
    let attempt: Effect.Effect<A, RouterError.AttemptError | DeadlineCut> = ctx.attemptFn(call, model, scope)
    if (Number.isFinite(limit)) {
      attempt = Effect.timeoutFail(attempt, {
        duration: Duration.millis(limit),
        onTimeout: () => limit < own ? new DeadlineCut() : timedOut()
      })
    }
    if (config.traced) {
      attempt = Effect.withSpan(
        Effect.tapBoth(attempt, {
          onFailure: (e) =>
            Effect.annotateCurrentSpan("llm.outcome", e._tag === "DeadlineCut" ? "DeadlineExceeded" : e._tag),
          onSuccess: () => Effect.annotateCurrentSpan("llm.outcome", "success")
        }),
        "effect-llm-router.attempt",
        {
          attributes: {
            "llm.model": model.name,
            "llm.provider": model.provider,
            "llm.attempt": attemptNo,
            "llm.attempt.index": trail.length + 1
          }
        }
      )
    }
    const base = () => ({
      index: trail.length + 1,
      attempt: attemptNo,
      model: model.name,
      provider: model.provider,
      startedAt: attemptStart,
      endedAt: ctx.clock.unsafeCurrentTimeMillis()
    })
    return Effect.matchEffect(
      // Success leaves the scope open for the caller (a stream's body); anything else closes it now, which aborts
      // the request.
      Effect.onExit(attempt, (exit) => Exit.isSuccess(exit) ? Effect.void : Scope.close(scope, exit)),
      {
        onSuccess: (value) => Effect.as(record(ctx, { ...base(), outcome: "success" }), { value, model, trail, scope }),
        onFailure: (failure) => {
          const fields = base()
          if (failure._tag === "DeadlineCut") {
            return Effect.zipRight(
              record(ctx, { ...fields, outcome: "failed", error: timedOut(), note: "cut by the deadline" }),
              Effect.suspend(() => Effect.fail(deadlineExceeded(ctx, model)))
            )
          }
          return afterFailure(ctx, m, attemptNo, scheduleState, failure, fields)
        }
      }
    )
  })
}

const afterFailure = <A>(
  ctx: Ctx<A>,
  m: PerModel,
  attemptNo: number,
  scheduleState: unknown,
  error: RouterError.AttemptError,
  fields: Omit<ConstructorParameters<typeof Attempt>[0], "outcome">
): Outcome<A> => {
  const { model, policy } = m
  const attemptEnd = fields.endedAt
  const canFallBack = !m.isLast && ctx.config.fallbackOn.has(error._tag)
  const attemptRecord = { ...fields, error }

  const giveUp = (note: string | undefined): Outcome<A> =>
    canFallBack
      ? Effect.zipRight(
        record(ctx, { ...attemptRecord, outcome: "fallback", ...(note === undefined ? {} : { note }) }),
        Effect.suspend(() => tryModel(ctx, m.index + 1))
      )
      : Effect.zipRight(
        record(ctx, { ...attemptRecord, outcome: "failed", ...(note === undefined ? {} : { note }) }),
        // Suspended: the trail is copied after `record` has added this attempt.
        Effect.suspend(() => Effect.fail(finalError(error, [...ctx.trail])))
      )

  if (!policy.retryOn.has(error._tag)) return giveUp(undefined)
  return Effect.flatMap(policy.schedule.step(attemptEnd, error, scheduleState as never), ([nextState, , decision]) => {
    if (ScheduleDecision.isDone(decision)) {
      return giveUp(attemptNo > 1 ? `retries spent after ${attemptNo} attempts` : undefined)
    }
    let wait = Math.max(0, Math.round(Intervals.start(decision.intervals) - attemptEnd))
    let skip: string | undefined
    const retryAfter = error.retryAfterMillis
    if (retryAfter !== undefined) {
      if (retryAfter > m.maxRetryAfterMillis) {
        skip = `server asked to wait ${formatMillis(retryAfter)}, over the ${formatMillis(m.maxRetryAfterMillis)} cap`
      } else {
        // The server's wait wins over a shorter backoff; jitter never shortens it.
        wait = Math.max(wait, retryAfter)
      }
    }
    if (skip === undefined && attemptEnd + wait >= ctx.deadlineAt) {
      const note = `waiting ${formatMillis(wait)} would pass the deadline`
      if (!canFallBack) {
        // Nothing else to try within the deadline: the deadline ends the call (now, rather than after a sleep that
        // could not lead to an attempt), and this attempt's error is in the trail.
        return Effect.zipRight(
          record(ctx, { ...attemptRecord, outcome: "failed", note }),
          Effect.suspend(() => Effect.fail(deadlineExceeded(ctx)))
        )
      }
      skip = note
    }
    if (skip !== undefined) return giveUp(skip)
    return record(ctx, { ...attemptRecord, outcome: "retry", waitMillis: wait }).pipe(
      Effect.zipRight(
        Effect.logWarning(
          `Retrying ${model.provider}/${model.name} in ${formatMillis(wait)} after ${error._tag} (attempt ${attemptNo})`
        ).pipe(Effect.annotateLogs({
          model: model.name,
          provider: model.provider,
          attempt: attemptNo,
          error: error._tag,
          waitMillis: wait
        }))
      ),
      Effect.zipRight(Effect.sleep(Duration.millis(wait))),
      Effect.zipRight(Effect.suspend(() => tryAttempt(ctx, m, attemptNo + 1, nextState)))
    )
  })
}
