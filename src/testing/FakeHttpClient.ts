/**
 * An in-memory `HttpClient` that plays an `UpstreamScript` on the Effect clock, for `TestClock` tests.
 *
 * It answers through the same dispatcher and renderer as the loopback `SimulatedUpstream`, so a step sends the same
 * status, headers and bytes in both. Every latency of a step (headers, first token, between chunks, keep-alives,
 * hangs) is an `Effect.sleep`, so `TestClock.adjust` moves a call through its retries, timeouts and deadline
 * deterministically, and the instant each request arrived is recorded from `Clock.currentTimeMillis`.
 *
 * Runtime-agnostic: no `node:` imports.
 *
 * @example
 * ```ts
 * import { Effect, Fiber, TestClock } from "effect"
 * import { Model, OpenAiCompatible, Router } from "effect-llm-router"
 * import { FakeHttpClient, UpstreamScript } from "effect-llm-router/testing"
 *
 * const endpoint = OpenAiCompatible.endpoint({ baseUrl: FakeHttpClient.openAiBaseUrl })
 * const test = Effect.gen(function*() {
 *   const router = yield* Router.make({ models: [Model.make({ name: "a", endpoint })] })
 *   const fiber = yield* Effect.fork(router.generate({ messages: [{ role: "user", content: "hi" }] }))
 *   yield* TestClock.adjust("4 seconds")
 *   yield* Fiber.join(fiber)
 *   const requests = yield* FakeHttpClient.requests // receivedAt: 0, then 4000
 * }).pipe(
 *   Effect.provide(FakeHttpClient.layer({ script: { a: [UpstreamScript.unavailable(), UpstreamScript.succeed()] } })),
 *   // Pins the retry jitter to a factor of exactly 1, so the default wait is 4 s.
 *   Effect.withRandomFixed([0.5])
 * )
 * ```
 *
 * @since 0.1.0
 */
import * as Cookies from "@effect/platform/Cookies"
import * as Headers from "@effect/platform/Headers"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as UrlParams from "@effect/platform/UrlParams"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Inspectable from "effect/Inspectable"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as Dispatch from "./internal/dispatch.js"
import type * as Render from "./internal/render.js"
import type * as UpstreamScript from "./UpstreamScript.js"

/**
 * The origin the fake answers on. Any origin works (only the path is routed); this one just reads well.
 *
 * @since 0.1.0
 * @category constants
 */
export const url = "http://fake-upstream.test"

/**
 * Base URL for OpenAI-compatible endpoints (`OpenAiCompatible.endpoint({ baseUrl })`).
 *
 * @since 0.1.0
 * @category constants
 */
export const openAiBaseUrl = `${url}/v1`

/**
 * Base URL for GPTRouter endpoints (`GptRouter.endpoint({ baseUrl })`).
 *
 * @since 0.1.0
 * @category constants
 */
export const gptRouterBaseUrl = url

/**
 * Base URL for Anthropic endpoints (`Anthropic.endpoint({ baseUrl })`, which adds `/v1/messages`).
 *
 * @since 0.3.0
 * @category constants
 */
export const anthropicBaseUrl = url

/**
 * Base URL for Gemini endpoints (`Gemini.endpoint({ baseUrl })`, which adds `/v1beta/models/…`).
 *
 * @since 0.3.0
 * @category constants
 */
export const geminiBaseUrl = url

/**
 * Configuration of the fake.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Model name to steps; see `UpstreamScript`. */
  readonly script: UpstreamScript.Script
  /**
   * When set, OpenAI requests must carry `authorization: Bearer <apiKey>`, GPTRouter requests `ws-secret: <apiKey>`,
   * Anthropic requests `x-api-key: <apiKey>` and Gemini requests `x-goog-api-key: <apiKey>`, or they get the
   * protocol's wrong-key answer (a 401; Gemini's is a 400 `API_KEY_INVALID`).
   */
  readonly apiKey?: string | undefined
  /** Wire options for every response; a step's own `wire` overrides them. */
  readonly wire?: UpstreamScript.WireOptions | undefined
}

/**
 * A request the fake received. `receivedAt` is `Clock.currentTimeMillis` when it arrived (the `TestClock` under
 * `it.effect`, so 0 for a call started at the beginning of a test).
 *
 * @since 0.1.0
 * @category models
 */
export type RecordedRequest = UpstreamScript.RecordedRequest

/**
 * The fake and what it saw.
 *
 * @since 0.1.0
 * @category models
 */
export interface Service {
  readonly client: HttpClient.HttpClient
  /** Every request that reached a protocol endpoint, in arrival order. */
  readonly requests: () => ReadonlyArray<RecordedRequest>
  /** How many script steps `model` has consumed. */
  readonly attempts: (model: string) => number
  /**
   * Responses the client abandoned before they finished: the request was aborted (its scope closed, or the call was
   * interrupted) while waiting for headers or before the body ended. Bodies ended by the script (`cut`) or read to
   * the end do not count.
   */
  readonly closedConnections: () => number
  /** Forgets recorded requests, attempt counters and closed connections; optionally swaps the script. */
  readonly reset: (script?: UpstreamScript.Script) => void
}

