/**
 * What a wire protocol implements. An `Endpoint` is one configured server (a base URL and a key) speaking one protocol;
 * it builds the HTTP request for a call and decodes what comes back. Sending, timeouts, status mapping, SSE parsing,
 * retries and fallback are the router's, shared by every protocol.
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
import type { SseEvent } from "./internal/sseReader.js"
import type { AttemptErrorTag } from "./RouterError.js"

/**
 * @since 0.1.0
 * @category Type Ids
 */
export const TypeId: unique symbol = Symbol.for("effect-llm-router/Endpoint")

/**
 * @since 0.1.0
 * @category Type Ids
 */
export type TypeId = typeof TypeId

/**
 * One attempt on one model, as a protocol sees it.
 *
 * @since 0.1.0
 * @category Models
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
 * @category Models
 */
export interface ResponseData {
  readonly id: string
  readonly model: string
  readonly provider: string
  readonly choices: ReadonlyArray<Choice>
  readonly usage?: Usage | undefined
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
 * @category Models
 */
export type EventOutcome =
  | undefined
  | "done"
  | { readonly _tag: "InBandError"; readonly payload: unknown }
  | { readonly _tag: "Malformed"; readonly reason: string }

/**
 * Decodes the events of one streamed response. Stateful: make one per attempt.
 *
 * @since 0.1.0
 * @category Models
 */
export interface StreamDecoder {
  /** Appends the chunks this event carries to `out`. */
  readonly onEvent: (event: SseEvent, out: Array<ChatChunk>) => EventOutcome
  /** The model and provider the server says are answering, once it has said so. */
  readonly served: () => { readonly model: string; readonly provider: string; readonly id?: string } | undefined
}

/**
 * A configured server speaking one wire protocol.
 *
 * @since 0.1.0
 * @category Models
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
  /** Decodes a 2xx JSON body; `Left` holds why it is malformed. */
  readonly decodeResponse: (call: Call, body: unknown) => Either.Either<ResponseData, string>
  /** A fresh decoder for one streamed response. */
  readonly streamDecoder: (call: Call) => StreamDecoder
}

/**
 * @since 0.1.0
 * @category Guards
 */
export const isEndpoint = (u: unknown): u is Endpoint => Predicate.hasProperty(u, TypeId)
