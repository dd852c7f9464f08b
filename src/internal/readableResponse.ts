/**
 * A response whose body is a Node `Readable` (undici's `request`, `node:http`), shared by the client layers built on
 * one (`NodeRouterHttpClient`, `RouterHttpClient`'s `node:http` client). Uses no Node module itself: the body and its
 * headers come from the layer.
 *
 * @internal
 */
import * as Cookies from "@effect/platform/Cookies"
import * as Headers from "@effect/platform/Headers"
import * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import type * as UrlParams from "@effect/platform/UrlParams"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import { globalValue } from "effect/GlobalValue"
import * as Inspectable from "effect/Inspectable"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { Readable } from "node:stream"
import * as BodyParse from "./bodyParse.js"
import * as ByteSource from "./byteSource.js"

const noop = () => {}

/**
 * Destroys a body that has not been read to its end, which aborts its request (closing its socket).
 *
 * @internal
 */
export const abortBody = (body: Readable): void => {
  if (body.destroyed || body.readableEnded) return
  body.on("error", noop)
  body.destroy()
}

// A response whose body is never read would hold its connection forever: abort it when the response is collected.
// (This module is loaded by the main entry on every runtime, some without `FinalizationRegistry`; it only runs on Node.)
const unreadBodies = globalValue(
  "effect-llm-router/NodeRouterHttpClient/unreadBodies",
  () => typeof FinalizationRegistry === "function" ? new FinalizationRegistry<Readable>(abortBody) : undefined
)

/**
 * A response's headers as Node gives them: lower-case names, `set-cookie` as an array.
 *
 * @internal
 */
export type IncomingHeaders = Readonly<Record<string, string | ReadonlyArray<string> | undefined>>

/**
 * Reads `body` to its end, in one buffer; a body destroyed before its end is a failure, never a short read.
 *
 * @internal
 */
export const readAll = (body: Readable): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    if (body.errored !== null) return reject(body.errored)
    if (body.destroyed && !body.readableEnded) return reject(new Error("the response body was aborted"))
    const parts: Array<Buffer> = []
    const finish = () => {
      body.off("data", onData)
      body.off("end", onEnd)
      body.off("error", onError)
      body.off("close", onClose)
    }
    const onData = (chunk: Buffer) => {
      parts.push(chunk)
    }
    const onEnd = () => {
      finish()
      resolve(parts.length === 1 ? parts[0]! : Buffer.concat(parts))
    }
    const onError = (cause: unknown) => {
      finish()
      reject(cause)
    }
    const onClose = () => {
      finish()
      reject(new Error("the response body was aborted"))
    }
    body.on("data", onData)
    body.on("end", onEnd)
    body.on("error", onError)
    body.on("close", onClose)
  })

/** UTF-8 text without a leading byte-order mark, as WHATWG `text()` decodes it. */
const decodeText = (bytes: Buffer): string =>
  bytes.toString(
    "utf8",
    bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0
  )

// Past this many unread bytes the body is paused, so the client stops reading the socket until the consumer catches up.
const streamHighWaterMark = 64 * 1024

/** @internal */
export class ReadableResponse extends Inspectable.Class implements HttpClientResponse.HttpClientResponse {
  readonly [HttpIncomingMessage.TypeId]: HttpIncomingMessage.TypeId = HttpIncomingMessage.TypeId
  readonly [HttpClientResponse.TypeId]: HttpClientResponse.TypeId = HttpClientResponse.TypeId
  readonly status: number
  private collectable: boolean
  private bodyText: Promise<string> | undefined = undefined
  private textResult: string | undefined = undefined
  private bodyBytes: Promise<ArrayBuffer> | undefined = undefined
  private cachedHeaders: Headers.Headers | undefined = undefined
  private cachedCookies: Cookies.Cookies | undefined = undefined

  constructor(
    readonly request: HttpClientRequest.HttpClientRequest,
    status: number,
    private readonly rawHeaders: IncomingHeaders,
    private readonly body: Readable,
    collectable: boolean,
    /** The whole body, when the client read it before handing the response over (its `body` has then ended). */
    private readonly prefetched?: Buffer
  ) {
    super()
    this.status = status
    // A socket error while nobody reads the body must not become an unhandled 'error' event.
    this.body.on("error", noop)
    this.collectable = collectable && prefetched === undefined
    if (this.collectable) unreadBodies?.register(this, this.body, this)
  }

  /** The body is being read: from now on its reader owns it (and aborts it if the read is cut short). */
  private claim(): void {
    if (this.collectable) {
      this.collectable = false
      unreadBodies?.unregister(this)
    }
  }

