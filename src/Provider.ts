/**
 * What a wire protocol implements. An {@link Endpoint} is one configured server (a base URL and a key) speaking one
 * protocol: it builds the HTTP request of a call ({@link Endpoint.httpRequest}), decodes a JSON answer
 * ({@link Endpoint.decodeResponse}) and, for streams, turns each server-sent event into chunks
 * ({@link Endpoint.streamDecoder}). Everything else is the router's and shared by every protocol: sending, status
 * mapping to the failure modes (with {@link Endpoint.statusOverrides} for a protocol's own statuses and
 * {@link Endpoint.classifyError} for its own error bodies), redaction of {@link Endpoint.secrets}, byte-level SSE
 * reading, timeouts, retries, fallback and the trail.
 *
 * A stream is complete when its decoder returns `"done"` (a terminator such as `[DONE]`), or when the body ends after
 * a `Finish` chunk: a protocol without a terminator (Gemini) needs nothing more. A body that ends before either is
 * truncated.
 *
 * A new protocol is a module with an `endpoint(options)` constructor returning an `Endpoint`, as `OpenAiCompatible`
 * and `GptRouter` are. A minimal one, for a server that answers `{ "text": "…" }` and streams `data: {"delta": "…"}`
 * events ended by `data: [DONE]`:
 *
 * @example
 * ```ts
 * import { HttpClientRequest } from "@effect/platform"
 * import { Either, Redacted } from "effect"
 * import { ChatRequest, Provider } from "effect-llm-router"
 *
 * export const endpoint = (options: { readonly baseUrl: string; readonly apiKey: Redacted.Redacted }): Provider.Endpoint => ({
 *   [Provider.TypeId]: Provider.TypeId,
 *   protocol: "echo",
 *   provider: "echo",
 *   baseUrl: options.baseUrl,
 *   secrets: [options.apiKey],
 *   statusOverrides: {},
 *   httpRequest: (call) =>
 *     HttpClientRequest.post(`${options.baseUrl}/complete`).pipe(
 *       HttpClientRequest.bearerToken(options.apiKey),
 *       HttpClientRequest.bodyUnsafeJson({ model: call.model, stream: call.stream, ...ChatRequest.toWireParams(call.request) })
 *     ),
 *   decodeResponse: (call, body) =>
 *     typeof body === "object" && body !== null && typeof (body as { text?: unknown }).text === "string"
 *       ? Either.right({
 *         id: "",
 *         model: call.model,
 *         provider: call.provider,
 *         choices: [{ index: 0, text: (body as { text: string }).text, role: "assistant", finishReason: "stop", toolCalls: [] }]
 *       })
 *       : Either.left("expected { text }"),
 *   streamDecoder: () => ({
 *     onEvent: (event, out) => {
 *       if (event.data === "[DONE]") return "done"
 *       try {
 *         const delta = (JSON.parse(event.data) as { delta?: unknown }).delta
 *         if (typeof delta !== "string") return { _tag: "Malformed", reason: "expected { delta }" }
 *         out.push({ _tag: "TextDelta", index: 0, text: delta })
 *         return undefined
 *       } catch {
 *         return { _tag: "Malformed", reason: "not JSON" }
 *       }
 *     },
 *     served: () => undefined
 *   })
 * })
 * ```
 *
 * @since 0.1.0
 */
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as Either from "effect/Either"
import * as Predicate from "effect/Predicate"
import type * as Redacted from "effect/Redacted"
import type { ChatChunk } from "./ChatChunk.js"
import type { ChatRequest } from "./ChatRequest.js"
import type { Choice, Usage } from "./ChatResponse.js"
import type { AttemptErrorTag } from "./RouterError.js"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("effect-llm-router/Endpoint")

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * One attempt on one model, as a protocol sees it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Call {
  readonly model: string
  readonly provider: string
  /** 1-based attempt number on this model. */
  readonly attempt: number
  /** The validated request with the model's overrides applied. */
  readonly request: ChatRequest
  readonly stream: boolean
  /**
   * The models after this one in the priority list that go to the same endpoint, in order. GPTRouter sends them in
   * the same request so its server can skip unhealthy ones.
   */
  readonly siblings: ReadonlyArray<{ readonly model: string; readonly provider: string }>
}

/**
 * A decoded non-streaming answer, before the router adds the trail.
 *
 * @since 0.1.0
 * @category models
 */
export interface ResponseData {
  readonly id: string
  readonly model: string
  readonly provider: string
  readonly choices: ReadonlyArray<Choice>
  readonly usage?: Usage | undefined
}

