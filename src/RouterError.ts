/**
 * Typed errors, one per failure mode.
 *
 * Per-attempt errors (`RateLimited`, `ServerError`, …) name the provider, model and attempt that failed, the HTTP
 * status and a redacted excerpt of the body when there was one, and the wait the server asked for. The error that
 * ends a routed call also carries the whole `trail` of attempts that led to it.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Attempt, Router } from "effect-llm-router"
 *
 * export const answer = Router.generate({ messages: [{ role: "user", content: "Hello" }] }).pipe(
 *   Effect.map((response) => response.text),
 *   Effect.catchTags({
 *     // Every model failed with a rate limit: the last one's error, with the whole trail.
 *     RateLimited: (e) => Effect.succeed(`busy (${e.provider}/${e.model}); ${e.trail?.length ?? 0} attempts`),
 *     DeadlineExceeded: (e) => Effect.fail(new Error(Attempt.formatTimeline(e.trail ?? [])))
 *   })
 * )
 * ```
 *
 * @since 0.1.0
 */
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"
import { Attempt } from "./Attempt.js"
import { formatMillis, tagInWords } from "./internal/format.js"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("effect-llm-router/RouterError")

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

// Lazy because `Attempt` refers back to these errors; the cycle is only followed when a trail is decoded.
const Trail = Schema.optional(Schema.Array(Schema.suspend((): Schema.Schema<Attempt, any> => Attempt)))

/**
 * Fields shared by every error that one attempt can produce.
 *
 * @since 0.1.0
 * @category fields
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

/**
 * What a failure mode of one attempt means to the router, declared once on its class ({@link RateLimited.mode} …) and
 * read by everything that needs it: the default retry and fallback sets, the status mapping, the formatters.
 *
 * @since 0.2.0
 * @category models
 */
export interface FailureMode {
  /** The error's tag. */
  readonly tag: string
  /** Retried on the same model by default ({@link RetryPolicy.defaultRetryOn}). */
  readonly retryable: boolean
  /** Moves on to the next model by default ({@link Router.defaultFallbackOn}). */
  readonly fallsBack: boolean
  /**
   * What it says about the deployment's health (`Health`): a `transient` failure counts towards opening its breaker,
   * a `fatal` one (no retry on that deployment can fix it) opens it at once, an `ignored` one is the caller's own.
   */
  readonly health: "transient" | "fatal" | "ignored"
  /**
   * The HTTP statuses that mean this mode when the body names nothing more precise. `"4xx"` and `"5xx"` stand for the
   * statuses of their class that no mode claims exactly.
   */
  readonly statuses: ReadonlyArray<number | "4xx" | "5xx">
}

interface AttemptFieldValues {
  readonly provider: string
  readonly model: string
  readonly attempt: number
  readonly status?: number | undefined
  readonly body?: string | undefined
  readonly retryAfterMillis?: number | undefined
}

/**
 * Declares one failure mode of an attempt: a `Schema.TaggedError` with the {@link AttemptFields} (plus `extra`), a
 * message naming provider, model, attempt, status, the server's wait and the body excerpt, and its {@link FailureMode}.
 */
const AttemptFailure = <Self>() =>
<const Tag extends string, Extra extends Schema.Struct.Fields = {}>(
  tag: Tag,
  mode: Omit<FailureMode, "tag"> & {
    /** What went wrong, in a few words (the middle of the message); by default the tag in words (`rate limited`). */
    readonly summary?: (self: Schema.Struct.Type<Extra>) => string
  },
  extra?: Extra
):
  & Schema.TaggedErrorClass<Self, Tag, { readonly _tag: Schema.tag<Tag> } & typeof AttemptFields & Extra>
  & { readonly mode: FailureMode } =>
{
  // Built on a statically known base (TypeScript cannot extend a class whose fields are still generic); the signature
  // above states what the class is.
  const Base = Schema.TaggedError<any>(`effect-llm-router/${tag}`)(tag, {
    ...AttemptFields,
    ...extra
  }) as unknown as new(props: object, options?: Schema.MakeOptions) => AttemptFieldValues & Error
  class AttemptFailure extends Base {
    static readonly mode: FailureMode = {
      tag,
      retryable: mode.retryable,
      fallsBack: mode.fallsBack,
      health: mode.health,
      statuses: mode.statuses
    }
    readonly [TypeId]: TypeId = TypeId
    override get message(): string {
      let text = `${this.provider}/${this.model} (attempt ${this.attempt}): ${
        mode.summary === undefined ? tagInWords(tag) : mode.summary(this as unknown as Schema.Struct.Type<Extra>)
      }`
      if (this.status !== undefined) text += ` (HTTP ${this.status})`
      if (this.retryAfterMillis !== undefined) text += `; server asked to wait ${formatMillis(this.retryAfterMillis)}`
      if (this.body !== undefined && this.body.length > 0) text += `: ${this.body}`
      return text
    }
  }
  return AttemptFailure as any
}

