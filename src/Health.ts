/**
 * Deployment health across calls. A **deployment** is one model name on one endpoint (one base URL, one key). Each has
 * a circuit breaker: closed → open (cooling down) → half-open (one call probes) → closed. While a deployment is open
 * the router skips it without sending anything, and the trail says so; so during an outage only the first calls pay
 * the failing deployment's retries and timeouts, and the rest go straight to the next model.
 *
 * What counts against a deployment is declared on each failure mode (`RouterError.FailureMode.health`):
 *
 * - transient (`RateLimited`, `ServerError`, `ServiceUnavailable`, `Timeout`, `NetworkError`, `MalformedResponse`,
 *   and a stream cut or stalled after content): `consecutiveFailures` in a row, or a failure rate of `failureRate.threshold`
 *   over `failureRate.window` once `failureRate.minRequests` were seen, open it for `cooldown`, growing by
 *   `cooldownFactor` on each trip up to `maxCooldown`;
 * - fatal (`AuthenticationFailed`, `PermissionDenied`, `QuotaExhausted`, `ModelNotFound`): no retry on that deployment
 *   can fix them, so it opens at once for `fatalCooldown`;
 * - never counted: the caller's own request (`BadRequest`, `ContextLengthExceeded`, `ContentFiltered`), a cancellation
 *   by the caller, and a deadline that ran out while waiting.
 *
 * A `Retry-After` keeps the deployment skipped until that instant whatever its state. A new trip always extends the
 * reopening instant, never shortens it. Once a deployment reopens, exactly one call probes it while the others skip it;
 * the probe's success closes it, its failure opens it again, for longer.
 *
 * A deployment can also declare {@link Limits} (`Model.make({ limits })`): concurrent requests, requests per minute and
 * tokens per minute. A deployment at a limit is skipped like an open one, the trail naming the limit and when there is
 * room again.
 *
 * The state lives in a {@link HealthStore}: a router with none in context keeps its own in memory.
 *
 * @since 0.2.0
 */
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Attempt from "./Attempt.js"
import * as internal from "./internal/health.js"
import type { Model } from "./Model.js"

/**
 * The breaker's options (all optional; the defaults are in brackets).
 *
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /**
   * Transient failures in a row that open a deployment [5: one call under the default retry policy, 4 attempts, never
   * opens it on its own; the next call's first failure does].
   */
  readonly consecutiveFailures?: number | undefined
  /**
   * A failure rate that opens a deployment, over a sliding window, once enough requests were seen
   * [`{ threshold: 0.5, window: "60 seconds", minRequests: 10 }`]; `false` turns the rate rule off.
   */
  readonly failureRate?:
    | {
      readonly threshold: number
      readonly window: Duration.DurationInput
      readonly minRequests: number
    }
    | false
    | undefined
  /** How long the first trip keeps a deployment open [5 seconds]. */
  readonly cooldown?: Duration.DurationInput | undefined
  /** Growth of the cooldown on each further trip before the deployment closes again [2]. */
  readonly cooldownFactor?: number | undefined
  /** The longest cooldown [5 minutes]. */
  readonly maxCooldown?: Duration.DurationInput | undefined
  /** The cooldown after a fatal failure (a rejected key, an exhausted quota, an unknown model) [10 minutes]. */
  readonly fatalCooldown?: Duration.DurationInput | undefined
  /**
   * When every deployment of the list is skipped, the call waits for the earliest reopening and probes, if that comes
   * within this bound and before the deadline; otherwise it fails at once with `NoModelAvailable`, which says when the
   * earliest one reopens [30 seconds; `false` never waits].
   */
  readonly maxWait?: Duration.DurationInput | false | undefined
}

/**
 * What one deployment accepts, declared on its model (`Model.make({ limits })`); every limit is optional.
 *
 * - `maxConcurrent`: requests in flight at once. A stream holds its place until it ends, not just until its first
 *   content.
 * - `requestsPerMinute`: requests sent, whatever they ended with.
 * - `tokensPerMinute`: prompt and completion tokens. Before sending, a request reserves an estimate (its text at four
 *   characters a token, plus its `max_tokens`); when the response reports its usage, the reservation is corrected to it.
 *   A request whose answer reports no usage (a failure, a cancellation) keeps its estimate.
 *
 * The two per-minute limits refill continuously (a token bucket holding one minute's worth: `requestsPerMinute: 60`
 * allows a burst of 60, then one a second). A request larger than a whole minute's tokens is admitted when the bucket is
 * full, and the debt is paid off before the next.
 *
 * @since 0.3.0
 * @category models
 */