/**
 * One server-sent event as a protocol receives it: its `event:` name (empty when it had none) and its `data:` lines
 * joined with `\n`. Comments (keep-alives), `id:` and `retry:` fields are the reader's business and never reach a
 * protocol; the router bounds each event's size (`maxEventBytes`).
 *
 * @since 0.2.0
 * @category models
 */
export interface ServerSentEvent {
  readonly event: string
  readonly data: string
}

/**
 * What one SSE event meant.
 *
 * - `undefined`: carry on (chunks, if any, were appended).
 * - `"done"`: the stream is complete (`[DONE]`, GPTRouter's `end`).
 * - `InBandError`: the server reported an error inside the 200 response.
 * - `Malformed`: the event is not what the protocol allows.
 *
 * @since 0.1.0
 * @category models
 */
export type EventOutcome =
  | undefined
  | "done"
  | { readonly _tag: "InBandError"; readonly payload: unknown }
  | { readonly _tag: "Malformed"; readonly reason: string }

/**
 * A failure a protocol recognised in a 2xx answer: an error object, or an answer that is a refusal (Gemini's blocked
 * prompt). The router classifies `payload` as it does an in-band stream error ({@link Endpoint.classifyError}, then
 * the shared rules, `ServerError` when nothing names a mode).
 *
 * @since 0.3.0
 * @category models
 */
export interface InBandError {
  readonly _tag: "InBandError"
  readonly payload: unknown
}

/**
 * What a protocol says an error means: its failure mode, and the wait the body asks for when the body says so
 * (Gemini's `RetryInfo`; a `Retry-After` header wins over it).
 *
 * @since 0.3.0
 * @category models
 */
export interface ErrorClassification {
  readonly tag: AttemptErrorTag
  readonly retryAfterMillis?: number | undefined
}

/**
 * An error as {@link Endpoint.classifyError} sees it: the HTTP status (`undefined` for an error inside a 2xx answer)
 * and the parsed JSON body (`undefined` when it was not JSON).
 *
 * @since 0.3.0
 * @category models
 */
export interface ErrorReport {
  readonly status: number | undefined
  readonly body: unknown
}

/**
 * Decodes the events of one streamed response. Stateful: make one per attempt.
 *
 * @since 0.1.0
 * @category models
 */
export interface StreamDecoder {
  /** Appends the chunks this event carries to `out`. */
  readonly onEvent: (event: ServerSentEvent, out: Array<ChatChunk>) => EventOutcome
  /** The model and provider the server says are answering, once it has said so. */
  readonly served: () => { readonly model: string; readonly provider: string; readonly id?: string } | undefined
}

/**
 * A configured server speaking one wire protocol.
 *
 * @since 0.1.0
 * @category models
 */
export interface Endpoint {
  readonly [TypeId]: TypeId
  /** The wire protocol, e.g. `openai-compatible` or `gptrouter`. */
  readonly protocol: string
  /** The provider label for models on this endpoint that do not name one. */
  readonly provider: string
  readonly baseUrl: string
  /** Values that must never appear in an error, log or span (the keys). */
  readonly secrets: ReadonlyArray<Redacted.Redacted<string>>
  /** Protocol-specific meanings of HTTP statuses (GPTRouter's 406 is "unavailable"). */
  readonly statusOverrides: Readonly<Partial<Record<number, AttemptErrorTag>>>
  /** Builds the HTTP request of a call. */
  readonly httpRequest: (call: Call) => HttpClientRequest.HttpClientRequest
  /**
   * Decodes a 2xx JSON body; `Left` holds why it is malformed, or (since 0.3.0) an {@link InBandError} when the body
   * is a failure the protocol recognises.
   */
  readonly decodeResponse: (call: Call, body: unknown) => Either.Either<ResponseData, string | InBandError>
  /** A fresh decoder for one streamed response. */
  readonly streamDecoder: (call: Call) => StreamDecoder
  /**
   * The protocol's own reading of an error (optional): an error status with its body, or an in-band error's payload.
   * A classification it returns wins over the status and over the shared rules (which read OpenAI's `code`/`type`
   * and a few messages); `undefined` leaves the error to them. Anthropic reads `error.type` and its credit and
   * prompt-length messages, Gemini `error.status` and its quota details.
   *
   * @since 0.3.0
   */
  readonly classifyError?: ((error: ErrorReport) => ErrorClassification | undefined) | undefined
}

/**
 * @since 0.1.0
 * @category guards
 */
export const isEndpoint = (u: unknown): u is Endpoint => Predicate.hasProperty(u, TypeId)
