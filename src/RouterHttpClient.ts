/**
 * The fastest HTTP client the runtime has built in, for the router: `node:http` on Node, `fetch` everywhere else.
 *
 * On Node, `fetch` is the slow part of a call: a request through it costs several times what the same request costs
 * through `node:http` (WHATWG streams, `Request`/`Response` objects, an `AbortSignal` per call). This layer takes
 * `node:http` from the runtime (`process.getBuiltinModule`, Node ≥ 20.16), without importing it, so the main entry
 * still loads in browsers and edge runtimes, and without `@effect/platform-node`.
 *
 * Measured 2026-11-30 on Node 20.20.2, 2 cores: the bench's router alone at c=32 (`ours-nodehttp` against
 * `ours-fetchr`, `bench/results/session6-bridges-2026-11-30.md`) 396 against 1 213 µs of client CPU per call, 3 549
 * against 1 157 calls/s, 0.65 against 1.05 ms at c=1; the AI SDK bridge's `doGenerate` alone at steady state (one
 * process, 32 at a time after 3 000 warm-up calls) 153–173 µs on this layer, 612–642 µs on `FetchRouterHttpClient`,
 * and 335–511 µs for the stock `@ai-sdk/openai` provider on fetch.
 *
 * @since 0.3.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as FetchRouterHttpClient from "./FetchRouterHttpClient.js"
import * as internal from "./internal/nodeHttpClient.js"
import { RouterConfigError } from "./RouterError.js"

/**
 * An `HttpClient` on `node:http`/`node:https` with its own keep-alive connection pools (closed when the layer is
 * released; idle connections do not keep the process alive). It fails with a `RouterConfigError` where the runtime
 * does not hand over `node:http` (browsers, edge runtimes, Deno, Bun, Node before 20.16); {@link layer} falls back to
 * fetch there instead.
 *
 * The same requests, responses and errors as the platform's clients:
 *
 * - interrupting before the headers arrive destroys the request (its socket is closed);
 * - interrupting a body read aborts it; `stream` emits each network read as it arrives, pauses the socket when the
 *   consumer falls behind, and destroys the body as soon as the stream ends early;
 * - a body nobody reads is aborted when its scope closes (`HttpClient.withScope`) or when the response is collected;
 * - an idempotent request (GET, HEAD, OPTIONS, PUT, DELETE) sent on a kept-alive connection the server had just
 *   closed (`ECONNRESET` before any response) is sent once more on a new connection, as fetch does; a POST fails as
 *   `RequestError` "Transport" (for the router, a failed attempt its retry policy weighs);
 * - transport failures are `RequestError` "Transport" with Node's error (with its `code`) as the cause, a URL that is
 *   not `http:`/`https:` `RequestError` "InvalidUrl", body failures `ResponseError` "Decode".
 *
 * Every request sent through `execute` goes through `HttpClient.make` (spans, `HttpClient.withScope`); the router's
 * untraced requests take a short path of their own.
 *
 * @since 0.3.0
 * @category layers
 */
export const layerNodeHttp: Layer.Layer<HttpClient.HttpClient, RouterConfigError> = Layer.scoped(
  HttpClient.HttpClient,
  Effect.suspend(() => {
    const modules = internal.modules()
    if (modules === undefined) {
      return Effect.fail(
        new RouterConfigError({
          option: "RouterHttpClient.layerNodeHttp",
          reason: "this runtime does not provide node:http through process.getBuiltinModule (Node 20.16 or later)"
        })
      )
    }
    return Effect.map(
      Effect.acquireRelease(
        Effect.sync(() => internal.makeAgents(modules)),
        (agents) => Effect.sync(() => internal.destroyAgents(agents))
      ),
      (agents) => internal.make(modules, agents)
    )
  })
)

/**
 * The router's HTTP client for code that does not choose one: {@link layerNodeHttp} where the runtime has `node:http`,
 * `FetchRouterHttpClient.layer` everywhere else. The bridges use it by default.
 *
 * @example
 * ```ts
 * import { Effect, Layer, Redacted } from "effect"
 * import { Model, OpenAiCompatible, Router, RouterHttpClient } from "effect-llm-router"
 *
 * const openai = OpenAiCompatible.endpoint({ baseUrl: "https://api.openai.com/v1", apiKey: Redacted.make("sk-...") })
 *
 * const RouterLive = Router.layer({ models: [Model.make({ name: "gpt-4o-mini", endpoint: openai })] }).pipe(
 *   Layer.provide(RouterHttpClient.layer)
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
export const layer: Layer.Layer<HttpClient.HttpClient> = Layer.unwrapEffect(
  Effect.sync(() => internal.modules() === undefined ? FetchRouterHttpClient.layer : Layer.orDie(layerNodeHttp))
)