export interface Limits {
  readonly maxConcurrent?: number | undefined
  readonly requestsPerMinute?: number | undefined
  readonly tokensPerMinute?: number | undefined
}

/**
 * Which limit kept a deployment from taking a request.
 *
 * @since 0.3.0
 * @category models
 */
export type Limit = Attempt.Limit

/**
 * A deployment's breaker state.
 *
 * @since 0.2.0
 * @category models
 */
export type State = "closed" | "open" | "half-open"

/**
 * One deployment's health, as {@link Store.snapshot} shows it.
 *
 * @since 0.2.0
 * @category models
 */
export interface Deployment {
  /** Provider, model, base URL and a fingerprint of the key (never the key). */
  readonly id: string
  readonly model: string
  readonly provider: string
  readonly state: State
  readonly consecutiveFailures: number
  /** Requests and failures in the failure-rate window. */
  readonly recentRequests: number
  readonly recentFailures: number
  /** Trips since the deployment last closed. */
  readonly trips: number
  /** When it reopens (its cooldown, or a server's `Retry-After`), if it is not open to requests now (epoch ms). */
  readonly reopensAt: number | undefined
  /**
   * Requests sent to it that have not ended. A stream counts until its end (read to its end, failed or dropped) where
   * `maxConcurrent` or `tokensPerMinute` counts it, and until its first content otherwise.
   */
  readonly inFlight: number
  /** Whether a half-open probe is in flight. */
  readonly probing: boolean
  /** Why it last opened. */
  readonly reason: string | undefined
  /** Its declared limits ({} when none). */
  readonly limits: Limits
  /** Requests it could take now under `requestsPerMinute` (undefined without that limit). */
  readonly remainingRequests: number | undefined
  /** Tokens it could take now under `tokensPerMinute` (undefined without that limit; negative while in debt). */
  readonly remainingTokens: number | undefined
}

/**
 * Whether a request may go to a deployment now.
 *
 * @since 0.2.0
 * @category models
 */
export type Admission =
  | {
    readonly _tag: "Admitted"
    /** This request is the half-open probe. */
    readonly probe: boolean
    /** A store that leases slots (Redis) names this admission's; it comes back in the {@link Permit}. */
    readonly lease?: string | undefined
  }
  | {
    readonly _tag: "Skipped"
    readonly reason: string
    /** When to look again: the reopening instant, or when a limit has room (epoch ms); undefined when unknown. */
    readonly until: number | undefined
    /** The limit it is at, when a limit is why. */
    readonly limit?: Limit | undefined
  }

/**
 * What a request to a deployment ended with, as health sees it.
 *
 * @since 0.2.0
 * @category models
 */
export type Report =
  | { readonly _tag: "Success" }
  | {
    readonly _tag: "Failure"
    readonly kind: "transient" | "fatal"
    /** The failure mode's tag. */
    readonly tag: string
    readonly retryAfterMillis?: number | undefined
  }
  /** Ended without saying anything about the deployment: cancelled, the caller's bad request, the deadline. */
  | { readonly _tag: "Released" }

/**
 * A deployment's state before and after a report; when they differ the router logs it and adds a span event.
 *
 * @since 0.2.0
 * @category models
 */
export interface Transition {
  readonly from: State
  readonly to: State
  /** Why it opened, when it is open. */
  readonly reason: string | undefined
  /** When it reopens, when it is open (epoch ms). */
  readonly reopensAt: number | undefined
}

/**
 * The health table. A store on another medium (Redis) implements the same three operations with the same rules.
 *
 * @since 0.2.0
 * @category models
 */
