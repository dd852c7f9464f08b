/**
 * The `HttpClient` of `FetchRouterHttpClient` (see that module): `globalThis.fetch` without the platform's wrapper
 * around each request and response.
 *
 * @internal
 */
import * as Cookies from "@effect/platform/Cookies"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as Headers from "@effect/platform/Headers"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as UrlParams from "@effect/platform/UrlParams"
import * as Chunk from "effect/Chunk"
import type * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import { globalValue } from "effect/GlobalValue"
import * as Inspectable from "effect/Inspectable"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as ByteSource from "./byteSource.js"
import * as UntracedClient from "./untracedClient.js"

type Fetch = typeof globalThis.fetch

const noop = () => {}

/**
 * The same tags as the platform's fetch client, so that a `Fetch` or `RequestInit` provided for it applies here too.
 *
 * @internal
 */
export const fetchKey = FetchHttpClient.Fetch.key

/** @internal */
export const requestInitKey = FetchHttpClient.RequestInit.key

const abortController = (controller: AbortController): void => {
  if (!controller.signal.aborted) controller.abort()
}

// A response whose body is never read would hold its connection until the fetch implementation collects it: abort it
// when our response is collected (as the platform's client does for its own).
const unreadBodies = globalValue(
  "effect-llm-router/FetchRouterHttpClient/unreadBodies",
  () =>
    typeof FinalizationRegistry === "function" ? new FinalizationRegistry<AbortController>(abortController) : undefined
)

// A router sends to a handful of URLs: remember which ones `UrlParams.makeUrl` accepted, and their normal form, rather
// than building a `URL` per request (fetch parses the string once more anyway).
const urls = new Map<string, string>()
const maxUrls = 512

const resolveUrl = (request: HttpClientRequest.HttpClientRequest): string | HttpClientError.RequestError => {
  const plain = request.urlParams.length === 0 && request.hash._tag === "None"
  if (plain) {
    const cached = urls.get(request.url)
    if (cached !== undefined) return cached
  }
  const url = UrlParams.makeUrl(request.url, request.urlParams, request.hash)
  if (url._tag === "Left") {
    return new HttpClientError.RequestError({ request, reason: "InvalidUrl", cause: url.left })
  }
  const href = url.right.href
  if (plain) {
    if (urls.size >= maxUrls) urls.clear()
    urls.set(request.url, href)
  }
  return href
}

/** The request's headers as fetch takes them: `content-length` is fetch's own (from the body), as in the platform. */
const fetchHeaders = (headers: Headers.Headers, init: RequestInit | undefined): Record<string, string> => {
  const out: Record<string, string> = {}
  if (init?.headers !== undefined) {
    for (const [name, value] of Object.entries(Headers.fromInput(init.headers))) out[name] = value
  }
  for (const name in headers) {
    if (name !== "content-length") out[name] = headers[name]!
  }
  return out
}

const send = (
  request: HttpClientRequest.HttpClientRequest,
  url: string | URL,
  context: Context.Context<never>,
  defaults: Defaults,
  signal: AbortSignal,
  owned: AbortController | undefined
): Effect.Effect<HttpClientResponse.HttpClientResponse, HttpClientError.RequestError> => {
  const fetch: Fetch = context.unsafeMap.get(fetchKey) ?? defaults.fetch ?? globalThis.fetch
  const init: RequestInit | undefined = context.unsafeMap.get(requestInitKey) ?? defaults.init
  const dispatch = (body: BodyInit | null, duplex: boolean) =>
    Effect.async<HttpClientResponse.HttpClientResponse, HttpClientError.RequestError>((resume) => {
      const options: RequestInit & { duplex?: "half" } = {
        ...init,
        method: request.method,
        headers: fetchHeaders(request.headers, init),
        body,
        signal
      }
      if (duplex) options.duplex = "half"
      let pending: Promise<Response>
      try {
        pending = fetch(url, options)
      } catch (cause) {
        pending = Promise.reject(cause)
      }
      pending.then(
        (response) => resume(Effect.succeed(new FetchResponse(request, response, owned))),
        (cause) => resume(Effect.fail(new HttpClientError.RequestError({ request, reason: "Transport", cause })))
      )
      return owned === undefined ? undefined : Effect.sync(() => abortController(owned))
    })
  const body = request.body
  switch (body._tag) {
    case "Empty":
      return dispatch(null, false)
    case "Uint8Array":
    case "Raw":
      return dispatch(body.body as BodyInit, false)
    case "FormData":
      return dispatch(body.formData, false)
    case "Stream":
      return Effect.flatMap(Stream.toReadableStreamEffect(body.stream), (stream) => dispatch(stream, true))
  }
}

