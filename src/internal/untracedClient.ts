/**
 * A shorter way to send a request nobody traces. The router sends untraced requests (no tracer installed) through
 * `HttpClient.withTracerDisabledWhen`, which sets and restores a fiber ref around every request so that the client
 * skips its span. An HTTP client layer of ours (the undici one) also offers that untraced send directly; a client
 * that does not (the platform's, or ours wrapped by the caller's own `HttpClient` combinators) keeps the general path.
 *
 * The direct send knows nothing of `HttpClient.withScope` (whose per-request abort only `HttpClient.make` can read):
 * it is for the router's own requests, which are never scoped that way. Anything sent through `execute` is.
 *
 * @internal
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import type * as Effect from "effect/Effect"
import * as Predicate from "effect/Predicate"

/** @internal */
export const TypeId: unique symbol = Symbol.for("effect-llm-router/UntracedClient")

/** @internal */
export type Execute = (
  request: HttpClientRequest.HttpClientRequest
) => Effect.Effect<HttpClientResponse.HttpClientResponse, HttpClientError.HttpClientError>

/** @internal */
export interface HasUntraced {
  readonly [TypeId]: Execute
}

/**
 * The client's own untraced send when it offers one, otherwise `undefined`.
 *
 * @internal
 */
export const untracedExecute = (client: HttpClient.HttpClient): Execute | undefined =>
  Predicate.hasProperty(client, TypeId) && typeof (client as unknown as HasUntraced)[TypeId] === "function"
    ? (client as unknown as HasUntraced)[TypeId]
    : undefined
