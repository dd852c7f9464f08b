/**
 * A faster way to read a streamed body than `response.stream`. Pulling a body through `Stream.toPull` runs a second
 * channel executor per stream, which costs more than everything else the router does per stream. An HTTP client
 * layer of ours (the undici one) offers its body as a plain pull instead; other clients (the platform's fetch client
 * among them) are read through `response.stream`, with public APIs only.
 *
 * @internal
 */
import type * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import type * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import type * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Scope from "effect/Scope"

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
 * The response's body as a `ByteSource` when the client offers one (our undici layer), otherwise `undefined`: the
 * caller then reads `response.stream` (see `drainThenClose` for its release).
 *
 * @internal
 */
export const fromResponse = (response: HttpClientResponse.HttpClientResponse): ByteSource | undefined =>
  hasByteSource(response) ? response[TypeId]() : undefined

/**
 * The release of a body read through `Stream.toPull(response.stream)`, in the background: pulls and drops what is
 * left until the body ends (then `bodyScope` closes on a finished stream, and the connection is reused), or past
 * `releaseLimitBytes`, or after `releaseMaxMillis` (then closing `bodyScope` cancels the body, which aborts the
 * request). Returns at once.
 *
 * @internal
 */
export const drainThenClose = (
  pull: Effect.Effect<Chunk.Chunk<Uint8Array>, Option.Option<HttpClientError.ResponseError>>,
  bodyScope: Scope.CloseableScope
): Effect.Effect<void> => {
  let dropped = 0
  let timer: ReturnType<typeof setTimeout> | undefined = undefined
  const loop: Effect.Effect<void> = Effect.matchEffect(pull, {
    onFailure: () => Effect.void,
    onSuccess: (reads) => {
      for (const bytes of reads) dropped += bytes.byteLength
      return dropped > releaseLimitBytes ? Effect.void : loop
    }
  })
  const drain = Effect.ensuring(
    loop,
    Effect.suspend(() => {
      clearTimeout(timer)
      return Scope.close(bodyScope, Exit.void)
    })
  )
  // Interruptible: a fiber forked in a finalizer would otherwise inherit its uninterruptible region.
  return Effect.map(Effect.forkDaemon(Effect.interruptible(drain)), (fiber) => {
    // A plain timer rather than `Effect.timeout`: the window is wall-clock time, whatever `Clock` the caller runs.
    timer = setTimeout(() => fiber.unsafeInterruptAsFork(FiberId.none), releaseMaxMillis)
    timer.unref?.()
  })
}
