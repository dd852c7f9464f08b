/**
 * One attempt over HTTP: send the protocol's request, map the status, decode the body. Shared by every protocol.
 *
 * @internal
 */
import type * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import type * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { ChatChunk } from "../ChatChunk.js"
import type { Call, Endpoint, ResponseData, StreamDecoder } from "../Provider.js"
import type { AttemptError } from "../RouterError.js"
import * as ByteSource from "./byteSource.js"
import * as errors from "./errorMapping.js"
import * as SseReader from "./sseReader.js"

/** @internal */
export interface Context {
  /** Sends a request: the client's `execute`, or its untraced send when no tracer is installed. */
  readonly execute: (
    request: HttpClientRequest.HttpClientRequest
  ) => Effect.Effect<HttpClientResponse.HttpClientResponse, HttpClientError.HttpClientError>
  readonly endpoint: Endpoint
  readonly redact: (text: string) => string
}

const describeCause = (cause: unknown): string => {
  const parts: Array<string> = []
  let current: unknown = cause
  for (let depth = 0; depth < 4 && current !== undefined && current !== null; depth++) {
    if (typeof current === "object") {
      const o = current as { readonly code?: unknown; readonly message?: unknown; readonly cause?: unknown }
      if (typeof o.code === "string") parts.push(o.code)
      else if (typeof o.message === "string" && o.message.length > 0) parts.push(o.message)
      current = o.cause
    } else {
      parts.push(String(current))
      break
    }
  }
  return parts.length === 0 ? "connection failed" : [...new Set(parts)].join(": ")
}

/** @internal */
export const networkError = (call: Call, cause: unknown, redact: (text: string) => string, prefix = ""): AttemptError =>
  errors.make("NetworkError", call, { reason: redact(prefix + describeCause(cause)) })

const send = (
  ctx: Context,
  call: Call
): Effect.Effect<HttpClientResponse.HttpClientResponse, AttemptError> =>
  ctx.execute(ctx.endpoint.httpRequest(call)).pipe(
    Effect.catchAll((error) =>
      error._tag === "RequestError" && error.reason !== "Transport"
        ? Effect.fail(errors.make("BadRequest", call, { body: ctx.redact(`${error.reason}: ${error.message}`) }))
        : Effect.fail(networkError(call, error.cause ?? error, ctx.redact))
    ),
    Effect.flatMap((response) =>
      response.status >= 200 && response.status < 300
        ? Effect.succeed(response)
        : Effect.flatMap(failFromStatus(ctx, call, response), Effect.fail)
    )
  )

const failFromStatus = (
  ctx: Context,
  call: Call,
  response: HttpClientResponse.HttpClientResponse
): Effect.Effect<AttemptError> =>
  Effect.map(
    Effect.zip(Effect.orElseSucceed(response.text, () => ""), Clock.currentTimeMillis),
    ([bodyText, now]) =>
      errors.fromStatus({
        call,
        status: response.status,
        headers: response.headers,
        bodyText,
        nowMillis: now,
        redact: ctx.redact,
        overrides: ctx.endpoint.statusOverrides as Record<number, AttemptError["_tag"]>,
        classify: ctx.endpoint.classifyError
      })
  )

/**
 * A non-streaming attempt.
 *
 * @internal
 */
export const generate = (ctx: Context, call: Call): Effect.Effect<ResponseData, AttemptError> =>
  Effect.flatMap(send(ctx, call), (response) =>
    Effect.flatMap(
      Effect.mapError(response.text, (e) => networkError(call, e.cause ?? e, ctx.redact, "reading the body: ")),
      (text) => {
        let body: unknown
        try {
          body = JSON.parse(text)
        } catch {
          return Effect.fail(
            errors.make("MalformedResponse", call, {
              status: response.status,
              body: errors.excerpt(text, ctx.redact),
              reason: "body is not JSON"
            })
          )
        }
        const decoded = ctx.endpoint.decodeResponse(call, body)
        if (decoded._tag === "Right") return Effect.succeed(decoded.right)
        const left = decoded.left
        return Effect.fail(
          typeof left === "string"
            ? errors.make("MalformedResponse", call, {
              status: response.status,
              body: errors.excerpt(text, ctx.redact),
              reason: `body does not match the response schema: ${left}`
            })
            : errors.fromInBand(call, left.payload, ctx.redact, ctx.endpoint.classifyError)
        )
      }
    ))

/**
 * Why a streamed body ended badly. `reason` is what a consumer is told once content has started; `error` is the
 * attempt error used before that (when the router may still retry or fall back).
 *
 * @internal
 */
export class BodyFailure {
  readonly _tag = "BodyFailure"
  constructor(
    readonly reason: "cut" | "in-band-error" | "malformed" | "truncated",
    readonly error: AttemptError
  ) {}
}

/** @internal */
export interface BodyReader {
  /**
   * The chunks of the next network read(s) that carry any; `undefined` once the stream is complete. Reads that carry
   * only keep-alives are consumed without returning, so a timeout around `next` measures time between chunks.
   */
  readonly next: Effect.Effect<ReadonlyArray<ChatChunk> | undefined, BodyFailure>
  /** Whether the stream has been read to its end (`[DONE]` or the finish), so that `next` has nothing more to give. */
  readonly done: () => boolean
  readonly decoder: StreamDecoder
}

