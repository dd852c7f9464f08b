/**
 * How a group (`Model.group`) picks the deployment of each attempt. Whatever the strategy, a deployment whose breaker
 * is open, which is probing, or which is at one of its limits is not sent to while the group has another: it is
 * skipped (the trail says why) and the pick is made again among the rest.
 *
 * - `weighted` (the default): at random, in proportion to the deployments' weights.
 * - `round-robin`: each in turn, across calls.
 * - `least-in-flight`: the one with the fewest requests of this router in flight (a stream counts until it ends);
 *   ties by weight, at random.
 * - `lowest-latency`: the one with the lowest moving average of recent latencies (a stream's time to first content);
 *   a deployment never measured is tried first, and one pick in twenty (`exploration`) is weighted at random so that a
 *   deployment that was slow, or has recovered, gets measured again.
 *
 * Random picks use Effect's `Random` service: `Effect.withRandom(Random.make(seed))` makes them repeatable in tests.
 *
 * @since 0.3.0
 */
import type * as Duration from "effect/Duration"

/**
 * @since 0.3.0
 * @category models
 */
export type Strategy = "weighted" | "round-robin" | "least-in-flight" | "lowest-latency"

/**
 * Every strategy, in the order of the docs.
 *
 * @since 0.3.0
 * @category constants
 */
export const strategies: ReadonlyArray<Strategy> = ["weighted", "round-robin", "least-in-flight", "lowest-latency"]

/**
 * `lowest-latency`: the weight of the newest latency in the moving average.
 *
 * @since 0.3.0
 * @category constants
 */
export const latencySmoothing = 0.3

/**
 * `lowest-latency`: the share of picks made at random by weight instead (so every deployment keeps being measured).
 *
 * @since 0.3.0
 * @category constants
 */
export const exploration = 0.05

/**
 * Hedged requests (off unless a router's `hedge` option is given): when the call's request has not succeeded after
 * `delay`, the same request also goes to another deployment (the group's next, or else the next entry of the list);
 * the first to succeed wins and the others are interrupted at once, their sockets closed. A stream is hedged only until
 * its first content: the first to deliver content wins, so nothing is ever spliced or duplicated.
 *
 * - `delay`: a duration, or `{ percentile, initial }`: that percentile (1–99.9) of the recent latencies of the list's
 *   first entry (the last 128 successes; a stream's time to first content), `initial` until 16 are known.
 * - `maxInFlight`: requests in flight per call, the first included [2]; each further hedge starts one `delay` later.
 *
 * Hedges count against the deployments' limits and health like any request. A hedging budget keeps them worth it:
 * each call whose hedge was sent and lost (the first request won anyway) doubles the delay, up to 16×; each whose hedge
 * won halves it, down to 1×, and so does each call that sent none only because of the backoff (it took longer than
 * the delay without it). A hedge cancelled before its request went out counts for nothing.
 *
 * @since 0.3.0
 * @category models
 */
export interface HedgeOptions {
  readonly delay:
    | Duration.DurationInput
    | { readonly percentile: number; readonly initial: Duration.DurationInput }
  readonly maxInFlight?: number | undefined
}

/**
 * The hedging budget's bound on the delay's growth.
 *
 * @since 0.3.0
 * @category constants
 */
export const maxHedgeBackoff = 16
