/**
 * One entry of the priority list: a model name on an endpoint, with optional request overrides and retry policy.
 *
 * @since 0.1.0
 */
import type { Overrides } from "./ChatRequest.js"
import type { Limits } from "./Health.js"
import type { Endpoint } from "./Provider.js"
import type { RetryPolicy } from "./RetryPolicy.js"

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
}): Model => ({
  name: options.name,
  provider: options.provider ?? options.endpoint.provider,
  endpoint: options.endpoint,
  overrides: options.overrides ?? {},
  retry: options.retry,
  limits: options.limits ?? {}
})