/**
 * Opens a streamed attempt: sends the request and checks the status. The body is read by the returned reader and
 * released when `scope` closes. The scope is passed rather than read from context: `Effect.addFinalizer` records and
 * later restores the fiber's whole state, several times the cost of everything else here.
 *
 * @internal
 */
export const openStream = (
  ctx: Context,
  call: Call,
  maxEventBytes: number,
  scope: Scope.Scope
): Effect.Effect<BodyReader, AttemptError> =>
  Effect.flatMap(send(ctx, call), (response) => {
    const source = ByteSource.fromResponse(response)
    if (source !== undefined) {
      const reader = makeBodyReader(ctx, call, source.pull, maxEventBytes)
      // A stream read to its end marker leaves the rest of the response to finish, so its connection is reused.
      return Effect.as(
        Scope.addFinalizer(scope, Effect.sync(() => reader.done() ? source.release() : source.close())),
        reader
      )
    }
    // Any other client: `response.stream`, pulled in a scope of its own so that a stream read to its end marker can
    // leave the rest of its body to finish in the background (as above) instead of cancelling it.
    return Effect.flatMap(Scope.make(), (bodyScope) => {
      let reader: BodyReader | undefined = undefined
      let pull: Effect.Effect<Chunk.Chunk<Uint8Array>, Option.Option<HttpClientError.ResponseError>> | undefined =
        undefined
      return Effect.zipRight(
        Scope.addFinalizer(
          scope,
          Effect.suspend(() =>
            reader !== undefined && pull !== undefined && reader.done()
              ? ByteSource.drainThenClose(pull, bodyScope)
              : Scope.close(bodyScope, Exit.void)
          )
        ),
        Effect.map(Scope.extend(Stream.toPull(response.stream), bodyScope), (bodyPull) => {
          pull = bodyPull
          return reader = makeBodyReader(ctx, call, bodyPull, maxEventBytes)
        })
      )
    })
  })

const makeBodyReader = (
  ctx: Context,
  call: Call,
  pull: Effect.Effect<Chunk.Chunk<Uint8Array>, Option.Option<HttpClientError.ResponseError>>,
  maxEventBytes: number
): BodyReader => {
  const reader = SseReader.make({ maxEventBytes })
  const decoder = ctx.endpoint.streamDecoder(call)
  const events: Array<SseReader.SseEvent> = []
  let complete = false
  let sawFinish = false
  // A failure found after some chunks of the same read: those chunks are delivered first, the failure next time.
  let pending: BodyFailure | undefined

  const malformed = (reason: string) =>
    new BodyFailure("malformed", errors.make("MalformedResponse", call, { reason: ctx.redact(reason) }))
  const tooLarge = () => malformed(`an SSE event exceeded ${maxEventBytes} bytes`)

  // Decodes buffered events into chunks; returns a failure, or undefined.
  const drain = (out: Array<ChatChunk>): BodyFailure | undefined => {
    for (let i = 0; i < events.length; i++) {
      const outcome = decoder.onEvent(events[i]!, out)
      if (outcome === undefined) continue
      if (outcome === "done") {
        complete = true
        break
      }
      events.length = 0
      return outcome._tag === "InBandError"
        ? new BodyFailure(
          "in-band-error",
          errors.fromInBand(call, outcome.payload, ctx.redact, ctx.endpoint.classifyError)
        )
        : malformed(outcome.reason)
    }
    events.length = 0
    for (let i = 0; i < out.length; i++) if (out[i]!._tag === "Finish") sawFinish = true
    return undefined
  }

  const onEnd = (out: Array<ChatChunk>): Effect.Effect<ReadonlyArray<ChatChunk> | undefined, BodyFailure> => {
    if (!reader.end(events)) return Effect.fail(tooLarge())
    const failure = drain(out)
    if (failure !== undefined) return deliver(out, failure)
    if (!complete && !sawFinish) {
      return Effect.fail(
        new BodyFailure(
          "truncated",
          errors.make("MalformedResponse", call, { reason: "the stream ended without its finish event or [DONE]" })
        )
      )
    }
    complete = true
    return Effect.succeed(out.length > 0 ? out : undefined)
  }

  const deliver = (out: Array<ChatChunk>, failure: BodyFailure) => {
    if (out.length === 0) return Effect.fail(failure)
    pending = failure
    return Effect.succeed(out)
  }

  // Built once: a read allocates no effect of its own beyond what the body's pull returns.
  const read: Effect.Effect<ReadonlyArray<ChatChunk> | undefined, BodyFailure> = Effect.matchEffect(pull, {
    onFailure: (cause) => {
      if (cause._tag === "None") return onEnd([])
      return Effect.fail(
        new BodyFailure("cut", networkError(call, cause.value.cause ?? cause.value, ctx.redact, "stream cut: "))
      )
    },
    onSuccess: (reads) => {
      for (const bytes of reads) {
        if (!reader.push(bytes, events)) {
          const out: Array<ChatChunk> = []
          return deliver(out, drain(out) ?? tooLarge())
        }
      }
      const out: Array<ChatChunk> = []
      const failure = drain(out)
      if (failure !== undefined) return deliver(out, failure)
      if (out.length > 0) return Effect.succeed(out)
      return loop
    }
  })
  const loop: Effect.Effect<ReadonlyArray<ChatChunk> | undefined, BodyFailure> = Effect.suspend(() => {
    if (pending !== undefined) return Effect.fail(pending)
    if (complete) return Effect.succeed(undefined)
    return read
  })

  return { next: loop, done: () => complete && pending === undefined, decoder }
}
