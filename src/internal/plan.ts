/**
 * The routing plan: models in order × retries per model. Runs one attempt at a time, records the trail, applies the
 * retry policy, `Retry-After`, the per-attempt timeout and the total deadline, and decides when to fall back. The
 * attempt itself (non-streaming call, or opening a stream) is a parameter, so both share this machinery.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
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
import { formatMillis } from "../RouterError.js"

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
 * An attempt: succeeds with a value, or fails with the attempt's error. Runs in a scope that stays open on success
 * (a stream's body is read later) and is closed at once on failure.
 *
 * @internal
 */
export type AttemptFn<A> = (call: Call, model: Model) => Effect.Effect<A, RouterError.AttemptError, Scope.Scope>

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

/**
 * Runs the plan. On success the attempt's scope is returned open, owned by the caller.
 *
 * @internal
 */
export const run = <A>(
  config: PlanConfig,
  request: ChatRequest,
  stream: boolean,
  attemptFn: AttemptFn<A>,
  timeoutPhase: "attempt" | "first-token"
): Effect.Effect<Success<A> & { readonly scope: Scope.CloseableScope }, RouterError.RouterError> =>
  Effect.gen(function*() {
    const { models } = config
    const trail: Array<Attempt> = []
    const startedAt = yield* Clock.currentTimeMillis
    const deadlineAt = config.deadlineMillis === undefined ? Infinity : startedAt + config.deadlineMillis

    const record = (fields: ConstructorParameters<typeof Attempt>[0]) =>
      Effect.suspend(() => {
        const attempt = new Attempt(fields, { disableValidation: true })
        trail.push(attempt)
        if (config.onAttempt === undefined) return Effect.void
        // A callback's failure or defect must not change the routed call's outcome.
        return Effect.catchAllCause(
          Effect.suspend(() => {
            const result = config.onAttempt!(attempt)
            return Effect.isEffect(result) ? result : Effect.void
          }),
          (cause) => Effect.logDebug("onAttempt callback failed", cause)
        )
      })

    const deadlineExceeded = (model?: Model) =>
      new RouterError.DeadlineExceeded({
        deadlineMillis: config.deadlineMillis ?? 0,
        ...(model === undefined ? {} : { model: model.name, provider: model.provider }),
        trail: [...trail]
      }, { disableValidation: true })

    let lastError: RouterError.AttemptError | undefined

    for (let index = 0; index < models.length; index++) {
      const model = models[index]!
      const policy = model.retry ?? config.retry
      const maxRetryAfterMillis = Duration.toMillis(policy.maxRetryAfter)
      const callRequest = applyOverrides(request, model)
      const siblings = siblingsOf(models, index)
      const isLast = index === models.length - 1
      let state = policy.schedule.initial

      for (let attemptNo = 1;; attemptNo++) {
        const attemptStart = yield* Clock.currentTimeMillis
        const remaining = deadlineAt - attemptStart
        if (remaining <= 0) return yield* Effect.fail(deadlineExceeded())
        const call: Call = {
          model: model.name,
          provider: model.provider,
          attempt: attemptNo,
          request: callRequest,
          stream,
          siblings
        }
        const own = config.attemptTimeoutMillis ?? Infinity
        const limit = Math.min(own, remaining)
        const scope = yield* Scope.make()
        let attempt: Effect.Effect<A, RouterError.AttemptError | DeadlineCut> = Scope.extend(
          attemptFn(call, model),
          scope
        )
        const timedOut = () =>
          new RouterError.Timeout({
            provider: model.provider,
            model: model.name,
            attempt: attemptNo,
            phase: timeoutPhase,
            afterMillis: limit
          }, { disableValidation: true })
        if (Number.isFinite(limit)) {
          attempt = Effect.timeoutFail(attempt, {
            duration: Duration.millis(limit),
            onTimeout: () =>
              limit < own
                ? new DeadlineCut()
                : timedOut()
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
        const result = yield* Effect.either(Effect.onExit(attempt, (exit) =>
          // Success leaves the scope open for the caller (a stream's body); anything else closes it now, which
          // aborts the request.
          Exit.isSuccess(exit) ? Effect.void : Scope.close(scope, exit)))
        const attemptEnd = yield* Clock.currentTimeMillis
        const base = { index: trail.length + 1, attempt: attemptNo, model: model.name, provider: model.provider }

        if (Either.isRight(result)) {
          yield* record({ ...base, startedAt: attemptStart, endedAt: attemptEnd, outcome: "success" })
          return { value: result.right, model, trail, scope }
        }

        const failure = result.left
        if (failure._tag === "DeadlineCut") {
          const error = timedOut()
          yield* record({
            ...base,
            startedAt: attemptStart,
            endedAt: attemptEnd,
            outcome: "failed",
            error,
            note: "cut by the deadline"
          })
          return yield* Effect.fail(deadlineExceeded(model))
        }
        const error = failure
        lastError = error
        const canFallBack = !isLast && config.fallbackOn.has(error._tag)
        const attemptRecord = { ...base, startedAt: attemptStart, endedAt: attemptEnd, error }

        const giveUp = (note: string | undefined) =>
          canFallBack
            ? Effect.as(
              record({ ...attemptRecord, outcome: "fallback", ...(note === undefined ? {} : { note }) }),
              true
            )
            : Effect.zipRight(
              record({ ...attemptRecord, outcome: "failed", ...(note === undefined ? {} : { note }) }),
              // Suspended: the trail is copied after `record` has added this attempt.
              Effect.suspend(() => Effect.fail(finalError(error, [...trail])))
            )

        if (!policy.retryOn.has(error._tag)) {
          yield* giveUp(undefined)
          break
        }
        const [nextState, , decision] = yield* policy.schedule.step(attemptEnd, error, state)
        state = nextState
        if (ScheduleDecision.isDone(decision)) {
          yield* giveUp(attemptNo > 1 ? `retries spent after ${attemptNo} attempts` : undefined)
          break
        }
        let wait = Math.max(0, Math.round(Intervals.start(decision.intervals) - attemptEnd))
        let skip: string | undefined
        const retryAfter = error.retryAfterMillis
        if (retryAfter !== undefined) {
          if (retryAfter > maxRetryAfterMillis) {
            skip = `server asked to wait ${formatMillis(retryAfter)}, over the ${formatMillis(maxRetryAfterMillis)} cap`
          } else {
            // The server's wait wins over a shorter backoff; jitter never shortens it.
            wait = Math.max(wait, retryAfter)
          }
        }
        if (skip === undefined && attemptEnd + wait >= deadlineAt) {
          const note = `waiting ${formatMillis(wait)} would pass the deadline`
          if (!canFallBack) {
            // Nothing else to try within the deadline: the deadline ends the call (now, rather than after a sleep
            // that could not lead to an attempt), and this attempt's error is in the trail.
            yield* record({ ...attemptRecord, outcome: "failed", note })
            return yield* Effect.fail(deadlineExceeded())
          }
          skip = note
        }
        if (skip !== undefined) {
          yield* giveUp(skip)
          break
        }
        yield* record({ ...attemptRecord, outcome: "retry", waitMillis: wait })
        yield* Effect.logWarning(
          `Retrying ${model.provider}/${model.name} in ${formatMillis(wait)} after ${error._tag} (attempt ${attemptNo})`
        ).pipe(Effect.annotateLogs({
          model: model.name,
          provider: model.provider,
          attempt: attemptNo,
          error: error._tag,
          waitMillis: wait
        }))
        yield* Effect.sleep(Duration.millis(wait))
      }
    }
    // Every model gave up with a fallback-eligible error but the list ran out: only reachable with an empty list,
    // which the layer rejects; kept total for safety.
    return yield* Effect.fail(
      lastError === undefined
        ? new RouterError.NoModelAvailable({ reason: "no model was tried", trail: [...trail] })
        : RouterError.withTrail(lastError, [...trail])
    )
  })