/**
 * What the layer was built with: a `Fetch` / `RequestInit` in its context, used when the request's has none.
 *
 * @internal
 */
export interface Defaults {
  readonly fetch: Fetch | undefined
  readonly init: RequestInit | undefined
}

/** @internal */
export const make = (defaults: Defaults): HttpClient.HttpClient => {
  // Everything sent through `execute` goes through `HttpClient.make`: its spans, its abort on interruption (of the
  // request and of a body read), its clean-up of unread responses, and `HttpClient.withScope`.
  const client = HttpClient.make((request, url, signal, fiber) =>
    send(request, url, fiber.currentContext, defaults, signal, undefined)
  )
  // The router's untraced requests come here directly (see internal/untracedClient.ts): no span to skip, no `URL` per
  // call, no wrapper around the response, whose body the router reads as a `ByteSource`. A client wrapped by the
  // caller's own combinators is a new object without it, so their wrapping is never bypassed.
  const direct: UntracedClient.Execute = (request) =>
    Effect.withFiberRuntime<HttpClientResponse.HttpClientResponse, HttpClientError.HttpClientError>((fiber) => {
      const url = resolveUrl(request)
      if (typeof url !== "string") return Effect.fail(url)
      const controller = new AbortController()
      return send(request, url, fiber.currentContext, defaults, controller.signal, controller)
    })
  return Object.assign(client, { [UntracedClient.TypeId]: direct })
}

class FetchResponse extends Inspectable.Class implements HttpClientResponse.HttpClientResponse {
  readonly [HttpIncomingMessage.TypeId]: HttpIncomingMessage.TypeId = HttpIncomingMessage.TypeId
  readonly [HttpClientResponse.TypeId]: HttpClientResponse.TypeId = HttpClientResponse.TypeId
  readonly status: number
  private collectable: boolean
  private bodyText: Promise<string> | undefined = undefined
  private textResult: string | undefined = undefined
  private bodyBytes: Promise<ArrayBuffer> | undefined = undefined
  private cachedHeaders: Headers.Headers | undefined = undefined
  private cachedCookies: Cookies.Cookies | undefined = undefined

  /**
   * `controller`: the request's own abort, on the router's direct path; through `execute` the platform's wrapper
   * aborts its own instead (on an interrupted read, a finished stream, a collected response).
   */
  constructor(
    readonly request: HttpClientRequest.HttpClientRequest,
    private readonly source: Response,
    private readonly controller: AbortController | undefined
  ) {
    super()
    this.status = source.status
    this.collectable = controller !== undefined && unreadBodies !== undefined && source.body !== null
    if (this.collectable) unreadBodies!.register(this, controller!, this)
  }

  /** The body is being read: from now on its reader owns it (and aborts it if the read is cut short). */
  private claim(): void {
    if (this.collectable) {
      this.collectable = false
      unreadBodies!.unregister(this)
    }
  }

  private decodeError(cause: unknown): HttpClientError.ResponseError {
    return new HttpClientError.ResponseError({ request: this.request, response: this, reason: "Decode", cause })
  }

