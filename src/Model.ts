/**
 * One entry of the priority list: a model name on an endpoint, with optional request overrides and retry policy.
 *
 * @since 0.1.0
 */
import type { Overrides } from "./ChatRequest.js"
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
}): Model => ({
  name: options.name,
  provider: options.provider ?? options.endpoint.provider,
  endpoint: options.endpoint,
  overrides: options.overrides ?? {},
  retry: options.retry
})