/**
 * Too many requests (HTTP 429 without a quota code). Retried; falls back when retries are spent.
 *
 * @since 0.1.0
 * @category errors
 */
export class RateLimited extends AttemptFailure<RateLimited>()("RateLimited", {
  retryable: true,
  fallsBack: true,
  health: "transient",
  statuses: [429]
}) {}

/**
 * The account is out of credit (HTTP 402, or OpenAI's `insufficient_quota`). Waiting does not help: not retried, falls
 * back.
 *
 * @since 0.1.0
 * @category errors
 */
export class QuotaExhausted extends AttemptFailure<QuotaExhausted>()("QuotaExhausted", {
  retryable: false,
  fallsBack: true,
  health: "fatal",
  statuses: [402]
}) {}

/**
 * The provider rejected the key (HTTP 401). Not retried; falls back (another provider has its own key).
 *
 * @since 0.1.0
 * @category errors
 */
export class AuthenticationFailed extends AttemptFailure<AuthenticationFailed>()("AuthenticationFailed", {
  retryable: false,
  fallsBack: true,
  health: "fatal",
  statuses: [401]
}) {}

/**
 * The key may not use this model or resource (HTTP 403). Not retried; falls back.
 *
 * @since 0.1.0
 * @category errors
 */
export class PermissionDenied extends AttemptFailure<PermissionDenied>()("PermissionDenied", {
  retryable: false,
  fallsBack: true,
  health: "fatal",
  statuses: [403]
}) {}

/**
 * The provider rejected the request itself (HTTP 400, 422 and the other 4xx no other mode claims). Every model would
 * reject it the same way, so it is neither retried nor sent to the next model by default.
 *
 * @since 0.1.0
 * @category errors
 */
export class BadRequest extends AttemptFailure<BadRequest>()("BadRequest", {
  retryable: false,
  fallsBack: false,
  health: "ignored",
  statuses: [400, 422, "4xx"]
}) {}

/**
 * The prompt does not fit this model's context window (HTTP 413, or a 400 with a context-length code or message). Not
 * retried; falls back (a larger model may take it).
 *
 * @since 0.1.0
 * @category errors
 */
export class ContextLengthExceeded extends AttemptFailure<ContextLengthExceeded>()("ContextLengthExceeded", {
  retryable: false,
  fallsBack: true,
  health: "ignored",
  statuses: [413]
}) {}

/**
 * The provider's content policy refused the request. Not retried; falls back.
 *
 * @since 0.1.0
 * @category errors
 */
export class ContentFiltered extends AttemptFailure<ContentFiltered>()("ContentFiltered", {
  retryable: false,
  fallsBack: true,
  health: "ignored",
  statuses: []
}) {}

/**
 * The provider does not know this model (HTTP 404). Not retried; falls back.
 *
 * @since 0.1.0
 * @category errors
 */
export class ModelNotFound extends AttemptFailure<ModelNotFound>()("ModelNotFound", {
  retryable: false,
  fallsBack: true,
  health: "fatal",
  statuses: [404]
}) {}

/**
 * The provider failed (HTTP 500, 502, 504 and the other 5xx, or an in-band server error). Retried; falls back.
 *
 * @since 0.1.0
 * @category errors
 */
