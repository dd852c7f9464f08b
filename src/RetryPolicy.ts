/**
 * Retry within one model: which failures are retried, how long to wait between attempts, and how much of a server's
 * `Retry-After` to honour. Waits come from an Effect `Schedule`, so the `TestClock` drives them in tests.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Predicate from "effect/Predicate"
import * as Schedule from "effect/Schedule"
import { type AttemptError, type AttemptErrorTag, attemptErrorTagList, failureModes } from "./RouterError.js"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("effect-llm-router/RetryPolicy")

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * @since 0.1.0
 * @category models
 */
export interface RetryPolicy {
  readonly [TypeId]: TypeId
  /**
   * Fed each retryable error; its delay is the wait before the next attempt, and when it is done the model's retries
   * are spent.
   */
  readonly schedule: Schedule.Schedule<unknown, AttemptError>
  /** The failure modes that are retried on the same model. */
  readonly retryOn: ReadonlySet<AttemptErrorTag>
  /**
   * The longest server-requested wait honoured. A longer `Retry-After` (or one that would pass the deadline) moves on
   * to the next model at once instead of sleeping.
   */
  readonly maxRetryAfter: Duration.Duration
}

/**
 * The failure modes retried by default: the transient ones (`RateLimited`, `ServerError`, `ServiceUnavailable`,
 * `Timeout`, `NetworkError`), read from each mode's `FailureMode`.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultRetryOn: ReadonlySet<AttemptErrorTag> = new Set(
  attemptErrorTagList.filter((tag) => failureModes[tag].retryable)
)

/**
 * Options of {@link exponential}. The defaults are LangChain GPTRouter's tenacity policy: 4 attempts, waits of
 * `1 s × 2^n` clamped to 4 s..10 s (so 4 s, 4 s, 4 s), plus ±20% jitter kept inside the clamp.
 *
 * @since 0.1.0
 * @category models
 */
export interface ExponentialOptions {
  /** Attempts per model, counting the first (default 4, as LangChain's `max_retries`). */
  readonly maxAttempts?: number | undefined
  /** The base of the exponential (default 1 second). */
  readonly initialDelay?: Duration.DurationInput | undefined
  /** Growth per retry (default 2). */
  readonly factor?: number | undefined
  /** The shortest wait (default 4 seconds). */
  readonly minDelay?: Duration.DurationInput | undefined
  /** The cap on each wait (default 10 seconds). */
  readonly maxDelay?: Duration.DurationInput | undefined
  /** Relative jitter: each wait is scaled by a random factor in [1 − j, 1 + j], then clamped (default 0.2; 0 = none). */
  readonly jitter?: number | undefined
  /** The longest `Retry-After` honoured (default 60 seconds). */
  readonly maxRetryAfter?: Duration.DurationInput | undefined
  /** Which failure modes are retried (default {@link defaultRetryOn}). */
  readonly retryOn?: Iterable<AttemptErrorTag> | undefined
}

const clamp = (min: Duration.Duration, max: Duration.Duration) => (_: unknown, d: Duration.Duration) =>
  Duration.min(Duration.max(d, min), max)

