/**
 * The vocabulary for scripting a simulated LLM upstream.
 *
 * A script maps a model name to an ordered list of steps: the n-th request
 * for that model (0-based) is answered by step n, and the last step repeats
 * forever. Steps are plain, serialisable objects tagged with `_tag`, so any
 * transport (the Node server in `SimulatedUpstream`, or an in-memory fake
 * `HttpClient`) can interpret them and produce the same bytes.
 *
 * This module is runtime-agnostic: it must not import anything from `node:`.
 *
 * @since 0.1.0
 */

/**
 * The wire protocols the simulated upstream speaks.
 *
 * - `"openai"`: OpenAI-compatible Chat Completions (`POST /v1/chat/completions`).
 * - `"gptrouter"`: GPTRouter (`POST /api/v1/generate`).
 * - `"anthropic"`: Anthropic Messages (`POST /v1/messages`; since 0.3.0).
 * - `"gemini"`: Google Gemini (`POST /v1beta/models/{model}:generateContent` and
 *   `:streamGenerateContent?alt=sse`; since 0.3.0). Its streams have no terminator: a complete one ends after the
 *   chunk carrying `finishReason`.
 *
 * Every step renders for every protocol. Error statuses get the protocol's own body: the OpenAI codes that
 * {@link rateLimited}, {@link quotaExhausted}, {@link contextLengthExceeded} and the wrong-key answer use become what
 * Anthropic and Gemini send in the same situation (Anthropic's spend-limit and prompt-too-long messages, Gemini's
 * per-day and per-minute `QuotaFailure` details); any other status gets the protocol's error type for that status.
 *
 * @since 0.1.0
 * @category models
 */
export type Protocol = "openai" | "gptrouter" | "anthropic" | "gemini"

/**
 * Knobs for how a response is framed on the wire. They can be set for a whole
 * server and overridden per step (step values win, field by field).
 *
 * @since 0.1.0
 * @category models
 */
export interface WireOptions {
  /** Line terminator used in SSE bodies. Defaults to `"\n"`. */
  readonly lineEnding?: "\n" | "\r\n"
  /**
   * Write every body write in pieces of at most this many bytes, each
   * flushed separately, so byte-level readers see events (and multi-byte
   * characters) split at arbitrary points.
   */
  readonly splitEvery?: number
  /** Emit a `: keep-alive` SSE comment after every this many ms of silence. */
  readonly keepAliveEveryMs?: number
  /** Emit `retry: N` at the start of an SSE body. */
  readonly retryField?: number
  /**
   * Force (`true`) or suppress (`false`) the usage event of a stream. When
   * unset, OpenAI streams follow the request's
   * `stream_options.include_usage` and GPTRouter streams always send `meta`.
   */
  readonly includeUsage?: boolean
}

/**
 * Token counts reported by a successful response.
 *
 * @since 0.1.0
 * @category models
 */
export interface Usage {
  readonly promptTokens: number
  readonly completionTokens: number
}

/**
 * A tool (function) call returned by the model. `arguments` is the JSON text
 * the model produced; an object is JSON-encoded for convenience.
 *
 * @since 0.1.0
 * @category models
 */
export interface ToolCall {
  readonly id: string
  readonly name: string
  readonly arguments: string | Readonly<Record<string, unknown>>
}

/**
 * What a step generates. Defaults: `text` is `"Hello from <model>"` (or the
 * concatenation of `chunks`, or nothing when only `toolCalls` are given),
 * `chunks` is `text` cut into pieces of about 4 characters, `usage` is
 * `{ promptTokens: 10, completionTokens: <number of chunks> }`.
 *
 * @since 0.1.0
 * @category models
 */
export interface ContentOptions {
  readonly text?: string
  readonly chunks?: ReadonlyArray<string>
  readonly usage?: Usage
  readonly toolCalls?: ReadonlyArray<ToolCall>
}

/**
 * Latencies of a step, all in milliseconds and all defaulting to 0.
 *
 * - `headersDelayMs`: before the status line and headers are sent.
 * - `firstTokenDelayMs`: between the headers and the first stream event.
 * - `chunkDelayMs`: between consecutive content chunks.
 *
 * A non-streaming request waits for the whole simulated generation
 * (`headersDelayMs + firstTokenDelayMs + chunkDelayMs * (chunks - 1)`)
 * before sending its headers, like a real server would.
 *
 * @since 0.1.0
 * @category models
 */
export interface TimingOptions {
  readonly headersDelayMs?: number
  readonly firstTokenDelayMs?: number
  readonly chunkDelayMs?: number
}