  private decodeError(cause: unknown): HttpClientError.ResponseError {
    return new HttpClientError.ResponseError({ request: this.request, response: this, reason: "Decode", cause })
  }

  private interruptBody: Effect.Effect<void> | undefined = undefined
  private get interrupt(): Effect.Effect<void> {
    return this.interruptBody ??= Effect.sync(() => abortBody(this.body))
  }

  get headers(): Headers.Headers {
    return this.cachedHeaders ??= Headers.fromInput(this.rawHeaders as Headers.Input)
  }

  get cookies(): Cookies.Cookies {
    if (this.cachedCookies !== undefined) return this.cachedCookies
    const header = this.rawHeaders["set-cookie"]
    return this.cachedCookies = header === undefined
      ? Cookies.empty
      : Cookies.fromSetCookie(typeof header === "string" ? [header] : header)
  }

  get remoteAddress(): Option.Option<string> {
    return Option.none()
  }

  get text(): Effect.Effect<string, HttpClientError.ResponseError> {
    return Effect.suspend(() => {
      if (this.textResult !== undefined) return Effect.succeed(this.textResult)
      if (this.prefetched !== undefined) {
        const text = this.textResult = decodeText(this.prefetched)
        this.bodyText = Promise.resolve(text)
        return Effect.succeed(text)
      }
      const buffered = this.bufferedText()
      return buffered === undefined ? this.readText : Effect.succeed(buffered)
    })
  }

  /**
   * The whole body as text when every byte of it has already arrived (its `content-length` is buffered, the usual case
   * for a JSON reply by the time the caller reads it): one synchronous read instead of a round of promises and fiber
   * resumptions. `undefined` when the body is still arriving, has no length, or is being read otherwise.
   */
  private bufferedText(): string | undefined {
    const body = this.body
    if (this.bodyText !== undefined || this.bodyBytes !== undefined || body.readableFlowing !== null) return undefined
    const length = this.rawHeaders["content-length"]
    if (length === undefined || body.readableLength !== Number(length) || !body.readable) return undefined
    this.claim()
    const bytes = body.read() as Buffer | null
    // Let the body reach its end (and close), so the client releases its connection.
    body.resume()
    const text = bytes === null ? "" : decodeText(bytes)
    this.textResult = text
    this.bodyText = Promise.resolve(text)
    return text
  }

  private get readText(): Effect.Effect<string, HttpClientError.ResponseError> {
    return Effect.async((resume) => {
      this.claim()
      const text = this.bodyText ??= this.bodyBytes === undefined
        ? readAll(this.body).then(decodeText)
        : this.bodyBytes.then((bytes) => decodeText(Buffer.from(bytes)))
      text.then(
        (value) => {
          this.textResult = value
          resume(Effect.succeed(value))
        },
        (cause) => resume(Effect.fail(this.decodeError(cause)))
      )
      return this.interrupt
    })
  }

  get json(): Effect.Effect<unknown, HttpClientError.ResponseError> {
    return BodyParse.json(this.text, (cause) => this.decodeError(cause))
  }

  get urlParamsBody(): Effect.Effect<UrlParams.UrlParams, HttpClientError.ResponseError> {
    return BodyParse.urlParams(this.text, (cause) => this.decodeError(cause))
  }

  get arrayBuffer(): Effect.Effect<ArrayBuffer, HttpClientError.ResponseError> {
    return Effect.async((resume) => {
      this.claim()
      const prefetched = this.prefetched
      const bytes = this.bodyBytes ??= prefetched !== undefined
        ? Promise.resolve(
          prefetched.buffer.slice(prefetched.byteOffset, prefetched.byteOffset + prefetched.byteLength) as ArrayBuffer
        )
        : this.bodyText === undefined
        ? readAll(this.body).then((bytes) =>
          bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer
        )
        : this.bodyText.then((text) => new TextEncoder().encode(text).buffer as ArrayBuffer)
      bytes.then(
        (value) => resume(Effect.succeed(value)),
        (cause) => resume(Effect.fail(this.decodeError(cause)))
      )
      return this.interrupt
    })
  }

  get formData(): Effect.Effect<FormData, HttpClientError.ResponseError> {
    // A `Readable` cannot parse form data; the WHATWG `Response` can, given the bytes and the type.
    return Effect.flatMap(this.arrayBuffer, (bytes) =>
      Effect.tryPromise({
        try: () => new Response(bytes, { headers: { "content-type": this.headers["content-type"] ?? "" } }).formData(),
        catch: (cause) => this.decodeError(cause)
      }))
  }