export class ServerError extends AttemptFailure<ServerError>()("ServerError", {
  retryable: true,
  fallsBack: true,
  health: "transient",
  statuses: [500, 502, 504, "5xx"]
}) {}

/**
 * The provider cannot serve now: overloaded or down (HTTP 503, 529, GPTRouter's 406), or a transient conflict on its
 * side (HTTP 409, which openai-node and the Vercel AI SDK retry too). Retried; falls back.
 *
 * @since 0.1.0
 * @category errors
 */
export class ServiceUnavailable extends AttemptFailure<ServiceUnavailable>()("ServiceUnavailable", {
  retryable: true,
  fallsBack: true,
  health: "transient",
  statuses: [409, 503, 529]
}) {}

/**
 * An attempt ran out of time: the whole attempt, or for a stream the wait for the response headers (`phase:
 * "attempt"`), the wait for the first content of a stream (`"first-token"`), the gap between chunks once content
 * started (`"stall"`), or the server's own timeout (HTTP 408, `"server"`). Retried; falls back.
 *
 * @since 0.1.0
 * @category errors
 */
export class Timeout extends AttemptFailure<Timeout>()("Timeout", {
  summary: (self) =>
    `timed out (${self.phase})${self.afterMillis === undefined ? "" : ` after ${formatMillis(self.afterMillis)}`}`,
  retryable: true,
  fallsBack: true,
  health: "transient",
  statuses: [408]
}, {
  phase: Schema.Literal("attempt", "first-token", "stall", "server"),
  /** The limit that was exceeded, in milliseconds (absent for `server`). */
  afterMillis: Schema.optional(Schema.NonNegative)
}) {}

/**
 * The connection failed: refused, reset, DNS, or cut before any content. Retried; falls back.
 *
 * @since 0.1.0
 * @category errors
 */
export class NetworkError extends AttemptFailure<NetworkError>()("NetworkError", {
  summary: (self) => `network failure: ${self.reason}`,
  retryable: true,
  fallsBack: true,
  health: "transient",
  statuses: []
}, {
  /** What the transport reported, with secrets redacted. */
  reason: Schema.String
}) {}

/**
 * The server answered 2xx with something that is not a valid response: not JSON, not the expected shape, an SSE event
 * over the size bound, or a stream that ended before any content. Not retried; falls back.
 *
 * @since 0.1.0
 * @category errors
 */
export class MalformedResponse extends AttemptFailure<MalformedResponse>()("MalformedResponse", {
  summary: (self) => `malformed response: ${self.reason}`,
  retryable: false,
  fallsBack: true,
  health: "transient",
  statuses: []
}, {
  /** What was wrong with it. */
  reason: Schema.String
}) {}

/**
 * The answer arrived but the router's answer check (`Router.Options.accept`) rejected it: an empty or refused answer,
 * JSON that does not parse, whatever the check looks for. Not retried (add it to `retry.retryOn` to ask the same model
 * again); falls back; says nothing about the deployment's health.
 *
 * @since 0.3.0
 * @category errors
 */
export class ResponseRejected extends AttemptFailure<ResponseRejected>()("ResponseRejected", {
  summary: (self) => `answer rejected: ${self.reason}`,
  retryable: false,
  fallsBack: true,
  health: "ignored",
  statuses: []
}, {
  /** Why the check rejected it (its own words, or that it returned `false` or threw). */
  reason: Schema.String
}) {}

/**
 * The request was rejected before anything was sent: no model could accept it.
 *
 * @since 0.1.0
 * @category errors
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
 * @category errors
 */
