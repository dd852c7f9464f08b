/**
 * Typed errors, one per failure mode.
 *
 * Per-attempt errors (`RateLimited`, `ServerError`, …) name the provider, model and attempt that failed, the HTTP
 * status and a redacted excerpt of the body when there was one, and the wait the server asked for. The error that
 * ends a routed call also carries the whole `trail` of attempts that led to it.
 *
 * @since 0.1.0
 */
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"
import { Attempt } from "./Attempt.js"

/**
 * @since 0.1.0
 * @category Type Ids
 */
export const TypeId: unique symbol = Symbol.for("effect-llm-router/RouterError")

/**
 * @since 0.1.0
 * @category Type Ids
 */
export type TypeId = typeof TypeId

// Lazy because `Attempt` refers back to these errors; the cycle is only followed when a trail is decoded.
const Trail = Schema.optional(Schema.Array(Schema.suspend((): Schema.Schema<Attempt, any> => Attempt)))

/**
 * Fields shared by every error that one attempt can produce.
 *
 * @since 0.1.0
 * @category Fields
 */
export const AttemptFields = {
  /** The provider label of the model that failed (e.g. `openai`). */
  provider: Schema.String,
  /** The model name as sent to the provider. */
  model: Schema.String,
  /** 1-based attempt number on this model. */
  attempt: Schema.Int,
  /** HTTP status, when a response arrived. */
  status: Schema.optional(Schema.Int),
  /** A short excerpt of the response body with secrets redacted. */
  body: Schema.optional(Schema.String),
  /** The wait the server asked for (`retry-after-ms` or `Retry-After`), in milliseconds. */
  retryAfterMillis: Schema.optional(Schema.NonNegative),
  /** Every attempt of the routed call up to and including this one; set on the error that ends the call. */
  trail: Trail
}

interface AttemptErrorLike {
  readonly _tag: string
  readonly provider: string
  readonly model: string
  readonly attempt: number
  readonly status?: number | undefined
  readonly body?: string | undefined
  readonly retryAfterMillis?: number | undefined
}

const describe = (self: AttemptErrorLike, summary: string): string => {
  let text = `${self.provider}/${self.model} (attempt ${self.attempt}): ${summary}`
  if (self.status !== undefined) text += ` (HTTP ${self.status})`
  if (self.retryAfterMillis !== undefined) text += `; server asked to wait ${formatMillis(self.retryAfterMillis)}`
  if (self.body !== undefined && self.body.length > 0) text += `: ${self.body}`
  return text
}

/** @internal */
export const formatMillis = (millis: number): string =>
  millis >= 1000 ? `${Number((millis / 1000).toFixed(3))}s` : `${Math.round(millis)}ms`

/**
 * Too many requests (HTTP 429 without a quota code). Retried; falls back when retries are spent.
 *
 * @since 0.1.0
 * @category Errors
 */
export class RateLimited extends Schema.TaggedError<RateLimited>("effect-llm-router/RateLimited")(
  "RateLimited",
  AttemptFields
) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  override get message(): string {
    return describe(this, "rate limited")
  }
}

/**
 * The account is out of credit (HTTP 402, or OpenAI's `insufficient_quota`). Waiting does not help: not retried, falls
 * back.
 *
 * @since 0.1.0
 * @category Errors
 */
export class QuotaExhausted extends Schema.TaggedError<QuotaExhausted>("effect-llm-router/QuotaExhausted")(
  "QuotaExhausted",
  AttemptFields
) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  override get message(): string {
    return describe(this, "quota exhausted")
  }
}

/**
 * The provider rejected the key (HTTP 401). Not retried; falls back (another provider has its own key).
 *
 * @since 0.1.0
 * @category Errors
 */
export class AuthenticationFailed
  extends Schema.TaggedError<AuthenticationFailed>("effect-llm-router/AuthenticationFailed")(
    "AuthenticationFailed",
    AttemptFields
  )
{
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  override get message(): string {
    return describe(this, "authentication failed")
  }
}

/**
 * The key may not use this model or resource (HTTP 403). Not retried; falls back.
 *
 * @since 0.1.0
 * @category Errors
 */
