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
import type * as UrlParams from "@effect/platform/UrlParams"
import * as Chunk from "effect/Chunk"
import type * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import { globalValue } from "effect/GlobalValue"
import * as Inspectable from "effect/Inspectable"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as BodyParse from "./bodyParse.js"
import * as ByteSource from "./byteSource.js"
import * as UntracedClient from "./untracedClient.js"
import * as UrlCache from "./urlCache.js"

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

/**
 * What aborts a request of the direct path. Always a real `AbortController`: a lighter object shaped like a signal is
 * accepted by Node's fetch, but its `Request` then asks `events.getMaxListeners` about it, which throws (and builds a
 * stack trace) on every request, costing more than the controller (measured: 31 µs per call of error construction).
 */
type Abort = AbortController

const abortRequest = (abort: Abort): void => {
  if (!abort.signal.aborted) abort.abort()
}

// A response whose body is never read would hold its connection until the fetch implementation collects it: abort it
// when our response is collected (as the platform's client does for its own).
const unreadBodies = globalValue(
  "effect-llm-router/FetchRouterHttpClient/unreadBodies",
  () => typeof FinalizationRegistry === "function" ? new FinalizationRegistry<Abort>(abortRequest) : undefined
)

// Its normal form (fetch parses the string once more anyway).
const resolveUrl = UrlCache.make((url) => url.href)

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

/**
 * `signal`: the platform's (through `execute`), or `undefined` on the direct path, whose request gets an abort of its
 * own, aborted when the fiber is interrupted before the headers arrive (and when its response is collected unread).
 */