export class NoModelAvailable extends Schema.TaggedError<NoModelAvailable>("effect-llm-router/NoModelAvailable")(
  "NoModelAvailable",
  {
    reason: Schema.String,
    /** When every deployment was skipped: when the earliest one reopens (epoch ms). */
    reopensAt: Schema.optional(Schema.Number),
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
 * @category errors
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
 * The router's budget for the current period is spent (`budget.perPeriod`): no request is sent until the period
 * resets.
 *
 * @since 0.3.0
 * @category errors
 */
export class BudgetExceeded extends Schema.TaggedError<BudgetExceeded>("effect-llm-router/BudgetExceeded")(
  "BudgetExceeded",
  {
    /** The budget's name. */
    budget: Schema.String,
    /** The limit per period and what was spent in this one, in the price table's currency. */
    limit: Schema.Number,
    spent: Schema.Number,
    /** When the period resets (epoch ms). */
    resetsAt: Schema.Number,
    trail: Trail
  }
) {
  /** @since 0.3.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.3.0 */
  override get message(): string {
    return `budget "${this.budget}" is spent for this period (${this.spent} of ${this.limit}); it resets at ${
      new Date(this.resetsAt).toISOString()
    }`
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
 * @category errors
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
 * @category errors
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
 * The schema of {@link AttemptError}: every failure mode of one attempt, in the order of the failure-mode table. This
 * list is the one place a new mode is registered; tags, guards and defaults are derived from it.
 *
 * @since 0.1.0
 * @category schemas
 */
export const AttemptError = Schema.Union(
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
  MalformedResponse,
  ResponseRejected
)

/**
 * Every error one attempt on one model can end with.
 *
 * @since 0.1.0
 * @category models
 */
export type AttemptError = typeof AttemptError.Type

/**
 * The tag of an {@link AttemptError}.
 *
 * @since 0.1.0
 * @category models
 */
export type AttemptErrorTag = AttemptError["_tag"]

/**
 * The class of each failure mode, by tag.
 *
 * @since 0.2.0
 * @category models
 */
export const classes: {
  readonly [Tag in AttemptErrorTag]: (typeof AttemptError.members)[number] & { readonly _tag: Tag }
} = Object.fromEntries(AttemptError.members.map((member) => [member._tag, member])) as any

/**
 * What each failure mode means to the router, by tag, in the order of the failure-mode table.
 *
 * @since 0.2.0
 * @category models
 */
export const failureModes: { readonly [Tag in AttemptErrorTag]: FailureMode } = Object.fromEntries(
  AttemptError.members.map((member) => [member._tag, member.mode])
) as { readonly [Tag in AttemptErrorTag]: FailureMode }

/**
 * Every tag of {@link AttemptError}, in the order of the failure-mode table.
 *
 * @since 0.1.0
 * @category models
 */
export const attemptErrorTagList: ReadonlyArray<AttemptErrorTag> = AttemptError.members.map((member) => member._tag)

/**
 * The error channel of a routed call: what one attempt can end with, plus the routing-level failures.
 *
 * @since 0.1.0
 * @category models
 */
export type RouterError = AttemptError | InvalidRequest | NoModelAvailable | DeadlineExceeded | BudgetExceeded

/**
 * The error channel of a routed stream: the routed call's errors, plus `StreamInterrupted` after content started.
 *
 * @since 0.1.0
 * @category models
 */
export type RouterStreamError = RouterError | StreamInterrupted

/**
 * Any error of this library: a routed call's or stream's, or bad configuration.
 *
 * @since 0.2.0
 * @category models
 */
export type AnyError = RouterStreamError | RouterConfigError

/**
 * @since 0.1.0
 * @category guards
 */
export const isRouterError = (u: unknown): u is AnyError => Predicate.hasProperty(u, TypeId)

/**
 * @since 0.1.0
 * @category guards
 */
export const isAttemptError = (u: unknown): u is AttemptError =>
  isRouterError(u) && Object.prototype.hasOwnProperty.call(failureModes, u._tag)

/**
 * A copy of an error with the trail of the routed call attached.
 *
 * @since 0.1.0
 * @category combinators
 */
export const withTrail = <E extends RouterError | StreamInterrupted>(error: E, trail: ReadonlyArray<Attempt>): E => {
  if (error._tag === "InvalidRequest") return error
  const Ctor = error.constructor as new(props: object, options?: { readonly disableValidation?: boolean }) => E
  return new Ctor({ ...error, trail }, { disableValidation: true })
}
