/**
 * Hedged requests: the requests of one call, started one delay apart, raced; the first success wins and the others
 * are interrupted. The budget that backs the delay off when hedges stop paying.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import type { ChatRequest } from "../ChatRequest.js"
import type { Usage } from "../ChatResponse.js"
import * as RouterError from "../RouterError.js"
import * as Selection from "../Selection.js"
import * as plan from "./plan.js"

const samples = 128
const minSamples = 16

/**
 * A router's hedging: its delay rule, the recent latencies of its first entry, and the budget's factor.
 *
 * @internal
 */
export class State {
  private readonly latencies = new Float64Array(samples)
  private count = 0
  factor = 1

  constructor(
    readonly fixedMillis: number | undefined,
    readonly percentile: number,
    readonly initialMillis: number,
    readonly maxInFlight: number
  ) {}

  observe(millis: number): void {
    this.latencies[this.count % samples] = millis
    this.count++
  }

  /** The delay before the first hedge of a call starting now. */
  delayMillis(): number {
    let base = this.fixedMillis
    if (base === undefined) {
      const n = Math.min(this.count, samples)
      if (n < minSamples) {
        base = this.initialMillis
      } else {
        const sorted = Array.from(this.latencies.subarray(0, n)).sort((a, b) => a - b)
        base = Math.max(1, sorted[Math.min(n - 1, Math.ceil((this.percentile / 100) * n) - 1)]!)
      }
    }
    return Math.ceil(base * this.factor)
  }

  /**
   * A call ended: its hedge won, lost (a hedge's request was sent and the first request won anyway), or none was sent.
   * A call that sent none because the backed-off delay held it back (it took longer than the delay without backoff)
   * counts as a chance missed and halves the factor too: a budget backed off by a bad moment recovers even though its
   * long delay starts no hedge (it would otherwise stay at its cap for good).
   */
  settle(outcome: "won" | "lost" | "none", elapsedMillis: number, baseMillis: number): void {
    if (outcome === "lost") {
      this.factor = Math.min(Selection.maxHedgeBackoff, this.factor * 2)
    } else if (outcome === "won" || (this.factor > 1 && elapsedMillis > baseMillis)) {
      this.factor = Math.max(1, this.factor / 2)
    }
  }
}

/**
 * Checks the `hedge` option; a bad one is a `RouterConfigError` naming it.
 *
 * @internal
 */
export const resolve = (
  options: Selection.HedgeOptions | undefined
): State | undefined | RouterError.RouterConfigError => {
  if (options === undefined) return undefined
  const fail = (option: string, reason: string) => new RouterError.RouterConfigError({ option, reason })
  const positive = (value: Duration.DurationInput, option: string): number | RouterError.RouterConfigError => {
    const decoded = Duration.decodeUnknown(value)
    const ms = Option.isSome(decoded) ? Duration.toMillis(decoded.value) : NaN
    return ms > 0 && Number.isFinite(ms)
      ? ms
      : fail(option, `must be a positive finite duration (got ${String(value)})`)
  }
  const maxInFlight = options.maxInFlight ?? 2
  if (!Number.isInteger(maxInFlight) || maxInFlight < 2 || maxInFlight > 8) {
    return fail("hedge.maxInFlight", `must be a whole number from 2 to 8 (got ${String(maxInFlight)})`)
  }
  const delay = options.delay
  if (typeof delay === "object" && delay !== null && "percentile" in delay) {
    if (!(typeof delay.percentile === "number" && delay.percentile >= 1 && delay.percentile <= 99.9)) {
      return fail("hedge.delay.percentile", `must be a number from 1 to 99.9 (got ${String(delay.percentile)})`)
    }
    const initial = positive(delay.initial, "hedge.delay.initial")
    if (typeof initial !== "number") return initial
    return new State(undefined, delay.percentile, initial, maxInFlight)
  }
  const fixed = positive(delay as Duration.DurationInput, "hedge.delay")
  if (typeof fixed !== "number") return fixed
  return new State(fixed, 0, fixed, maxInFlight)
}