export interface Store {
  /**
   * May a request go to this deployment now (at `now`, epoch ms), under its breaker and its `limits`? `tokens` is the
   * request's estimate (counted against `tokensPerMinute`). An admission must be reported, with `ends: true` once.
   */
  readonly admit: (deployment: Model, policy: Policy, now: number, tokens: number) => Effect.Effect<Admission>
  /**
   * What an admitted request showed (`permit` says whether this is the probe's verdict, whether the request ended, and
   * its tokens); returns the state before and after it.
   */
  readonly report: (
    deployment: Model,
    policy: Policy,
    now: number,
    report: Report,
    permit: Permit
  ) => Effect.Effect<Transition>
  /** Every deployment this store has seen. */
  readonly snapshot: (now: number) => Effect.Effect<ReadonlyArray<Deployment>>
  /** Budgets per period (the router's `budget.perPeriod`); a store without them leaves each router its own. */
  readonly budgets?: Budgets | undefined
}

/**
 * What budgets have spent in their current period. Periods are aligned on the epoch: a period of a day starts at
 * midnight UTC.
 *
 * @since 0.3.0
 * @category models
 */
export interface Budgets {
  /** What the budget `name` has spent in the period holding `now`. */
  readonly spent: (name: string, now: number, periodMillis: number) => Effect.Effect<number>
  /** Adds `amount` to it; returns the new total. */
  readonly charge: (name: string, now: number, periodMillis: number, amount: number) => Effect.Effect<number>
}

/**
 * The breaker's options, checked, in milliseconds (what a {@link Store} applies).
 *
 * @since 0.2.0
 * @category models
 */
export type Policy = internal.Policy

/**
 * What a report settles of its admission.
 *
 * A request that is not a stream is reported once, when it ends: `{ probe, ends: true }`. A stream on a deployment
 * whose `maxConcurrent` or `tokensPerMinute` counts it until its end is reported twice: at its first content, the
 * verdict on the deployment (`{ probe, ends: false }`: a half-open deployment closes), and when it ends however it ends
 * (`{ probe: false, ends: true }`, with the failure if it broke after content). Any other stream ends its admission at
 * its first content (`{ probe, ends: true }`), and is reported again only if it breaks after content
 * (`{ probe: false, ends: false }`).
 *
 * @since 0.3.0
 * @category models
 */
export interface Permit {
  /** The report is the half-open probe's verdict: success closes the breaker, failure opens it again, longer. */
  readonly probe: boolean
  /** The request ended: its concurrency slot is freed and its tokens settled. */
  readonly ends: boolean
  /** The admission's lease, when the store gave one. */
  readonly lease?: string | undefined
  /** Tokens reserved at admission (the estimate given to `admit`). */
  readonly reservedTokens: number
  /** Tokens the response reported using (prompt + completion), when it did: the reservation is corrected to it. */
  readonly usedTokens?: number | undefined
}

/**
 * The health table in context, shared by every router built with it (by default each router keeps its own).
 *
 * @since 0.2.0
 * @category context
 */
export class HealthStore extends Context.Tag("effect-llm-router/HealthStore")<HealthStore, Store>() {}

/**
 * A store in this process's memory.
 *
 * @since 0.2.0
 * @category constructors
 */
export const makeMemory: () => Store = internal.makeMemory

/**
 * One in-memory health table for every router built with this layer in context.
 *
 * @example
 * ```ts
 * import { FetchHttpClient } from "@effect/platform"
 * import { Layer, Redacted } from "effect"
 * import { Health, Model, OpenAiCompatible, Router } from "effect-llm-router"
 *
 * const openai = OpenAiCompatible.endpoint({ baseUrl: "https://api.openai.com/v1", apiKey: Redacted.make("sk-...") })
 * export const RouterLive = Router.layer({
 *   models: [Model.make({ name: "gpt-4o", endpoint: openai }), Model.make({ name: "gpt-4o-mini", endpoint: openai })],
 *   health: { consecutiveFailures: 5, cooldown: "10 seconds", maxWait: "5 seconds" }
 * }).pipe(Layer.provide(Health.layerMemory), Layer.provide(FetchHttpClient.layer))
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layerMemory: Layer.Layer<HealthStore> = Layer.sync(HealthStore, makeMemory)

/**
 * A deployment's id: provider, model name, base URL, and a fingerprint of its key (never the key itself).
 *
 * @since 0.2.0
 * @category constructors
 */
export const deploymentId: (model: Model) => string = internal.deploymentId
