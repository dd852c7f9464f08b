/**
 * The groups' strategies (`Selection`), and what they remember across calls: per deployment, this router's requests in
 * flight and a moving average of its latency; per group, whose turn it is.
 *
 * @internal
 */
import type { Group, Model, Weighted } from "../Model.js"
import * as RouterError from "../RouterError.js"
import * as Selection from "../Selection.js"

/** @internal */
export interface Stats {
  inFlight: number
  /** Moving average of recent latencies (ms); undefined until one is measured. */
  latency: number | undefined
  /** Health last skipped it until this instant (epoch ms): not picked before then while the group has another. */
  unavailableUntil: number
}

/**
 * One router's memory of its groups.
 *
 * @internal
 */
export class State {
  private readonly stats = new WeakMap<Model, Stats>()
  private readonly turns = new WeakMap<Group, number>()

  statsOf(model: Model): Stats {
    let stats = this.stats.get(model)
    if (stats === undefined) {
      stats = { inFlight: 0, latency: undefined, unavailableUntil: 0 }
      this.stats.set(model, stats)
    }
    return stats
  }

  /**
   * The candidates worth picking at `now`: those health did not last skip until later, or all of them when every one
   * was (health decides then).
   */
  available(candidates: ReadonlyArray<Weighted>, now: number): ReadonlyArray<Weighted> {
    let out: Array<Weighted> | undefined
    for (let i = 0; i < candidates.length; i++) {
      if (this.statsOf(candidates[i]!.model).unavailableUntil > now) {
        out ??= candidates.slice(0, i)
      } else if (out !== undefined) {
        out.push(candidates[i]!)
      }
    }
    return out === undefined ? candidates : out.length > 0 ? out : candidates
  }

  /** A success took `millis` (a stream: to its first content). */
  observe(model: Model, millis: number): void {
    const stats = this.statsOf(model)
    stats.latency = stats.latency === undefined
      ? millis
      : Selection.latencySmoothing * millis + (1 - Selection.latencySmoothing) * stats.latency
  }

  /**
   * The deployment of the next attempt among `candidates` (non-empty, in the group's order), given two uniform random
   * numbers in [0, 1).
   */
  pick(group: Group, candidates: ReadonlyArray<Weighted>, r1: number, r2: number): Weighted {
    switch (group.strategy) {
      case "round-robin": {
        const n = group.deployments.length
        const turn = this.turns.get(group) ?? 0
        for (let k = 0; k < n; k++) {
          const i = (turn + k) % n
          const d = group.deployments[i]!
          if (candidates.includes(d)) {
            this.turns.set(group, i + 1)
            return d
          }
        }
        return candidates[0]!
      }
      case "least-in-flight": {
        let least = Infinity
        for (const d of candidates) least = Math.min(least, this.statsOf(d.model).inFlight)
        return weighted(candidates.filter((d) => this.statsOf(d.model).inFlight === least), r1)
      }
      case "lowest-latency": {
        if (r2 < Selection.exploration) return weighted(candidates, r1)
        const unmeasured = candidates.filter((d) => this.statsOf(d.model).latency === undefined)
        if (unmeasured.length > 0) return weighted(unmeasured, r1)
        let best = candidates[0]!
        for (const d of candidates) {
          if (this.statsOf(d.model).latency! < this.statsOf(best.model).latency!) best = d
        }
        return best
      }
      case "weighted":
      default:
        return weighted(candidates, r1)
    }
  }
}

/**
 * In proportion to the weights; uniformly when every weight is zero (standbys, once the others are unavailable).
 *
 * @internal
 */
export const weighted = (candidates: ReadonlyArray<Weighted>, r: number): Weighted => {
  let total = 0
  for (const d of candidates) total += d.weight
  if (!(total > 0)) return candidates[Math.min(candidates.length - 1, Math.floor(r * candidates.length))]!
  let point = r * total
  for (const d of candidates) {
    point -= d.weight
    if (point < 0 && d.weight > 0) return d
  }
  // Rounding left the point at the very end: the last with a weight.
  for (let i = candidates.length - 1; i >= 0; i--) if (candidates[i]!.weight > 0) return candidates[i]!
  return candidates[0]!
}

/**
 * Checks a group (not its deployments' own fields): a bad one is a `RouterConfigError` naming the option.
 *
 * @internal
 */
export const check = (group: Group, option: string): RouterError.RouterConfigError | undefined => {
  const fail = (path: string, reason: string) => new RouterError.RouterConfigError({ option: path, reason })
  if (!Array.isArray(group.deployments) || group.deployments.length === 0) {
    return fail(`${option}.deployments`, "a group needs at least one deployment")
  }
  let total = 0
  for (let j = 0; j < group.deployments.length; j++) {
    const w = group.deployments[j]!.weight
    if (typeof w !== "number" || !Number.isFinite(w) || w < 0) {
      return fail(`${option}.deployments[${j}].weight`, `must be a finite number ≥ 0 (got ${String(w)})`)
    }
    total += w
  }
  if (total <= 0) return fail(`${option}.deployments`, "the weights are all zero: at least one must be positive")
  if (!Selection.strategies.includes(group.strategy)) {
    return fail(
      `${option}.strategy`,
      `must be one of ${Selection.strategies.join(", ")} (got ${JSON.stringify(group.strategy)})`
    )
  }
  return undefined
}