/**
 * Per-step wire overrides.
 *
 * @since 0.1.0
 * @category models
 */
export interface StepWireOptions {
  readonly wire?: WireOptions
}

/**
 * Options of {@link succeed}.
 *
 * @since 0.1.0
 * @category models
 */
export interface SucceedOptions extends ContentOptions, TimingOptions, StepWireOptions {
  /** Defaults to `"tool_calls"` when there are tool calls, else `"stop"`. */
  readonly finishReason?: string
}

/**
 * A complete, successful answer.
 *
 * @since 0.1.0
 * @category models
 */
export interface Succeed extends SucceedOptions {
  readonly _tag: "Succeed"
}

/**
 * Options shared by every error-status step. When `body` is given it is sent
 * verbatim (objects as JSON, strings raw) for both protocols; otherwise the
 * body is built per protocol from `message`, `type` and `code`, whose
 * defaults depend on the status.
 *
 * @since 0.1.0
 * @category models
 */
export interface FailOptions extends StepWireOptions {
  readonly message?: string
  readonly type?: string
  readonly code?: string | null
  readonly body?: unknown
  readonly headers?: Readonly<Record<string, string>>
  readonly headersDelayMs?: number
}

/**
 * An HTTP error status.
 *
 * @since 0.1.0
 * @category models
 */
export interface Fail extends FailOptions {
  readonly _tag: "Fail"
  readonly status: number
}

/**
 * Options of {@link hang}.
 *
 * @since 0.1.0
 * @category models
 */
export interface HangOptions extends StepWireOptions {
  /**
   * `"headers"`: the status line never arrives. `"first-token"`: a 200 with
   * headers arrives, then nothing (keep-alive comments excepted). Defaults
   * to `"headers"`.
   */
  readonly stage?: "headers" | "first-token"
  readonly headersDelayMs?: number
}

/**
 * Never answers, until the client goes away or the server closes.
 *
 * @since 0.1.0
 * @category models
 */
export interface Hang extends StepWireOptions {
  readonly _tag: "Hang"
  readonly stage: "headers" | "first-token"
  readonly headersDelayMs?: number
}

/**
 * Options of the steps that break a stream after some content chunks.
 * `afterChunks` counts content chunks (text pieces and tool-call pieces),
 * not the preamble event; it defaults to 1.
 *
 * @since 0.1.0
 * @category models
 */
export interface PartialOptions extends ContentOptions, TimingOptions, StepWireOptions {
  readonly afterChunks?: number
}

/**
 * Streams `afterChunks` chunks, then goes silent with the connection open.
 *
 * @since 0.1.0
 * @category models
 */
export interface Stall extends ContentOptions, TimingOptions, StepWireOptions {
  readonly _tag: "Stall"
  readonly afterChunks: number
}

/**
 * Streams `afterChunks` chunks, then resets the connection.
 *
 * @since 0.1.0
 * @category models
 */
export interface Cut extends ContentOptions, TimingOptions, StepWireOptions {
  readonly _tag: "Cut"
  readonly afterChunks: number
}

/**
 * Streams `afterChunks` chunks, then cleanly ends the HTTP body without a
 * finish chunk (OpenAI: no `finish_reason`, no `[DONE]`; GPTRouter: no
 * `finish_reason`, no `end`).
 *
 * @since 0.1.0
 * @category models
 */
export interface EndWithoutFinish extends ContentOptions, TimingOptions, StepWireOptions {
  readonly _tag: "EndWithoutFinish"
  readonly afterChunks: number
}

/**
 * Options of {@link inBandError}.
 *
 * @since 0.1.0
 * @category models
 */
export interface InBandErrorOptions extends PartialOptions {
  readonly message?: string
  /** OpenAI error `type`; defaults to `"server_error"`. */
  readonly type?: string
}

/**
 * Streams `afterChunks` chunks, then an error event inside a 200 stream,
 * then ends the body.
 *
 * @since 0.1.0
 * @category models
 */
export interface InBandError extends ContentOptions, TimingOptions, StepWireOptions {
  readonly _tag: "InBandError"
  readonly afterChunks: number
  readonly message?: string
  readonly type?: string
}

/**
 * The kinds of malformed output.
 *
 * - `"not-json"`: a payload that does not parse as JSON.
 * - `"wrong-schema"`: valid JSON that does not match the protocol's schema.
 * - `"bad-event"`: a stream event the protocol does not define (OpenAI: an
 *   SSE event with an unexpected `event:` name; GPTRouter: an unknown
 *   `event`). Non-streaming requests treat it like `"wrong-schema"`.
 *
 * @since 0.1.0
 * @category models
 */