  get stream(): Stream.Stream<Uint8Array, HttpClientError.ResponseError> {
    return Stream.unwrapScoped(Effect.map(
      Effect.acquireRelease(Effect.sync(() => this[ByteSource.TypeId]()), (source) => Effect.sync(source.close)),
      (source) => Stream.repeatEffectChunkOption(source.pull)
    ))
  }

  /** The router's fast path: the body as a plain pull, without a stream executor of its own. */
  [ByteSource.TypeId](): ByteSource.ByteSource {
    this.claim()
    if (this.prefetched !== undefined) return bytesSource(this.prefetched)
    return makeByteSource(this.body, (cause) => this.decodeError(cause))
  }

  toJSON(): unknown {
    return BodyParse.inspect(this, this.textResult)
  }
}

/**
 * The body as a pull of its network reads, in order. The Readable runs in flowing mode ('data' hands over each read
 * as the client pushes it); past `streamHighWaterMark` unread bytes it is paused, which makes the client stop reading the
 * socket. Closing before the end destroys the body, which aborts the request.
 */
export const makeByteSource = (
  body: Readable,
  onError: (cause: unknown) => HttpClientError.ResponseError
): ByteSource.ByteSource => {
  if (body.errored !== null) return failedSource(Option.some(onError(body.errored)))
  if (body.destroyed && !body.readableEnded) {
    return failedSource(Option.some(onError(new Error("the response body was aborted"))))
  }
  if (!body.readable) return failedSource(Option.none())

  let queue: Array<Uint8Array> = []
  let queued = 0
  let paused = false
  let ended = false
  let failed = false
  let closed = false
  let failure: unknown = undefined
  let wake: ((effect: Effect.Effect<void>) => void) | undefined = undefined

  const notify = () => {
    if (wake !== undefined) {
      const resume = wake
      wake = undefined
      resume(Effect.void)
    }
  }
  const onData = (chunk: Uint8Array) => {
    queue.push(chunk)
    queued += chunk.length
    if (wake !== undefined) notify()
    else if (!paused && queued >= streamHighWaterMark) {
      paused = true
      body.pause()
    }
  }
  const onEnd = () => {
    ended = true
    notify()
  }
  const onFailure = (cause: unknown) => {
    failed = true
    failure = cause
    notify()
  }
  body.on("data", onData)
  body.on("end", onEnd)
  body.on("error", onFailure)

  const wait = Effect.async<void>((resume) => {
    wake = resume
    return Effect.sync(() => {
      wake = undefined
    })
  })
  const pull: Effect.Effect<Chunk.Chunk<Uint8Array>, Option.Option<HttpClientError.ResponseError>> = Effect.suspend(
    () => {
      if (queue.length > 0) {
        const reads = Chunk.unsafeFromArray(queue)
        queue = []
        queued = 0
        if (paused) {
          paused = false
          body.resume()
        }
        return Effect.succeed(reads)
      }
      if (failed) return Effect.fail(Option.some(onError(failure)))
      if (ended) return Effect.fail(Option.none())
      return waitThenPull
    }
  )
  const waitThenPull = Effect.zipRight(wait, pull)
  const stop = () => {
    closed = true
    queue = []
    body.off("data", onData)
    body.off("end", onEnd)
    body.off("error", onFailure)
  }
  const close = () => {
    if (closed) return
    stop()
    if (!ended) abortBody(body)
  }
  const release = () => {
    if (closed) return
    stop()
    if (ended || failed) return
    let dropped = 0
    const finish = (abort: boolean) => {
      clearTimeout(timer)
      body.off("data", onDropped)
      body.off("end", onDone)
      body.off("error", onDone)
      if (abort) abortBody(body)
    }
    const onDropped = (chunk: Uint8Array) => {
      dropped += chunk.length
      if (dropped > ByteSource.releaseLimitBytes) finish(true)
    }
    const onDone = () => finish(false)
    const timer = setTimeout(() => finish(true), ByteSource.releaseMaxMillis)
    timer.unref()
    body.on("data", onDropped)
    body.on("end", onDone)
    body.on("error", onDone)
    if (paused) body.resume()
  }
  return { pull, close, release }
}

const failedSource = (
  error: Option.Option<HttpClientError.ResponseError>
): ByteSource.ByteSource => ({ pull: Effect.fail(error), close: noop, release: noop })

/** A body already read whole: its bytes in one pull, then the end. */
const bytesSource = (bytes: Buffer): ByteSource.ByteSource => {
  let done = bytes.length === 0
  return {
    pull: Effect.suspend(() => {
      if (done) return Effect.fail(Option.none())
      done = true
      return Effect.succeed(Chunk.of<Uint8Array>(bytes))
    }),
    close: () => {
      done = true
    },
    release: () => {
      done = true
    }
  }
}