  private interruptRead: Effect.Effect<void> | undefined = undefined
  /** Aborts a body read when it is interrupted (on the direct path; `undefined`: the platform's wrapper does). */
  private get interrupt(): Effect.Effect<void> | undefined {
    const controller = this.controller
    if (controller === undefined) return undefined
    return this.interruptRead ??= Effect.sync(() => abortController(controller))
  }

  get headers(): Headers.Headers {
    return this.cachedHeaders ??= Headers.fromInput(this.source.headers)
  }

  get cookies(): Cookies.Cookies {
    if (this.cachedCookies !== undefined) return this.cachedCookies
    const headers = this.source.headers
    const setCookie = typeof headers.getSetCookie === "function"
      ? headers.getSetCookie()
      : headers.has("set-cookie")
      ? [headers.get("set-cookie")!]
      : []
    return this.cachedCookies = setCookie.length === 0 ? Cookies.empty : Cookies.fromSetCookie(setCookie)
  }

  get remoteAddress(): Option.Option<string> {
    return Option.none()
  }

  private readBody<A>(
    promise: () => Promise<A>,
    onValue?: (value: A) => void
  ): Effect.Effect<A, HttpClientError.ResponseError> {
    return Effect.async((resume) => {
      this.claim()
      promise().then(
        (value) => {
          if (onValue !== undefined) onValue(value)
          resume(Effect.succeed(value))
        },
        (cause) => resume(Effect.fail(this.decodeError(cause)))
      )
      return this.interrupt
    })
  }

  private readonly textPromise = () =>
    this.bodyText ??= this.bodyBytes === undefined
      ? this.source.text()
      : this.bodyBytes.then((bytes) => new TextDecoder().decode(bytes))

  private readonly keepText = (text: string) => {
    this.textResult = text
  }

  get text(): Effect.Effect<string, HttpClientError.ResponseError> {
    return Effect.suspend(() =>
      this.textResult !== undefined ? Effect.succeed(this.textResult) : this.readBody(this.textPromise, this.keepText)
    )
  }

  get json(): Effect.Effect<unknown, HttpClientError.ResponseError> {
    return Effect.flatMap(this.text, (text) => {
      try {
        return Effect.succeed(text === "" ? null : JSON.parse(text) as unknown)
      } catch (cause) {
        return Effect.fail(this.decodeError(cause))
      }
    })
  }

  get urlParamsBody(): Effect.Effect<UrlParams.UrlParams, HttpClientError.ResponseError> {
    return Effect.flatMap(this.text, (text) => {
      try {
        return Effect.succeed(UrlParams.fromInput(new URLSearchParams(text)))
      } catch (cause) {
        return Effect.fail(this.decodeError(cause))
      }
    })
  }

  private readonly bytesPromise = () =>
    this.bodyBytes ??= this.bodyText === undefined
      ? this.source.arrayBuffer()
      : this.bodyText.then((text) => new TextEncoder().encode(text).buffer as ArrayBuffer)

  get arrayBuffer(): Effect.Effect<ArrayBuffer, HttpClientError.ResponseError> {
    return Effect.suspend(() => this.readBody(this.bytesPromise))
  }

  get formData(): Effect.Effect<FormData, HttpClientError.ResponseError> {
    return Effect.suspend(() =>
      this.bodyText === undefined && this.bodyBytes === undefined && !this.source.bodyUsed
        ? this.readBody(() => this.source.formData())
        // Already read otherwise: parse what was read, given its type.
        : Effect.flatMap(this.arrayBuffer, (bytes) =>
          Effect.tryPromise({
            try: () =>
              new Response(bytes, { headers: { "content-type": this.headers["content-type"] ?? "" } }).formData(),
            catch: (cause) => this.decodeError(cause)
          }))
    )
  }