export class PermissionDenied extends Schema.TaggedError<PermissionDenied>("effect-llm-router/PermissionDenied")(
  "PermissionDenied",
  AttemptFields
) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  override get message(): string {
    return describe(this, "permission denied")
  }
}

/**
 * The provider rejected the request itself (HTTP 400, 409, 422 and other 4xx). Every model would reject it the same
 * way, so it is neither retried nor sent to the next model by default.
 *
 * @since 0.1.0
 * @category Errors
 */
export class BadRequest extends Schema.TaggedError<BadRequest>("effect-llm-router/BadRequest")(
  "BadRequest",
  AttemptFields
) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  override get message(): string {
    return describe(this, "bad request")
  }
}

/**
 * The prompt does not fit this model's context window. Not retried; falls back (a larger model may take it).
 *
 * @since 0.1.0
 * @category Errors
 */
export class ContextLengthExceeded
  extends Schema.TaggedError<ContextLengthExceeded>("effect-llm-router/ContextLengthExceeded")(
    "ContextLengthExceeded",
    AttemptFields
  )
{
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  override get message(): string {
    return describe(this, "context length exceeded")
  }
}

/**
 * The provider's content policy refused the request. Not retried; falls back.
 *
 * @since 0.1.0
 * @category Errors
 */
export class ContentFiltered extends Schema.TaggedError<ContentFiltered>("effect-llm-router/ContentFiltered")(
  "ContentFiltered",
  AttemptFields
) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  override get message(): string {
    return describe(this, "content filtered")
  }
}

/**
 * The provider does not know this model (HTTP 404). Not retried; falls back.
 *
 * @since 0.1.0
 * @category Errors
 */
export class ModelNotFound extends Schema.TaggedError<ModelNotFound>("effect-llm-router/ModelNotFound")(
  "ModelNotFound",
  AttemptFields
) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  override get message(): string {
    return describe(this, "model not found")
  }
}

/**
 * The provider failed (HTTP 500, 502, 504 and other 5xx, or an in-band server error). Retried; falls back.
 *
 * @since 0.1.0
 * @category Errors
 */
export class ServerError extends Schema.TaggedError<ServerError>("effect-llm-router/ServerError")(
  "ServerError",
  AttemptFields
) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  override get message(): string {
    return describe(this, "server error")
  }
}

/**
 * The provider is overloaded or down (HTTP 503, 529, GPTRouter's 406). Retried; falls back.
 *
 * @since 0.1.0
 * @category Errors
 */
export class ServiceUnavailable extends Schema.TaggedError<ServiceUnavailable>("effect-llm-router/ServiceUnavailable")(
  "ServiceUnavailable",
  AttemptFields
) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  override get message(): string {
    return describe(this, "service unavailable")
  }
}

/**
 * An attempt ran out of time: the whole attempt (`phase: "attempt"`), the wait for the first content of a stream
 * (`"first-token"`), or the server's own timeout (HTTP 408, `"server"`). Retried; falls back.
 *
 * @since 0.1.0
 * @category Errors
 */
export class Timeout extends Schema.TaggedError<Timeout>("effect-llm-router/Timeout")("Timeout", {
  ...AttemptFields,
  phase: Schema.Literal("attempt", "first-token", "stall", "server"),
  /** The limit that was exceeded, in milliseconds (absent for `server`). */
  afterMillis: Schema.optional(Schema.NonNegative)
}) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  override get message(): string {
    const limit = this.afterMillis === undefined ? "" : ` after ${formatMillis(this.afterMillis)}`
    return describe(this, `timed out (${this.phase})${limit}`)
  }
}

/**
 * The connection failed: refused, reset, DNS, or cut before any content. Retried; falls back.
 *
 * @since 0.1.0
 * @category Errors
 */
export class NetworkError extends Schema.TaggedError<NetworkError>("effect-llm-router/NetworkError")(
  "NetworkError",
  {
    ...AttemptFields,
    /** What the transport reported, with secrets redacted. */
    reason: Schema.String
  }
) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  override get message(): string {
    return describe(this, `network failure: ${this.reason}`)
  }
}

/**
 * The server answered 2xx with something that is not a valid response: not JSON, not the expected shape, an SSE event
 * over the size bound, or a stream that ended before any content. Not retried; falls back.
 *
 * @since 0.1.0
 * @category Errors
 */