export type MalformedKind = "not-json" | "wrong-schema" | "bad-event"

/**
 * Options of {@link malformed}. `afterChunks` defaults to 0 here.
 *
 * @since 0.1.0
 * @category models
 */
export interface MalformedOptions extends ContentOptions, TimingOptions, StepWireOptions {
  readonly kind: MalformedKind
  readonly afterChunks?: number
}

/**
 * A 200 whose body (non-streaming) or one of whose events (streaming, after
 * `afterChunks` chunks) is malformed. A stream otherwise carries on to a
 * normal finish, so the malformed event is the only defect.
 *
 * @since 0.1.0
 * @category models
 */
export interface Malformed extends ContentOptions, TimingOptions, StepWireOptions {
  readonly _tag: "Malformed"
  readonly kind: MalformedKind
  readonly afterChunks: number
}

/**
 * One scripted answer.
 *
 * @since 0.1.0
 * @category models
 */
export type Step = Succeed | Fail | Hang | Stall | Cut | EndWithoutFinish | InBandError | Malformed

/**
 * Model name to steps. The key `"*"` answers models that have no entry of
 * their own. An empty list behaves like `[succeed()]`.
 *
 * @since 0.1.0
 * @category models
 */
export type Script = Readonly<Record<string, ReadonlyArray<Step>>>

/**
 * What the simulated upstream recorded about one request that reached a
 * protocol endpoint.
 *
 * @since 0.1.0
 * @category models
 */
export interface RecordedRequest {
  readonly protocol: Protocol
  readonly method: string
  /** The path, without the query string. */
  readonly path: string
  /** The query string without its `?` (`""` when there was none). */
  readonly query: string
  /** The model whose script answered, or `null` if none did. */
  readonly model: string | null
  /** Every model named by the request (GPTRouter: sorted by `order`; Gemini: the percent-decoded path segment). */
  readonly models: ReadonlyArray<string>
  readonly stream: boolean
  /** The parsed JSON body, or the raw text if it did not parse. */
  readonly body: unknown
  /** Lower-cased header names. */
  readonly headers: Readonly<Record<string, string>>
  /** `Date.now()` when the request was received. */
  readonly receivedAt: number
  /**
   * 0-based index of this request among those for `model`, or `null` when
   * the request was rejected before the script was consulted (bad key, bad
   * body, unknown model).
   */
  readonly attempt: number | null
  /** The step that answered, or `null` when no step did. */
  readonly step: Step | null
}

/**
 * A complete, successful answer.
 *
 * @since 0.1.0
 * @category constructors
 */
export const succeed = (options: SucceedOptions = {}): Succeed => ({ ...options, _tag: "Succeed" })

/**
 * An HTTP error status with a protocol-appropriate error body.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fail = (status: number, options: FailOptions = {}): Fail => ({ ...options, _tag: "Fail", status })

const mergeHeaders = (
  extra: Record<string, string>,
  headers: Readonly<Record<string, string>> | undefined
): Readonly<Record<string, string>> | undefined => {
  const merged = { ...extra, ...headers }
  return Object.keys(merged).length === 0 ? undefined : merged
}

const withHeaders = (
  status: number,
  options: FailOptions,
  headers: Readonly<Record<string, string>> | undefined
): Fail => {
  const step = fail(status, options)
  if (headers === undefined) {
    return step
  }
  return { ...step, headers }
}

/**
 * Options of {@link rateLimited}.
 *
 * @since 0.1.0
 * @category models
 */
export interface RateLimitedOptions extends FailOptions {
  /** Raw `Retry-After` header value: delta-seconds or an HTTP date. */
  readonly retryAfter?: string | number
  /** Value of the `retry-after-ms` header. */
  readonly retryAfterMs?: number
}

/**
 * 429 rate limit (`rate_limit_exceeded`), optionally with `Retry-After` /
 * `retry-after-ms` headers.
 *
 * @since 0.1.0
 * @category constructors
 */
export const rateLimited = (options: RateLimitedOptions = {}): Fail => {
  const { retryAfter, retryAfterMs, ...rest } = options
  const extra: Record<string, string> = {}
  if (retryAfter !== undefined) {
    extra["retry-after"] = String(retryAfter)
  }
  if (retryAfterMs !== undefined) {
    extra["retry-after-ms"] = String(retryAfterMs)
  }
  return withHeaders(
    429,
    {
      message: "Rate limit reached for requests. Please try again later.",
      type: "rate_limit_exceeded",
      code: "rate_limit_exceeded",
      ...rest
    },
    mergeHeaders(extra, rest.headers)
  )
}

