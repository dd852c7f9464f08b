/**
 * A faster way to read a streamed body than `response.stream`. Pulling a body through `Stream.toPull` runs a second
 * channel executor per stream, which costs more than everything else the router does per stream. An HTTP client
 * layer of ours (the undici one) offers its body as a plain pull instead; other clients fall back to
 * `response.stream`.
 *
 * @internal
 */
import type * as HttpClientError from "@effect/platform/HttpClientError"
import type * as Chunk from "effect/Chunk"
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"

/** @internal */
export const TypeId: unique symbol = Symbol.for("effect-llm-router/ByteSource")

/** @internal */
export interface ByteSource {
  /** The network reads that arrived since the last pull (waits for one); fails with `None` at the end. */
  readonly pull: Effect.Effect<Chunk.Chunk<Uint8Array>, Option.Option<HttpClientError.ResponseError>>
  /** Stops reading; a body not read to its end is aborted (its socket closes). */
  readonly close: () => void
}

/** @internal */
export interface HasByteSource {
  readonly [TypeId]: () => ByteSource
}

/** @internal */
export const hasByteSource = (u: unknown): u is HasByteSource =>
  Predicate.hasProperty(u, TypeId) && typeof (u as Record<symbol, unknown>)[TypeId] === "function"