export class MalformedResponse extends Schema.TaggedError<MalformedResponse>("effect-llm-router/MalformedResponse")(
  "MalformedResponse",
  {
    ...AttemptFields,
    /** What was wrong with it. */
    reason: Schema.String
  }
) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  override get message(): string {
    return describe(this, `malformed response: ${this.reason}`)
  }
}

/**
 * The request was rejected before anything was sent: no model could accept it.
 *
 * @since 0.1.0
 * @category Errors
 */
export class InvalidRequest extends Schema.TaggedError<InvalidRequest>("effect-llm-router/InvalidRequest")(
  "InvalidRequest",
  {
    /** Path of the offending field, e.g. `messages[1].role` or `temperature`. */
    field: Schema.String,
    /** Why it is invalid. */
    reason: Schema.String
  }
) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  override get message(): string {
    return `invalid request: ${this.field}: ${this.reason}`
  }
}

/**
 * Routing ended without any model being able to serve: every model was skipped, or the upstream router reported that
 * none of the models is available.
 *
 * @since 0.1.0
 * @category Errors
 */
export class NoModelAvailable extends Schema.TaggedError<NoModelAvailable>("effect-llm-router/NoModelAvailable")(
  "NoModelAvailable",
  {
    reason: Schema.String,
    trail: Trail
  }
) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  override get message(): string {
    return `no model available: ${this.reason}`
  }
}

/**
 * The total deadline over all retries and fallbacks passed.
 *
 * @since 0.1.0
 * @category Errors
 */
export class DeadlineExceeded extends Schema.TaggedError<DeadlineExceeded>("effect-llm-router/DeadlineExceeded")(
  "DeadlineExceeded",
  {
    /** The deadline, in milliseconds from the start of the call. */
    deadlineMillis: Schema.NonNegative,
    /** The model whose attempt the deadline cut, if one was running. */
    model: Schema.optional(Schema.String),
    provider: Schema.optional(Schema.String),
    trail: Trail
  }
) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  override get message(): string {
    const attempts = this.trail?.length ?? 0
    return this.model === undefined
      ? `deadline of ${
        formatMillis(this.deadlineMillis)
      }: no time left for another attempt after ${attempts} attempt(s)`
      : `deadline of ${
        formatMillis(this.deadlineMillis)
      } exceeded during ${this.provider}/${this.model} after ${attempts} attempt(s)`
  }
}

/**
 * A stream failed after content had started. The output already delivered is final: this error is never retried or
 * sent to another model (that would duplicate or splice output). It holds everything that arrived, so the caller can
 * keep or discard it. `reason` says what happened: the connection was `cut`, the server sent an `in-band-error`, the
 * stream `stall`ed past the stall timeout, it was `truncated` (ended without its finish event or `[DONE]`), or an
 * event was `malformed`.
 *
 * @since 0.1.0
 * @category Errors
 */
export class StreamInterrupted extends Schema.TaggedError<StreamInterrupted>("effect-llm-router/StreamInterrupted")(
  "StreamInterrupted",
  {
    provider: Schema.String,
    model: Schema.String,
    reason: Schema.Literal("cut", "in-band-error", "stall", "truncated", "malformed"),
    /** The text received so far (first choice). */
    text: Schema.String,
    /** Tool-call parts received so far, assembled per call. */
    toolCalls: Schema.Array(
      Schema.Struct({
        index: Schema.Int,
        id: Schema.optional(Schema.String),
        name: Schema.optional(Schema.String),
        arguments: Schema.String
      })
    ),
    /** Usage, if the provider reported it before the failure. */
    usage: Schema.optional(
      Schema.Struct({ promptTokens: Schema.Number, completionTokens: Schema.Number, totalTokens: Schema.Number })
    ),
    /** How many chunks had been emitted to the consumer. */
    chunks: Schema.Int,
    /** The underlying failure, when there was one. */
    cause: Schema.optional(Schema.suspend((): Schema.Schema<AttemptError, any> => AttemptError)),
    trail: Trail
  }
) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  override get message(): string {
    const cause = this.cause === undefined ? "" : `: ${this.cause.message}`
    return `${this.provider}/${this.model}: stream interrupted (${this.reason}) after ${this.chunks} chunk(s), ${this.text.length} character(s) received${cause}`
  }
}