/**
 * The fake in context, provided by {@link layer} next to the `HttpClient` it backs.
 *
 * @since 0.1.0
 * @category context
 */
export class FakeUpstream extends Context.Tag("effect-llm-router/testing/FakeUpstream")<FakeUpstream, Service>() {}

/**
 * The requests recorded by the fake in context.
 *
 * @since 0.1.0
 * @category accessors
 */
export const requests: Effect.Effect<ReadonlyArray<RecordedRequest>, never, FakeUpstream> = Effect.map(
  FakeUpstream,
  (fake) => fake.requests()
)

const decoder = new TextDecoder()

const requestBody = (
  request: HttpClientRequest.HttpClientRequest
): Effect.Effect<string, HttpClientError.RequestError> => {
  const body = request.body
  switch (body._tag) {
    case "Empty":
      return Effect.succeed("")
    case "Uint8Array":
      return Effect.succeed(decoder.decode(body.body))
    case "Raw":
      if (typeof body.body === "string") return Effect.succeed(body.body)
      if (body.body instanceof Uint8Array) return Effect.succeed(decoder.decode(body.body))
      break
    case "Stream":
      return Effect.mapBoth(Stream.runCollect(body.stream), {
        onFailure: (cause) =>
          new HttpClientError.RequestError({ request, reason: "Encode", cause, description: "reading the body" }),
        onSuccess: (chunks) => {
          return decoder.decode(concatBytes(chunks))
        }
      })
  }
  return Effect.fail(
    new HttpClientError.RequestError({
      request,
      reason: "Encode",
      description: `the fake upstream cannot read a ${body._tag} body`
    })
  )
}

class FakeResponse extends Inspectable.Class implements HttpClientResponse.HttpClientResponse {
  readonly [HttpClientResponse.TypeId]: HttpClientResponse.TypeId = HttpClientResponse.TypeId
  readonly [HttpIncomingMessage.TypeId]: HttpIncomingMessage.TypeId = HttpIncomingMessage.TypeId
  readonly headers: Headers.Headers
  readonly cookies: Cookies.Cookies = Cookies.empty
  readonly remoteAddress: Option.Option<string> = Option.none()
  private consumed = false
  /** The next action of the script to play. */
  private index = 0
  private textBody: Effect.Effect<string, HttpClientError.ResponseError> | undefined

  constructor(
    readonly request: HttpClientRequest.HttpClientRequest,
    readonly status: number,
    headers: Readonly<Record<string, string>>,
    private readonly actions: ReadonlyArray<Render.WireAction>,
    private readonly keepAlive: Render.KeepAlive | null,
    private readonly signal: AbortSignal
  ) {
    super()
    this.headers = Headers.fromInput(headers)
  }

  private error(reason: "Decode" | "EmptyBody", description: string, cause?: unknown) {
    return new HttpClientError.ResponseError({
      request: this.request,
      response: this,
      reason,
      description,
      ...(cause === undefined ? {} : { cause })
    })
  }

  /**
   * Whether the script still had time to spend (a wait or a hang) when the client went away: a real server would
   * have seen the connection close under it. Writes with no wait before them would already have been sent.
   */
  get unfinished(): boolean {
    for (let i = this.index; i < this.actions.length; i++) {
      const tag = this.actions[i]!._tag
      if (tag === "Wait" || tag === "Hang") return true
      if (tag === "End" || tag === "Cut") return false
    }
    return false
  }

  /** The body, one chunk per `Write`; every wait is an `Effect.sleep`. Like a real body, it can be read once. */
  get stream(): Stream.Stream<Uint8Array, HttpClientError.ResponseError> {
    return Stream.suspend(() => {
      if (this.consumed) return Stream.fail(this.error("Decode", "the body has already been read"))
      this.consumed = true
      let failure: HttpClientError.ResponseError | undefined
      const pull: Effect.Effect<Chunk.Chunk<Uint8Array>, Option.Option<HttpClientError.ResponseError>> = Effect
        .suspend(() => {
          if (failure !== undefined) return Effect.fail(Option.some(failure))
          if (this.signal.aborted) {
            failure = this.error("Decode", "the request was aborted", this.signal.reason)
            return Effect.fail(Option.some(failure))
          }
          const action = this.actions[this.index]
          if (action === undefined) return Effect.fail(Option.none())
          switch (action._tag) {
            case "Write":
              this.index++
              return Effect.succeed(Chunk.of(action.bytes))
            case "Wait":
              // The wait counts as pending until it has elapsed.
              return Effect.zipRight(
                Effect.sleep(Duration.millis(action.ms)),
                Effect.suspend(() => {
                  this.index++
                  return pull
                })
              )
            case "End":
              this.index = this.actions.length
              return Effect.fail(Option.none())
            case "Cut": {
              this.index = this.actions.length
              // What a connection reset looks like to a fetch-based client: the read fails with ECONNRESET.
              failure = this.error("Decode", "the connection was reset", {
                code: "ECONNRESET",
                message: "the fake upstream reset the connection"
              })
              return Effect.fail(Option.some(failure))
            }
            case "Hang": {
              // Stays on this action: silent forever, or a keep-alive every period.
              const keepAlive = this.keepAlive
              return keepAlive === null
                ? Effect.never
                : Effect.as(Effect.sleep(Duration.millis(keepAlive.everyMs)), Chunk.of(keepAlive.bytes))
            }
          }
        })
      return Stream.repeatEffectChunkOption(pull)
    })
  }