/**
 * Exponential backoff built on `Schedule.exponential`, with jitter and a cap on each wait.
 *
 * @example
 * ```ts
 * import { Model, OpenAiCompatible, RetryPolicy, Router } from "effect-llm-router"
 *
 * // Three attempts per model, waits of 500 ms then 1 s, no jitter; only rate limits and 503s are retried.
 * const patient = RetryPolicy.exponential({
 *   maxAttempts: 3,
 *   initialDelay: "500 millis",
 *   minDelay: 0,
 *   jitter: 0,
 *   retryOn: ["RateLimited", "ServiceUnavailable"]
 * })
 * const local = OpenAiCompatible.endpoint({ baseUrl: "http://127.0.0.1:11434/v1" })
 * export const router = Router.make({
 *   models: [Model.make({ name: "llama3.2", endpoint: local, retry: patient }), Model.make({ name: "qwen2.5", endpoint: local })]
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const exponential = (options: ExponentialOptions = {}): RetryPolicy => {
  const maxAttempts = options.maxAttempts ?? 4
  const min = Duration.decode(options.minDelay ?? Duration.seconds(4))
  const max = Duration.decode(options.maxDelay ?? Duration.seconds(10))
  const jitter = options.jitter ?? 0.2
  let schedule: Schedule.Schedule<unknown, unknown> = Schedule.exponential(
    options.initialDelay ?? Duration.seconds(1),
    options.factor ?? 2
  ).pipe(Schedule.modifyDelay(clamp(min, max)))
  if (jitter > 0) {
    schedule = schedule.pipe(
      Schedule.jitteredWith({ min: 1 - jitter, max: 1 + jitter }),
      Schedule.modifyDelay(clamp(min, max))
    )
  }
  return {
    [TypeId]: TypeId,
    schedule: Schedule.intersect(schedule, Schedule.recurs(Math.max(0, maxAttempts - 1))),
    retryOn: new Set(options.retryOn ?? defaultRetryOn),
    maxRetryAfter: Duration.decode(options.maxRetryAfter ?? Duration.seconds(60))
  }
}

/**
 * A policy from any `Schedule`: its delays are the waits and it decides when the model's retries are spent.
 *
 * @example
 * ```ts
 * import { Schedule } from "effect"
 * import { RetryPolicy } from "effect-llm-router"
 *
 * // A fixed 2 s wait, at most 5 retries (6 attempts), Retry-After honoured up to 30 s.
 * export const steady = RetryPolicy.fromSchedule(Schedule.intersect(Schedule.spaced("2 seconds"), Schedule.recurs(5)), {
 *   maxRetryAfter: "30 seconds"
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromSchedule = (
  schedule: Schedule.Schedule<unknown, AttemptError>,
  options: {
    readonly retryOn?: Iterable<AttemptErrorTag> | undefined
    readonly maxRetryAfter?: Duration.DurationInput | undefined
  } = {}
): RetryPolicy => ({
  [TypeId]: TypeId,
  schedule,
  retryOn: new Set(options.retryOn ?? defaultRetryOn),
  maxRetryAfter: Duration.decode(options.maxRetryAfter ?? Duration.seconds(60))
})

/**
 * One attempt per model, no retries (fallback still applies).
 *
 * @since 0.1.0
 * @category constructors
 */
export const none: RetryPolicy = fromSchedule(Schedule.stop)

/**
 * @since 0.1.0
 * @category guards
 */
export const isRetryPolicy = (u: unknown): u is RetryPolicy => Predicate.hasProperty(u, TypeId)

/**
 * Checks the options of {@link exponential}; returns the offending option and why, or `undefined`.
 *
 * @since 0.1.0
 * @category validation
 */
export const checkExponentialOptions = (
  options: ExponentialOptions
): { readonly option: string; readonly reason: string } | undefined => {
  const { factor, jitter, maxAttempts } = options
  if (maxAttempts !== undefined && (!Number.isInteger(maxAttempts) || maxAttempts < 1)) {
    return { option: "retry.maxAttempts", reason: `must be an integer ≥ 1 (got ${maxAttempts})` }
  }
  if (factor !== undefined && !(Number.isFinite(factor) && factor >= 1)) {
    return { option: "retry.factor", reason: `must be a number ≥ 1 (got ${factor})` }
  }
  if (jitter !== undefined && !(jitter >= 0 && jitter < 1)) {
    return { option: "retry.jitter", reason: `must be in [0, 1) (got ${jitter})` }
  }
  for (const key of ["initialDelay", "minDelay", "maxDelay", "maxRetryAfter"] as const) {
    const value = options[key]
    if (value === undefined) continue
    const decoded = Duration.decodeUnknown(value)
    if (decoded._tag === "None" || Duration.toMillis(decoded.value) < 0) {
      return { option: `retry.${key}`, reason: `must be a non-negative duration (got ${String(value)})` }
    }
  }
  const min = options.minDelay === undefined ? undefined : Duration.decodeUnknown(options.minDelay)
  const max = options.maxDelay === undefined ? undefined : Duration.decodeUnknown(options.maxDelay)
  if (min?._tag === "Some" && max?._tag === "Some" && Duration.greaterThan(min.value, max.value)) {
    return { option: "retry.minDelay", reason: "must not be greater than retry.maxDelay" }
  }
  return undefined
}