/**
 * 429 that retrying will not fix (`insufficient_quota`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const quotaExhausted = (options: FailOptions = {}): Fail =>
  fail(429, {
    message: "You exceeded your current quota, please check your plan and billing details.",
    type: "insufficient_quota",
    code: "insufficient_quota",
    ...options
  })

/**
 * 503 service unavailable / overloaded.
 *
 * @since 0.1.0
 * @category constructors
 */
export const unavailable = (options: FailOptions = {}): Fail => fail(503, options)

/**
 * A 5xx server error, 500 by default.
 *
 * @since 0.1.0
 * @category constructors
 */
export const serverError = (status: number = 500, options: FailOptions = {}): Fail => fail(status, options)

/**
 * 400 `context_length_exceeded`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const contextLengthExceeded = (options: FailOptions = {}): Fail =>
  fail(400, {
    message: "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens. " +
      "Please reduce the length of the messages.",
    type: "invalid_request_error",
    code: "context_length_exceeded",
    ...options
  })

/**
 * 400 `content_policy_violation`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const contentFiltered = (options: FailOptions = {}): Fail =>
  fail(400, {
    message: "Your request was rejected as a result of our safety system.",
    type: "invalid_request_error",
    code: "content_policy_violation",
    ...options
  })

/**
 * 404 `model_not_found`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const notFound = (options: FailOptions = {}): Fail => fail(404, options)

/**
 * 401 `invalid_api_key`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const unauthorized = (options: FailOptions = {}): Fail => fail(401, options)

/**
 * 403 permission denied.
 *
 * @since 0.1.0
 * @category constructors
 */
export const forbidden = (options: FailOptions = {}): Fail => fail(403, options)

/**
 * Never answers. See {@link HangOptions.stage}.
 *
 * @since 0.1.0
 * @category constructors
 */
export const hang = (options: HangOptions = {}): Hang => ({
  ...options,
  _tag: "Hang",
  stage: options.stage ?? "headers"
})

/**
 * Streams `afterChunks` (default 1) chunks, then goes silent with the
 * connection kept open.
 *
 * @since 0.1.0
 * @category constructors
 */
export const stall = (options: PartialOptions = {}): Stall => ({
  ...options,
  _tag: "Stall",
  afterChunks: options.afterChunks ?? 1
})

/**
 * Streams `afterChunks` (default 1) chunks, then resets the connection.
 *
 * @since 0.1.0
 * @category constructors
 */
export const cut = (options: PartialOptions = {}): Cut => ({
  ...options,
  _tag: "Cut",
  afterChunks: options.afterChunks ?? 1
})

/**
 * Streams `afterChunks` (default 1) chunks, then cleanly ends the body with
 * no finish chunk.
 *
 * @since 0.1.0
 * @category constructors
 */
export const endWithoutFinish = (options: PartialOptions = {}): EndWithoutFinish => ({
  ...options,
  _tag: "EndWithoutFinish",
  afterChunks: options.afterChunks ?? 1
})

/**
 * Streams `afterChunks` (default 1) chunks, then an in-band error event.
 *
 * @since 0.1.0
 * @category constructors
 */
export const inBandError = (options: InBandErrorOptions = {}): InBandError => ({
  ...options,
  _tag: "InBandError",
  afterChunks: options.afterChunks ?? 1
})

/**
 * A 200 with a malformed body or stream event.
 *
 * @since 0.1.0
 * @category constructors
 */
export const malformed = (options: MalformedOptions): Malformed => ({
  ...options,
  _tag: "Malformed",
  afterChunks: options.afterChunks ?? 0
})

/**
 * The steps that answer `model`: its own entry, else the `"*"` entry, else
 * `undefined` (the model is unknown to the script).
 *
 * @since 0.1.0
 * @category utils
 */
export const stepsFor = (script: Script, model: string): ReadonlyArray<Step> | undefined =>
  Object.prototype.hasOwnProperty.call(script, model) ? script[model] : script["*"]

/**
 * The step answering the `attempt`-th (0-based) request for `model`: the last
 * step repeats forever, and an empty list means `succeed()`. `undefined` when
 * the model is unknown to the script.
 *
 * @since 0.1.0
 * @category utils
 */
export const stepAt = (script: Script, model: string, attempt: number): Step | undefined => {
  const steps = stepsFor(script, model)
  if (steps === undefined) {
    return undefined
  }
  if (steps.length === 0) {
    return succeed()
  }
  return steps[Math.min(Math.max(0, attempt), steps.length - 1)]
}