  private get bytes(): Effect.Effect<Uint8Array, HttpClientError.ResponseError> {
    return Effect.map(Stream.runCollect(this.stream), concatBytes)
  }

  get text(): Effect.Effect<string, HttpClientError.ResponseError> {
    // Cached like the platform's own responses, so reading `text` then `json` reads the body once.
    return this.textBody ??= Effect.runSync(Effect.cached(Effect.map(this.bytes, (b) => decoder.decode(b))))
  }

  get json(): Effect.Effect<unknown, HttpClientError.ResponseError> {
    return Effect.flatMap(this.text, (text) =>
      Effect.try({
        try: () => (text === "" ? null : JSON.parse(text)) as unknown,
        catch: (cause) => this.error("Decode", "the body is not JSON", cause)
      }))
  }

  get urlParamsBody(): Effect.Effect<UrlParams.UrlParams, HttpClientError.ResponseError> {
    return Effect.map(this.text, (text) => UrlParams.fromInput(new URLSearchParams(text)))
  }

  get arrayBuffer(): Effect.Effect<ArrayBuffer, HttpClientError.ResponseError> {
    return Effect.map(this.bytes, (b) => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer)
  }

  get formData(): Effect.Effect<FormData, HttpClientError.ResponseError> {
    return Effect.fail(this.error("Decode", "the fake upstream does not send form data"))
  }

  toJSON(): unknown {
    return { _id: "@effect/platform/HttpClientResponse", request: this.request.toJSON(), status: this.status }
  }
}

const concatBytes = (chunks: Chunk.Chunk<Uint8Array>): Uint8Array => {
  const parts = Chunk.toReadonlyArray(chunks)
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let offset = 0
  for (const part of parts) {
    out.set(part, offset)
    offset += part.length
  }
  return out
}

/**
 * Builds the fake. Each call has its own script state and recordings.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Service => {
  let clockNow = 0
  // The dispatcher is synchronous: the Clock is read just before each dispatch and handed to it here.
  const dispatcher = Dispatch.makeDispatcher({
    script: options.script,
    apiKey: options.apiKey,
    wire: options.wire,
    now: () => clockNow
  })
  let closed = 0

  const client = HttpClient.make((request, url, signal) =>
    Effect.gen(function*() {
      const body = yield* requestBody(request)
      clockNow = yield* Clock.currentTimeMillis
      const headers: Record<string, string> = {}
      for (const [name, value] of Object.entries(request.headers)) headers[name.toLowerCase()] = value
      const plan = dispatcher.dispatch({ method: request.method, path: url.pathname + url.search, headers, body })
      // Until the headers are sent, the abort of a request always abandons it.
      const sent: { response?: FakeResponse } = {}
      const onAbort = () => {
        if (sent.response === undefined || sent.response.unfinished) closed++
      }
      if (signal.aborted) onAbort()
      else signal.addEventListener("abort", onAbort, { once: true })
      if (plan._tag === "HangBeforeHeaders") return yield* Effect.never
      if (plan.headersDelayMs > 0) yield* Effect.sleep(Duration.millis(plan.headersDelayMs))
      sent.response = new FakeResponse(request, plan.status, plan.headers, plan.actions, plan.keepAlive, signal)
      return sent.response
    })
  )

  return {
    client,
    requests: dispatcher.requests,
    attempts: dispatcher.attempts,
    closedConnections: () => closed,
    reset: (script) => {
      dispatcher.reset(script)
      closed = 0
    }
  }
}

/**
 * The fake as the `HttpClient`, plus {@link FakeUpstream} to inspect what it received. Each build of the layer starts
 * a fresh script state.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<HttpClient.HttpClient | FakeUpstream> =>
  Layer.effectContext(Effect.sync(() => {
    const fake = make(options)
    return Context.make(FakeUpstream, fake).pipe(Context.add(HttpClient.HttpClient, fake.client))
  }))
