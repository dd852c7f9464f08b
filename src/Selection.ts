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