/**
 * Bad router configuration, reported when the layer is built.
 *
 * @since 0.1.0
 * @category Errors
 */
export class RouterConfigError extends Schema.TaggedError<RouterConfigError>("effect-llm-router/RouterConfigError")(
  "RouterConfigError",
  {
    /** Path of the offending option, e.g. `models` or `retry.maxAttempts`. */
    option: Schema.String,
    reason: Schema.String
  }
) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  override get message(): string {
    return `invalid router configuration: ${this.option}: ${this.reason}`
  }
}

/**
 * Every error one attempt on one model can end with.
 *
 * @since 0.1.0
 * @category Models
 */
export type AttemptError =
  | RateLimited
  | QuotaExhausted
  | AuthenticationFailed
  | PermissionDenied
  | BadRequest
  | ContextLengthExceeded
  | ContentFiltered
  | ModelNotFound
  | ServerError
  | ServiceUnavailable
  | Timeout
  | NetworkError
  | MalformedResponse

/**
 * The schema of {@link AttemptError}.
 *
 * @since 0.1.0
 * @category Schemas
 */
export const AttemptError: Schema.Union<[
  typeof RateLimited,
  typeof QuotaExhausted,
  typeof AuthenticationFailed,
  typeof PermissionDenied,
  typeof BadRequest,
  typeof ContextLengthExceeded,
  typeof ContentFiltered,
  typeof ModelNotFound,
  typeof ServerError,
  typeof ServiceUnavailable,
  typeof Timeout,
  typeof NetworkError,
  typeof MalformedResponse
]> = Schema.Union(
  RateLimited,
  QuotaExhausted,
  AuthenticationFailed,
  PermissionDenied,
  BadRequest,
  ContextLengthExceeded,
  ContentFiltered,
  ModelNotFound,
  ServerError,
  ServiceUnavailable,
  Timeout,
  NetworkError,
  MalformedResponse
)

/**
 * The tag of an {@link AttemptError}.
 *
 * @since 0.1.0
 * @category Models
 */
export type AttemptErrorTag = AttemptError["_tag"]

/**
 * The error channel of a routed call: what one attempt can end with, plus the routing-level failures.
 *
 * @since 0.1.0
 * @category Models
 */
export type RouterError = AttemptError | InvalidRequest | NoModelAvailable | DeadlineExceeded

/**
 * The error channel of a routed stream: the routed call's errors, plus `StreamInterrupted` after content started.
 *
 * @since 0.1.0
 * @category Models
 */
export type RouterStreamError = RouterError | StreamInterrupted

/**
 * @since 0.1.0
 * @category Guards
 */
export const isRouterError = (u: unknown): u is RouterError | RouterConfigError => Predicate.hasProperty(u, TypeId)

const attemptErrorTags: ReadonlySet<string> = new Set<AttemptErrorTag>([
  "RateLimited",
  "QuotaExhausted",
  "AuthenticationFailed",
  "PermissionDenied",
  "BadRequest",
  "ContextLengthExceeded",
  "ContentFiltered",
  "ModelNotFound",
  "ServerError",
  "ServiceUnavailable",
  "Timeout",
  "NetworkError",
  "MalformedResponse"
])

/**
 * @since 0.1.0
 * @category Guards
 */
export const isAttemptError = (u: unknown): u is AttemptError =>
  isRouterError(u) && attemptErrorTags.has((u as { readonly _tag: string })._tag)

/**
 * Every tag of {@link AttemptError}, in the order of the failure-mode table.
 *
 * @since 0.1.0
 * @category Models
 */
export const attemptErrorTagList: ReadonlyArray<AttemptErrorTag> = [...attemptErrorTags] as Array<AttemptErrorTag>

/**
 * A copy of an error with the trail of the routed call attached.
 *
 * @since 0.1.0
 * @category Combinators
 */
export const withTrail = <E extends RouterError | StreamInterrupted>(error: E, trail: ReadonlyArray<Attempt>): E => {
  if (error._tag === "InvalidRequest") return error
  const Ctor = error.constructor as new(props: object, options?: { readonly disableValidation?: boolean }) => E
  return new Ctor({ ...error, trail }, { disableValidation: true })
}