  get stream(): Stream.Stream<Uint8Array, HttpClientError.ResponseError> {
    return Stream.suspend(() =>
      this.source.body === null
        ? Stream.fail(
          new HttpClientError.ResponseError({
            request: this.request,
            response: this,
            reason: "EmptyBody",
            description: "can not create stream from empty body"
          })
        )
        : Stream.unwrapScoped(Effect.map(
          Effect.acquireRelease(Effect.sync(() => this[ByteSource.TypeId]()), (source) => Effect.sync(source.close)),
          (source) => Stream.repeatEffectChunkOption(source.pull)
        ))
    )
  }

  /** The router's fast path: the body as a plain pull of its reader, without a stream executor of its own. */
  [ByteSource.TypeId](): ByteSource.ByteSource {
    this.claim()
    const body = this.source.body
    if (body === null) return failedSource(Option.none())
    let reader: ReadableStreamDefaultReader<Uint8Array>
    try {
      reader = body.getReader()
    } catch (cause) {
      // Already read (`text`, `stream`, …): a body is read once.
      return failedSource(Option.some(this.decodeError(cause)))
    }
    return makeByteSource(reader, (cause) => this.decodeError(cause))
  }

  toJSON(): unknown {
    // Only what is already known: inspecting a response must not start reading its body.
    return {
      _id: "@effect/platform/HttpClientResponse",
      request: this.request.toJSON(),
      status: this.status,
      headers: Inspectable.redact(this.headers),
      remoteAddress: Option.none<string>().toJSON(),
      ...(this.textResult === undefined ? {} : { body: this.textResult })
    }
  }
}

type ReadResult = ReadableStreamReadResult<Uint8Array>

/**
 * The body as a pull of its reader's reads, in order, one network read per pull. Closing before the end cancels the
 * body, which aborts the request (its connection is closed); releasing it lets the rest arrive and be dropped.
 */
const makeByteSource = (
  reader: ReadableStreamDefaultReader<Uint8Array>,
  onError: (cause: unknown) => HttpClientError.ResponseError
): ByteSource.ByteSource => {
  let ended = false
  let failure: Option.Option<HttpClientError.ResponseError> | undefined = undefined
  let closed = false

  const read = Effect.async<Chunk.Chunk<Uint8Array>, Option.Option<HttpClientError.ResponseError>>((resume) => {
    reader.read().then(
      (result: ReadResult) => {
        if (result.done) {
          ended = true
          resume(end)
        } else {
          resume(Effect.succeed(Chunk.of(result.value)))
        }
      },
      (cause) => {
        failure = Option.some(onError(cause))
        resume(Effect.fail(failure))
      }
    )
  })
  const end = Effect.fail(Option.none())
  const pull: Effect.Effect<Chunk.Chunk<Uint8Array>, Option.Option<HttpClientError.ResponseError>> = Effect.suspend(
    () => ended ? end : failure !== undefined ? Effect.fail(failure) : read
  )
  const cancel = () => {
    reader.cancel().catch(noop)
  }
  const close = () => {
    if (closed) return
    closed = true
    if (!ended && failure === undefined) cancel()
  }
  const release = () => {
    if (closed) return
    closed = true
    if (ended || failure !== undefined) return
    let dropped = 0
    let finished = false
    const finish = (abort: boolean) => {
      if (finished) return
      finished = true
      clearTimeout(timer)
      if (abort) cancel()
    }
    const timer = setTimeout(() => finish(true), ByteSource.releaseMaxMillis)
    if (typeof timer === "object" && typeof timer.unref === "function") timer.unref()
    const drop = (): void => {
      reader.read().then(
        (result: ReadResult) => {
          if (finished) return
          if (result.done) return finish(false)
          dropped += result.value.byteLength
          if (dropped > ByteSource.releaseLimitBytes) finish(true)
          else drop()
        },
        () => finish(false)
      )
    }
    drop()
  }
  return { pull, close, release }
}

const failedSource = (
  error: Option.Option<HttpClientError.ResponseError>
): ByteSource.ByteSource => ({ pull: Effect.fail(error), close: noop, release: noop })
