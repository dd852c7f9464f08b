/**
 * A faster way to read a streamed body than `response.stream`. Pulling a body through `Stream.toPull` runs a second
 * channel executor per stream, which costs more than everything else the router does per stream. An HTTP client
 * layer of ours (the undici one) offers its body as a plain pull instead; other clients fall back to
 * `response.stream`.
 *
 * @internal
 */
import * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"

/** @internal */
export const TypeId: unique symbol = Symbol.for("effect-llm-router/ByteSource")

/** @internal */
export interface ByteSource {
  /** The network reads that arrived since the last pull (waits for one); fails with `None` at the end. */
  readonly pull: Effect.Effect<Chunk.Chunk<Uint8Array>, Option.Option<HttpClientError.ResponseError>>
  /** Stops reading; a body not read to its end is aborted (its socket closes). */
  readonly close: () => void
  /**
   * Stops reading for a consumer that has all it wants (the stream's end marker arrived), and lets the response finish
   * in the background so that its connection can serve the next request: what is left is read and dropped, up to
   * `releaseLimitBytes` within `releaseMaxMillis`, and the request is aborted past either.
   */
  readonly release: () => void
}

/**
 * What a released body may still read and drop before it is aborted. A server usually ends the response right after
 * the end marker (`data: [DONE]`), often in a later network read; aborting then would cost a new connection (with TLS,
 * a round trip or more) for the next request.
 *
 * @internal
 */
export const releaseLimitBytes = 64 * 1024

/** @internal */
export const releaseMaxMillis = 1_000

/** @internal */
export interface HasByteSource {
  readonly [TypeId]: () => ByteSource
}

/** @internal */
export const hasByteSource = (u: unknown): u is HasByteSource =>
  Predicate.hasProperty(u, TypeId) && typeof (u as Record<symbol, unknown>)[TypeId] === "function"

/**
 * The web `Response` behind a response of `@effect/platform`'s fetch client (version 0.97, pinned): the platform wraps
 * it as `original.source` (interruptible wrapper) or `source`. Anything else, or a body already used, gives
 * `undefined` and the caller goes through `response.stream`.
 */
const webResponseOf = (response: HttpClientResponse.HttpClientResponse): globalThis.Response | undefined => {
  const inner = (response as { readonly original?: unknown }).original ?? response
  const source = (inner as { readonly source?: unknown }).source
  return typeof Response !== "undefined" && source instanceof Response && source.body !== null && !source.bodyUsed
    ? source
    : undefined
}

/**
 * The response's body as a `ByteSource`: the client's own when it offers one (our undici layer), a reader over the
 * web body for the platform's fetch client, otherwise `undefined`.
 *
 * @internal
 */
export const fromResponse = (response: HttpClientResponse.HttpClientResponse): ByteSource | undefined => {
  if (hasByteSource(response)) return response[TypeId]()
  const web = webResponseOf(response)
  if (web === undefined) return undefined
  const controller = (response as { readonly controller?: unknown }).controller
  const reader = web.body!.getReader()
  let done = false
  const decodeError = (cause: unknown) =>
    new HttpClientError.ResponseError({ request: response.request, response, reason: "Decode", cause })
  const pull: Effect.Effect<Chunk.Chunk<Uint8Array>, Option.Option<HttpClientError.ResponseError>> = Effect.async(
    (resume) => {
      reader.read().then(
        (result) => {
          if (result.done) {
            done = true
            resume(Effect.fail(Option.none()))
          } else {
            resume(Effect.succeed(Chunk.of(result.value)))
          }
        },
        (cause) => resume(Effect.fail(Option.some(decodeError(cause))))
      )
    }
  )
  const abort = () => {
    // Cancelling the body and aborting the request both close the connection; the abort also ends a request whose
    // body the platform still tracks.
    reader.cancel().catch(() => {})
    if (controller instanceof AbortController) controller.abort()
  }
  const close = () => {
    if (done) return
    done = true
    abort()
  }
  const release = () => {
    if (done) return
    done = true
    let dropped = 0
    const timer = setTimeout(abort, releaseMaxMillis)
    timer.unref?.()
    const drop = (): void => {
      reader.read().then(
        (result) => {
          if (result.done) return clearTimeout(timer)
          dropped += result.value.byteLength
          if (dropped > releaseLimitBytes) {
            clearTimeout(timer)
            return abort()
          }
          drop()
        },
        () => clearTimeout(timer)
      )
    }
    drop()
  }
  return { pull, close, release }
}