/** A hedge that was not started (the others had all failed first). */
class NotStarted {
  readonly _tag = "NotStarted"
}

/**
 * Runs one call as hedged requests: `run(i, shared)` is request `i`'s plan. The first starts now, each further one a
 * delay later unless every request started so far has failed; the first success wins and the others are interrupted
 * (their attempts record `cancelled`); when all fail, the call fails with the last failure.
 *
 * @internal
 */
export const run = <A>(
  state: State,
  startedAt: number,
  one: (request: number, shared: plan.HedgeShared) => Effect.Effect<
    plan.Success<A> & { readonly scope: Scope.CloseableScope },
    RouterError.RouterError
  >
): Effect.Effect<plan.Success<A> & { readonly scope: Scope.CloseableScope }, RouterError.RouterError> =>
  Effect.suspend(() => {
    const shared: plan.HedgeShared = { trail: [], tried: new Set(), startedAt, won: undefined, hedgesSent: 0 }
    const failures: Array<RouterError.RouterError> = []
    let started = 0
    const allFailed = Deferred.unsafeMake<void>(FiberId.none)
    const delay = state.delayMillis()
    const base = delay / state.factor
    const request = (i: number) =>
      Effect.suspend(() => {
        started++
        return Effect.uninterruptibleMask((restore) =>
          Effect.matchEffect(restore(one(i, shared)), {
            onSuccess: (success) => {
              if (shared.won !== undefined) {
                // Another request won first: this one's answer is dropped, and what it holds released.
                return Effect.zipRight(Scope.close(success.scope, Exit.void), Effect.fail(new NotStarted()))
              }
              shared.won = i
              return Effect.succeed(success)
            },
            onFailure: (error) => {
              failures.push(error)
              if (failures.length === started) Deferred.unsafeDone(allFailed, Exit.void)
              return Effect.fail(error)
            }
          })
        )
      })
    const requests: Array<Effect.Effect<plan.Success<A> & { readonly scope: Scope.CloseableScope }, unknown>> = [
      request(0)
    ]
    for (let i = 1; i < state.maxInFlight; i++) {
      requests.push(
        Effect.flatMap(
          Effect.raceFirst(
            Effect.as(Effect.sleep(Duration.millis(delay * i)), true),
            Effect.as(Deferred.await(allFailed), false)
          ),
          (go) => (go && shared.won === undefined ? request(i) : Effect.fail(new NotStarted()))
        )
      )
    }
    // Only a hedge whose request went out costs anything: one cancelled before it was sent is neither a win nor a loss.
    const outcome = () => shared.won !== undefined && shared.won > 0 ? "won" : shared.hedgesSent > 0 ? "lost" : "none"
    const settle = Effect.clockWith((clock) =>
      Effect.sync(() => state.settle(outcome(), clock.unsafeCurrentTimeMillis() - startedAt, base))
    )
    return Effect.raceAll(requests).pipe(
      Effect.tap(() => settle),
      Effect.catchAllCause((cause) => {
        const last = failures[failures.length - 1]
        return last !== undefined && !Cause.isInterruptedOnly(cause)
          ? Effect.zipRight(settle, Effect.fail(last))
          : Effect.failCause(cause as Cause.Cause<RouterError.RouterError>)
      })
    )
  })

/**
 * The plan of one call: hedged when the router hedges, else the plan alone.
 *
 * @internal
 */
export const routed = <A>(
  config: plan.PlanConfig,
  request: ChatRequest,
  stream: boolean,
  attemptFn: plan.AttemptFn<A>,
  timeoutPhase: "attempt" | "first-token",
  usageOf?: (value: A) => Usage | undefined
): Effect.Effect<plan.Success<A> & { readonly scope: Scope.CloseableScope }, RouterError.RouterError> => {
  const state = config.hedge
  if (state === undefined) return plan.run(config, request, stream, attemptFn, timeoutPhase, usageOf)
  return Effect.clockWith((clock) =>
    run(
      state,
      clock.unsafeCurrentTimeMillis(),
      (i, shared) => plan.run(config, request, stream, attemptFn, timeoutPhase, usageOf, { shared, request: i })
    )
  )
}
