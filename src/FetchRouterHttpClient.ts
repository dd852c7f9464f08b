/**
 * An HTTP client layer on `globalThis.fetch` (Node, Bun, Deno, browsers, edge runtimes), hand-written in place of the
 * platform's `FetchHttpClient.layer` for speed.
 *
 * Measured 2026-11-30 (`bench/results/session5-fetch-2026-11-30.md`: the router on each layer in one run, 3 rounds, load
 * ~2 on 2 cores, so ±10 %): client CPU per non-streaming call at c=32 1,212 µs against 1,493 µs on `FetchHttpClient`
 * (−19 %), latency at c=1 1.10 against 1.28 ms, sequential 100-chunk streams 2.82 against 3.68 ms (−23 %), failover
 * 1,116 against 1,304 µs; the AI SDK bridge on it 1,907 against 2,229 µs per call. `fetch` itself is most of what is
 * left (raw `fetch` alone: 561 µs per call in that run); on Node, `NodeRouterHttpClient.layerUndici` is faster still.
 *
 * @since 0.3.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as internal from "./internal/fetchClient.js"

/**
 * An `HttpClient` on `globalThis.fetch`, for the router (`Router.layer` needs an `HttpClient`): the same requests,
 * responses and errors as the platform's `FetchHttpClient.layer`, at a fraction of its cost per call.
 *
 * Every request sent through `execute` goes through `HttpClient.make`, so spans, `HttpClient.withScope` and the abort
 * of an unread or interrupted response are the platform's own. The router's untraced requests take a short path of
 * their own (no span, no `URL` per call, no wrapper around the response, whose body the router reads from its reader
 * without a stream executor). Either way:
 *
 * - interrupting before the headers arrive aborts the request (its connection is closed);
 * - interrupting a body read (`text`, `json`, `arrayBuffer`, …) aborts it; a finished read aborts nothing;
 * - `stream` emits each read of the body as it arrives and cancels the body (closing its connection) as soon as the
 *   stream ends early (taken, interrupted, its scope closed);
 * - a body nobody reads is aborted when its scope closes (`HttpClient.withScope`) or when the response is collected;
 * - transport failures are `RequestError` "Transport" with fetch's error as the cause, a URL that does not parse
 *   `RequestError` "InvalidUrl", body failures `ResponseError` "Decode", `stream` of a response without a body
 *   `ResponseError` "EmptyBody".
 *
 * Like the platform's client it sends with the `FetchHttpClient.Fetch` in context (`globalThis.fetch` without one) and
 * adds the `FetchHttpClient.RequestInit` in context to every request; either may be provided to the layer or around a
 * call.
 *
 * @example
 * ```ts
 * import { Effect, Layer, Redacted } from "effect"
 * import { FetchRouterHttpClient, Model, OpenAiCompatible, Router } from "effect-llm-router"
 *
 * const openai = OpenAiCompatible.endpoint({ baseUrl: "https://api.openai.com/v1", apiKey: Redacted.make("sk-...") })
 *
 * const RouterLive = Router.layer({ models: [Model.make({ name: "gpt-4o-mini", endpoint: openai })] }).pipe(
 *   Layer.provide(FetchRouterHttpClient.layer)
 * )
 *
 * const answer = Router.generate({ messages: [{ role: "user", content: "Hello" }] }).pipe(
 *   Effect.map((response) => response.text),
 *   Effect.provide(RouterLive)
 * )
 * ```
 *
 * @since 0.3.0
 * @category layers
 */
export const layer: Layer.Layer<HttpClient.HttpClient> = Layer.effect(
  HttpClient.HttpClient,
  Effect.map(Effect.context<never>(), (context) =>
    internal.make({
      fetch: context.unsafeMap.get(internal.fetchKey),
      init: context.unsafeMap.get(internal.requestInitKey)
    }))
)