const send = (
  request: HttpClientRequest.HttpClientRequest,
  url: string | URL,
  context: Context.Context<never>,
  defaults: Defaults,
  signal: AbortSignal | undefined
): Effect.Effect<HttpClientResponse.HttpClientResponse, HttpClientError.RequestError> => {
  const fetch: Fetch = context.unsafeMap.get(fetchKey) ?? defaults.fetch ?? globalThis.fetch
  const init: RequestInit | undefined = context.unsafeMap.get(requestInitKey) ?? defaults.init
  const owned: Abort | undefined = signal !== undefined ? undefined : new AbortController()
  const dispatch = (body: BodyInit | null, duplex: boolean) =>
    Effect.async<HttpClientResponse.HttpClientResponse, HttpClientError.RequestError>((resume) => {
      const options: RequestInit & { duplex?: "half" } = {
        ...init,
        method: request.method,
        headers: fetchHeaders(request.headers, init),
        body,
        signal: owned === undefined ? signal! : owned.signal
      }
      if (duplex) options.duplex = "half"
      let pending: Promise<Response>
      try {
        pending = fetch(url, options)
      } catch (cause) {
        pending = Promise.reject(cause)
      }
      pending.then(
        (response) => {
          if (owned === undefined || !prefetchable(response)) {
            return resume(Effect.succeed(new FetchResponse(request, response, owned, undefined)))
          }
          // The router's own request, answered with a JSON body of known length: read it before resuming, so that
          // the router's read of it is synchronous (one fiber suspension per call instead of two).
          const read = readAll(response.body!.getReader())
          const respond = (bytes: Uint8Array | undefined) =>
            resume(Effect.succeed(new FetchResponse(request, response, owned, { read, bytes })))
          read.bytes.then(respond, () => respond(undefined))
        },
        (cause) => resume(Effect.fail(new HttpClientError.RequestError({ request, reason: "Transport", cause })))
      )
      return owned === undefined ? undefined : Effect.sync(() => abortRequest(owned))
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
    send(request, url, fiber.currentContext, defaults, signal)
  )
  // The router's untraced requests come here directly (see internal/untracedClient.ts): no span to skip, no `URL` per
  // call, no wrapper around the response, whose body the router reads as a `ByteSource`. A client wrapped by the
  // caller's own combinators is a new object without it, so their wrapping is never bypassed.
  const direct: UntracedClient.Execute = (request) =>
    Effect.withFiberRuntime<HttpClientResponse.HttpClientResponse, HttpClientError.HttpClientError>((fiber) => {
      const url = resolveUrl(request)
      if (typeof url !== "string") return Effect.fail(url)
      return send(request, url, fiber.currentContext, defaults, undefined)
    })
  return Object.assign(client, { [UntracedClient.TypeId]: direct })
}

const utf8 = new TextDecoder()
const noBytes = new Uint8Array(0)

/** A whole-body read in progress, cancelled (its connection closed) when the read is interrupted. */
interface BodyRead {
  readonly bytes: Promise<Uint8Array>
  readonly cancel: Effect.Effect<void>
}

/** The largest body read before its response is handed over (see {@link prefetchable}). */
const prefetchMaxBytes = 1024 * 1024

/**
 * Whether a response of the router's own is read whole before it is handed over: a JSON body (a completion, an error)
 * of a known length, at most `prefetchMaxBytes`, which the router reads whole anyway. A stream's body (`text/event-stream`,
 * no length) never is.
 */
const prefetchable = (response: Response): boolean => {
  if (response.body === null) return false
  const headers = response.headers
  const length = headers.get("content-length")
  if (length === null || !(Number(length) <= prefetchMaxBytes)) return false
  const type = headers.get("content-type")
  return type !== null && type.includes("json")
}

/** Reads `reader` to its end: the body's bytes, in one array. A cancelled read fails rather than end short. */
const readAll = (reader: ReadableStreamDefaultReader<Uint8Array>): BodyRead => {
  let cancelled = false
  const parts: Array<Uint8Array> = []
  let length = 0
  const bytes = new Promise<Uint8Array>((resolve, reject) => {
    const next = (result: ReadableStreamReadResult<Uint8Array>): void => {
      if (cancelled) return reject(new Error("the body read was interrupted"))
      if (!result.done) {
        parts.push(result.value)
        length += result.value.byteLength
        reader.read().then(next, reject)
        return
      }
      if (parts.length === 1) return resolve(parts[0]!)
      if (parts.length === 0) return resolve(noBytes)
      const all = new Uint8Array(length)
      let offset = 0
      for (const part of parts) {
        all.set(part, offset)
        offset += part.byteLength
      }
      resolve(all)
    }
    reader.read().then(next, reject)
  })
  const cancel = Effect.sync(() => {
    if (cancelled) return
    cancelled = true
    reader.cancel().catch(noop)
  })
  return { bytes, cancel }
}

class FetchResponse extends Inspectable.Class implements HttpClientResponse.HttpClientResponse {
  readonly [HttpIncomingMessage.TypeId]: HttpIncomingMessage.TypeId = HttpIncomingMessage.TypeId
  readonly [HttpClientResponse.TypeId]: HttpClientResponse.TypeId = HttpClientResponse.TypeId
  readonly status: number
  private collectable: boolean
  private bodyRead: BodyRead | undefined = undefined
  /** The whole body, once read (and read successfully). */
  private bodyBytes: Uint8Array | undefined = undefined
  private textResult: string | undefined = undefined
  private cachedHeaders: Headers.Headers | undefined = undefined
  private cachedCookies: Cookies.Cookies | undefined = undefined

  /**
   * `abort`: the request's own, on the router's direct path, aborted if the response is collected unread.
   * `prefetched`: the body's read when it was read before the response was handed over, and its bytes if it succeeded.
   */
  constructor(
    readonly request: HttpClientRequest.HttpClientRequest,
    private readonly source: Response,
    abort: Abort | undefined,
    prefetched: { readonly read: BodyRead; readonly bytes: Uint8Array | undefined } | undefined
  ) {
    super()
    this.status = source.status
    if (prefetched !== undefined) {
      this.bodyRead = prefetched.read
      this.bodyBytes = prefetched.bytes
    }
    this.collectable = prefetched === undefined && abort !== undefined && unreadBodies !== undefined &&
      source.body !== null
    if (this.collectable) unreadBodies!.register(this, abort!, this)
  }

  /** The body is being read: from now on its reader owns it (and cancels it if the read is cut short). */
  private claim(): void {
    if (this.collectable) {
      this.collectable = false
      unreadBodies!.unregister(this)
    }
  }

  private decodeError(cause: unknown): HttpClientError.ResponseError {
    return new HttpClientError.ResponseError({ request: this.request, response: this, reason: "Decode", cause })
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

  /**
   * The whole body, read once through its reader (the same bytes for every later read): a read that is interrupted
   * cancels the body, which aborts the request, whichever way the request was sent.
   */
  private readonly bytes: Effect.Effect<Uint8Array, HttpClientError.ResponseError> = Effect.suspend(() =>
    this.bodyBytes !== undefined ? Effect.succeed(this.bodyBytes) : this.readBytes
  )

  private readonly readBytes: Effect.Effect<Uint8Array, HttpClientError.ResponseError> = Effect.async((resume) => {
    this.claim()
    let read = this.bodyRead
    if (read === undefined) {
      const body = this.source.body
      try {
        read = body === null ? { bytes: Promise.resolve(noBytes), cancel: Effect.void } : readAll(body.getReader())
      } catch (cause) {
        // Its reader is taken (the stream is being read): a body is read once.
        read = { bytes: Promise.reject(cause), cancel: Effect.void }
      }
      this.bodyRead = read
    }
    read.bytes.then(
      (bytes) => {
        this.bodyBytes = bytes
        resume(Effect.succeed(bytes))
      },
      (cause) => resume(Effect.fail(this.decodeError(cause)))
    )
    return read.cancel
  })

  private readonly decodeText = (bytes: Uint8Array): string =>
    // `TextDecoder` drops a leading BOM, as `Response.text` does.
    this.textResult ??= utf8.decode(bytes)

  get text(): Effect.Effect<string, HttpClientError.ResponseError> {
    return Effect.suspend(() =>
      this.textResult !== undefined ? Effect.succeed(this.textResult) : Effect.map(this.bytes, this.decodeText)
    )
  }

  get json(): Effect.Effect<unknown, HttpClientError.ResponseError> {
    return BodyParse.json(this.text, (cause) => this.decodeError(cause))
  }

  get urlParamsBody(): Effect.Effect<UrlParams.UrlParams, HttpClientError.ResponseError> {
    return BodyParse.urlParams(this.text, (cause) => this.decodeError(cause))
  }

  get arrayBuffer(): Effect.Effect<ArrayBuffer, HttpClientError.ResponseError> {
    return Effect.map(this.bytes, (bytes) =>
      // A copy: the caller owns the buffer (and a read's bytes may be a view on a larger one).
      bytes.slice().buffer as ArrayBuffer)
  }

  get formData(): Effect.Effect<FormData, HttpClientError.ResponseError> {
    // The WHATWG `Response` parses form data, given the bytes and the type.
    return Effect.flatMap(this.bytes, (bytes) =>
      Effect.tryPromise({
        try: () =>
          new Response(bytes as BodyInit, { headers: { "content-type": this.headers["content-type"] ?? "" } })
            .formData(),
        catch: (cause) => this.decodeError(cause)
      }))
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
    // Read before it was handed over: the bytes as one read.
    if (this.bodyRead !== undefined) return readSource(this.bytes)
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
    return BodyParse.inspect(this, this.textResult)
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

/** A body already read whole (or being read), as a source: its bytes as one read, then the end. */
const readSource = (bytes: Effect.Effect<Uint8Array, HttpClientError.ResponseError>): ByteSource.ByteSource => {
  let done = false
  const end = Effect.fail(Option.none())
  const pull = Effect.suspend(() => {
    if (done) return end
    done = true
    return Effect.mapBoth(bytes, {
      onFailure: Option.some,
      onSuccess: (bytes): Chunk.Chunk<Uint8Array> => bytes.length === 0 ? Chunk.empty() : Chunk.of(bytes)
    })
  })
  return { pull, close: noop, release: noop }
}

const failedSource = (
  error: Option.Option<HttpClientError.ResponseError>
): ByteSource.ByteSource => ({ pull: Effect.fail(error), close: noop, release: noop })
