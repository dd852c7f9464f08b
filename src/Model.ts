/**
 * The entries of the priority list. A {@link Model} is one deployment: a model name on an endpoint, with optional
 * request overrides, retry policy and limits. A {@link Group} is several deployments of one model (keys, regions,
 * providers) that share an entry: each attempt goes to one of them, chosen by the group's strategy (`Selection`).
 *
 * @since 0.1.0
 */
import * as Predicate from "effect/Predicate"
import type { Overrides } from "./ChatRequest.js"
import type { Limits } from "./Health.js"
import type { Endpoint } from "./Provider.js"
import type { RetryPolicy } from "./RetryPolicy.js"
import type { Strategy } from "./Selection.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Model {
  /** The model name sent to the provider. */
  readonly name: string
  /** The provider label (defaults to the endpoint's). GPTRouter sends it as `providerName`. */
  readonly provider: string
  readonly endpoint: Endpoint
  /** Request fields replaced for this model, e.g. a larger `max_tokens` on a larger model. */
  readonly overrides: Overrides
  /** A retry policy for this model instead of the router's. */
  readonly retry?: RetryPolicy | undefined
  /**
   * What the deployment accepts: concurrent requests, requests and tokens per minute (see `Health.Limits`). Entries of
   * the list on the same deployment (same name, endpoint and key) share its counts: give them the same limits.
   */
  readonly limits?: Limits | undefined
  /**
   * The model's context window in tokens (prompt and completion). A request whose estimate (its text at four
   * characters a token, plus its `max_tokens`) exceeds it skips this model; after a `ContextLengthExceeded` from a model
   * with a declared window, models whose window is not larger are skipped.
   */
  readonly contextWindow?: number | undefined
  /**
   * What the model costs, per million tokens, in the currency of your choice (no built-in prices: they go stale). Gives
   * a cost on the response and its trail, and counts against the router's `budget`.
   */
  readonly price?: Price | undefined
}

/**
 * A model's price per million tokens.
 *
 * @since 0.3.0
 * @category models
 */
export interface Price {
  readonly input: number
  readonly output: number
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: {
  readonly name: string
  readonly endpoint: Endpoint
  readonly provider?: string | undefined
  readonly overrides?: Overrides | undefined
  readonly retry?: RetryPolicy | undefined
  readonly limits?: Limits | undefined
  readonly contextWindow?: number | undefined
  readonly price?: Price | undefined
}): Model => ({
  name: options.name,
  provider: options.provider ?? options.endpoint.provider,
  endpoint: options.endpoint,
  overrides: options.overrides ?? {},
  retry: options.retry,
  limits: options.limits ?? {},
  ...(options.contextWindow === undefined ? {} : { contextWindow: options.contextWindow }),
  ...(options.price === undefined ? {} : { price: options.price })
})

/**
 * @since 0.3.0
 * @category type ids
 */
export const GroupTypeId: unique symbol = Symbol.for("effect-llm-router/Group")

/**
 * @since 0.3.0
 * @category type ids
 */
export type GroupTypeId = typeof GroupTypeId

/**
 * One deployment of a group, with its share of the traffic under the `weighted` strategy.
 *
 * @since 0.3.0
 * @category models
 */
export interface Weighted {
  readonly model: Model
  /** Its share under `weighted` (and the tie-breaker of the other strategies) [1]. */
  readonly weight: number
}

/**
 * Several deployments of one model in one entry of the priority list. Each attempt goes to one deployment, chosen by
 * `strategy` among those whose breaker is closed and which have room under their limits. After a retryable failure
 * the next attempt goes at once to another deployment of the group that has not failed in this call; the backoff
 * applies only when none is left. When the group's retries are spent (its `retry`, or the router's) the next entry of
 * the list is tried.
 *
 * @since 0.3.0
 * @category models
 */
export interface Group {
  readonly [GroupTypeId]: GroupTypeId
  /** A label for logs and the trail [the first deployment's model name]. */
  readonly name: string
  readonly deployments: ReadonlyArray<Weighted>
  readonly strategy: Strategy
  /** The group's retry budget and backoff, instead of the router's. */
  readonly retry?: RetryPolicy | undefined
}

/**
 * An entry of the priority list.
 *
 * @since 0.3.0
 * @category models
 */
export type Entry = Model | Group

/**
 * @since 0.3.0
 * @category guards
 */
export const isGroup = (u: unknown): u is Group => Predicate.hasProperty(u, GroupTypeId)

/**
 * A group of deployments of one model.
 *
 * @example
 * ```ts
 * import { Redacted } from "effect"
 * import { Model, OpenAiCompatible } from "effect-llm-router"
 *
 * const east = OpenAiCompatible.endpoint({ baseUrl: "https://east.example/v1", apiKey: Redacted.make("key-east") })
 * const west = OpenAiCompatible.endpoint({ baseUrl: "https://west.example/v1", apiKey: Redacted.make("key-west") })
 * const openai = OpenAiCompatible.endpoint({ baseUrl: "https://api.openai.com/v1", apiKey: Redacted.make("sk-...") })
 *
 * export const models = [
 *   Model.group({
 *     name: "gpt-4o",
 *     strategy: "lowest-latency",
 *     deployments: [
 *       { model: Model.make({ name: "gpt-4o", endpoint: east, limits: { requestsPerMinute: 600 } }), weight: 2 },
 *       Model.make({ name: "gpt-4o", endpoint: west })
 *     ]
 *   }),
 *   Model.make({ name: "gpt-4o-mini", endpoint: openai })
 * ]
 * ```
 *
 * @since 0.3.0
 * @category constructors
 */
export const group = (options: {
  readonly deployments: ReadonlyArray<Model | { readonly model: Model; readonly weight?: number | undefined }>
  readonly name?: string | undefined
  /** [`"weighted"`] */
  readonly strategy?: Strategy | undefined
  readonly retry?: RetryPolicy | undefined
}): Group => {
  const deployments = (Array.isArray(options.deployments) ? options.deployments : []).map((d): Weighted =>
    typeof d === "object" && d !== null && "model" in d && typeof d.model === "object"
      ? { model: d.model, weight: d.weight ?? 1 }
      : { model: d as Model, weight: 1 }
  )
  return {
    [GroupTypeId]: GroupTypeId,
    name: options.name ?? deployments[0]?.model.name ?? "",
    deployments,
    strategy: options.strategy ?? "weighted",
    ...(options.retry === undefined ? {} : { retry: options.retry })
  }
}

/**
 * The deployments of an entry: the model itself, or the group's.
 *
 * @since 0.3.0
 * @category getters
 */
export const deploymentsOf = (entry: Entry): ReadonlyArray<Model> =>
  isGroup(entry) ? entry.deployments.map((d) => d.model) : [entry]
