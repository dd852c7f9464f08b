/**
 * The Anthropic Messages protocol (`POST {baseUrl}/v1/messages`, `x-api-key` and `anthropic-version` headers), spoken
 * natively: the request is translated from our OpenAI-vocabulary `ChatRequest`, the answer, stream events and error
 * bodies are read in Anthropic's own terms and mapped to the same chunks and failure modes as every other protocol.
 *
 * Request translation:
 * - `system` messages become the top-level `system` (joined with a blank line when there are several);
 * - user and assistant turns become messages; assistant `tool_calls` become `tool_use` blocks (the arguments parsed
 *   as the JSON object the API takes) and `tool` messages become `tool_result` blocks of a user turn; OpenAI
 *   `image_url` parts become `image` blocks (a `data:` URL as base64, any other URL as a URL source);
 * - `max_tokens` is required by the API: the request's, else the endpoint's `defaultMaxTokens` ({@link defaultMaxTokens});
 * - `temperature`, `top_p` are sent as they are (Anthropic takes a temperature up to 1: a higher one is the server's
 *   400, not silently clamped), `stop` becomes `stop_sequences`, `user` becomes `metadata.user_id`;
 * - `tools` (and legacy `functions`) become tools with an `input_schema`; `tool_choice` `auto`, `required`, `none`
 *   and a named function become `auto`, `any`, `none` and `tool`; `parallel_tool_calls: false` becomes
 *   `disable_parallel_tool_use`;
 * - OpenAI parameters Anthropic does not have (`presence_penalty`, `frequency_penalty`, `seed`, `logit_bias`,
 *   `logprobs`, `top_logprobs`, `stream_options`, and `n` when it is 1) are left out; every other field, and
 *   `model_kwargs`, is sent as it is (so `top_k`, `thinking` or `metadata` reach the API, and an `n` above 1 gets
 *   the server's own 400).
 *
 * Answers: text blocks become the choice's text, `tool_use` blocks its tool calls (`arguments` is the JSON text of
 * `input`); `stop_reason` `end_turn`/`stop_sequence` → `stop`, `max_tokens` → `length`, `tool_use` → `tool_calls`,
 * `refusal` → `content_filter` (others as sent); prompt tokens are `input_tokens` plus the cache tokens, completion
 * tokens `output_tokens`.
 *
 * Streams: `message_start` names the served model and id, `content_block_start`/`content_block_delta` (`text_delta`,
 * `input_json_delta`) carry text and tool calls, `message_delta` the stop reason and usage, `message_stop` ends the
 * stream. `ping` is a keep-alive, and event types this module does not know are ignored (Anthropic may add some). An
 * `error` event is an in-band error: before any content the attempt fails (and falls back), after content the stream
 * ends with `StreamInterrupted`.
 *
 * Errors: by the body's `error.type`: `rate_limit_error` → `RateLimited` (with `retry-after`), or `QuotaExhausted`
 * when it says the spend limit is reached; `overloaded_error` (HTTP 529) → `ServiceUnavailable`;
 * `invalid_request_error` → `ContextLengthExceeded` when the prompt is too long, `QuotaExhausted` when the credit
 * balance or the usage limit is spent, otherwise the status decides (a 400 is `BadRequest`); `authentication_error`,
 * `permission_error`, `not_found_error`, `request_too_large`, `billing_error`, `api_error`, `timeout_error` → `AuthenticationFailed`, `PermissionDenied`, `ModelNotFound`,
 * `ContextLengthExceeded`, `QuotaExhausted`, `ServerError`, `Timeout`.
 *
 * @since 0.3.0
 */
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type { ChatChunk } from "./ChatChunk.js"
import type { ChatRequest, Message } from "./ChatRequest.js"
import type { ToolCall } from "./ChatResponse.js"
import { compile } from "./internal/compiledValidator.js"
import * as construct from "./internal/construct.js"
import { eventJson, notJson, notJsonOutcome } from "./internal/eventJson.js"
import type {
  Call,
  Endpoint,
  ErrorClassification,
  ErrorReport,
  EventOutcome,
  InBandError,
  ResponseData,
  StreamDecoder
} from "./Provider.js"
import { TypeId } from "./Provider.js"

/**
 * Anthropic's API.
 *
 * @since 0.3.0
 * @category constants
 */
export const defaultBaseUrl = "https://api.anthropic.com"

/**
 * The `anthropic-version` header sent unless the endpoint names another.
 *
 * @since 0.3.0
 * @category constants
 */
export const defaultVersion = "2023-06-01"

/**
 * The `max_tokens` sent when the request gives none (the API requires one).
 *
 * @since 0.3.0
 * @category constants
 */
export const defaultMaxTokens = 4096

const WireUsage = Schema.Struct({
  input_tokens: Schema.optional(Schema.NullOr(Schema.Number)),
  output_tokens: Schema.optional(Schema.NullOr(Schema.Number)),
  cache_creation_input_tokens: Schema.optional(Schema.NullOr(Schema.Number)),
  cache_read_input_tokens: Schema.optional(Schema.NullOr(Schema.Number))
})
type WireUsage = typeof WireUsage.Type

const WireBlock = Schema.Struct({
  type: Schema.String,
  text: Schema.optional(Schema.String),
  id: Schema.optional(Schema.String),
  name: Schema.optional(Schema.String),
  input: Schema.optional(Schema.Unknown)
})

/**
 * The non-streaming response body (a `message`), as far as the router reads it.
 *
 * @since 0.3.0
 * @category schemas
 */
export const WireResponse = Schema.Struct({
  id: Schema.optional(Schema.String),
  type: Schema.optional(Schema.String),
  role: Schema.optional(Schema.String),
  model: Schema.optional(Schema.String),
  content: Schema.Array(WireBlock),
  stop_reason: Schema.optional(Schema.NullOr(Schema.String)),
  usage: Schema.optional(Schema.NullOr(WireUsage))
})

/**
 * `message_start`.
 *
 * @since 0.3.0
 * @category schemas
 */
export const WireMessageStart = Schema.Struct({
  type: Schema.Literal("message_start"),
  message: Schema.Struct({
    id: Schema.optional(Schema.String),
    model: Schema.optional(Schema.String),
    usage: Schema.optional(Schema.NullOr(WireUsage))
  })
})

/**
 * `content_block_start`.
 *
 * @since 0.3.0
 * @category schemas
 */
export const WireContentBlockStart = Schema.Struct({
  type: Schema.Literal("content_block_start"),
  index: Schema.Number,
  content_block: WireBlock
})

/**
 * `content_block_delta` (`text_delta`, `input_json_delta`; other delta types carry nothing the router reads).
 *
 * @since 0.3.0
 * @category schemas
 */
export const WireContentBlockDelta = Schema.Struct({
  type: Schema.Literal("content_block_delta"),
  index: Schema.Number,
  delta: Schema.Struct({
    type: Schema.String,
    text: Schema.optional(Schema.String),
    partial_json: Schema.optional(Schema.String)
  })
})

/**
 * `message_delta`.
 *
 * @since 0.3.0
 * @category schemas
 */
export const WireMessageDelta = Schema.Struct({
  type: Schema.Literal("message_delta"),
  delta: Schema.optional(Schema.NullOr(Schema.Struct({
    stop_reason: Schema.optional(Schema.NullOr(Schema.String))
  }))),
  usage: Schema.optional(Schema.NullOr(WireUsage))
})

/**
 * An error body (`{ "type": "error", "error": { "type", "message" } }`), also the data of an in-stream `error` event.
 *
 * @since 0.3.0
 * @category schemas
 */
export const WireError = Schema.Struct({
  type: Schema.optional(Schema.String),
  error: Schema.Struct({
    type: Schema.String,
    message: Schema.optional(Schema.String),
    details: Schema.optional(
      Schema.NullOr(Schema.Struct({ error_code: Schema.optional(Schema.NullOr(Schema.String)) }))
    )
  })
})

const responseValidator = compile(WireResponse)
const startValidator = compile(WireMessageStart)
const blockStartValidator = compile(WireContentBlockStart)
const blockDeltaValidator = compile(WireContentBlockDelta)
const messageDeltaValidator = compile(WireMessageDelta)
const errorValidator = compile(WireError)

/**
 * @since 0.3.0
 * @category models
 */
export interface Options {
  /** The server (default {@link defaultBaseUrl}); `/v1/messages` is added. */
  readonly baseUrl?: string | undefined
  /** Sent as `x-api-key`. */
  readonly apiKey: Redacted.Redacted<string>
  /** The `anthropic-version` header (default {@link defaultVersion}). */
  readonly version?: string | undefined
  /** `max_tokens` when the request gives none (default {@link defaultMaxTokens}). */
  readonly defaultMaxTokens?: number | undefined
  /** The provider label of models on this endpoint (default `anthropic`). */
  readonly provider?: string | undefined
  /** Extra headers sent with every request (e.g. `anthropic-beta`). */
  readonly headers?: Readonly<Record<string, string>> | undefined
}

const trimSlash = (url: string): string => url.replace(/\/+$/, "")

/**
 * An Anthropic Messages endpoint.
 *
 * @example
 * ```ts
 * import { Config, Effect } from "effect"
 * import { Anthropic, Model } from "effect-llm-router"
 *
 * // The key is Redacted: it never appears in errors, logs or spans.
 * export const claude = Effect.map(Config.redacted("ANTHROPIC_API_KEY"), (apiKey) =>
 *   Model.make({ name: "claude-sonnet-4-5", endpoint: Anthropic.endpoint({ apiKey }) }))
 * ```
 *
 * @since 0.3.0
 * @category constructors
 */
export const endpoint = (options: Options): Endpoint => {
  const baseUrl = options.baseUrl ?? defaultBaseUrl
  const maxTokens = options.defaultMaxTokens ?? defaultMaxTokens
  let base = HttpClientRequest.post(`${trimSlash(baseUrl)}/v1/messages`).pipe(
    HttpClientRequest.acceptJson,
    HttpClientRequest.setHeader("x-api-key", Redacted.value(options.apiKey)),
    HttpClientRequest.setHeader("anthropic-version", options.version ?? defaultVersion)
  )
  if (options.headers !== undefined) base = HttpClientRequest.setHeaders(base, options.headers)
  return {
    [TypeId]: TypeId,
    protocol: "anthropic",
    provider: options.provider ?? "anthropic",
    baseUrl,
    secrets: [options.apiKey],
    statusOverrides: {},
    httpRequest: (call) =>
      HttpClientRequest.bodyUnsafeJson(base, toWire(call.model, call.request, call.stream, maxTokens)),
    decodeResponse,
    streamDecoder,
    classifyError
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// request
// ---------------------------------------------------------------------------------------------------------------------

// OpenAI fields this module translates, and OpenAI sampling parameters Anthropic does not have.
const translated = new Set([
  "messages",
  "max_tokens",
  "stop",
  "tools",
  "tool_choice",
  "functions",
  "function_call",
  "user",
  "parallel_tool_calls",
  "model_kwargs"
])
const dropped = new Set([
  "presence_penalty",
  "frequency_penalty",
  "seed",
  "logit_bias",
  "logprobs",
  "top_logprobs",
  "stream_options"
])

type Block = Record<string, unknown>

const parseInput = (args: string): unknown => {
  try {
    return JSON.parse(args)
  } catch {
    // Not JSON: sent as it is, for the server to reject with its own message rather than a silent `{}`.
    return args
  }
}

const imageBlock = (part: Record<string, unknown>): Block => {
  const image = part.image_url
  const url = typeof image === "string" ? image : (image as { url?: unknown } | undefined)?.url
  if (typeof url !== "string") return part
  const data = /^data:([^;,]+);base64,(.*)$/s.exec(url)
  return data === null
    ? { type: "image", source: { type: "url", url } }
    : { type: "image", source: { type: "base64", media_type: data[1], data: data[2] } }
}

const userContent = (content: string | ReadonlyArray<Record<string, unknown>>): string | Array<Block> =>
  typeof content === "string"
    ? content
    : content.map((part) => part.type === "image_url" ? imageBlock(part) : { ...part })

/**
 * The Messages request body for a call: `model`, `max_tokens`, `system`, `messages`, and the translated parameters.
 *
 * @since 0.3.0
 * @category encoding
 */
export const toWire = (
  model: string,
  request: ChatRequest,
  stream: boolean,
  maxTokens: number = defaultMaxTokens
): Record<string, unknown> => {
  const system: Array<string> = []
  const messages: Array<{ role: "user" | "assistant"; content: string | Array<Block> }> = []
  // Consecutive tool results go in one user turn, right after the assistant's tool calls.
  const pushBlocks = (role: "user" | "assistant", blocks: Array<Block>) => {
    const last = messages[messages.length - 1]
    if (last !== undefined && last.role === role && Array.isArray(last.content) && role === "user") {
      last.content.push(...blocks)
    } else {
      messages.push({ role, content: blocks })
    }
  }
  for (const message of request.messages as ReadonlyArray<Message>) {
    switch (message.role) {
      case "system":
        system.push(message.content)
        break
      case "user":
        messages.push({ role: "user", content: userContent(message.content) })
        break
      case "assistant": {
        const blocks: Array<Block> = []
        if (message.content != null && message.content.length > 0) blocks.push({ type: "text", text: message.content })
        for (const call of message.tool_calls ?? []) {
          blocks.push({
            type: "tool_use",
            id: call.id,
            name: call.function.name,
            input: parseInput(call.function.arguments)
          })
        }
        if (message.function_call !== undefined) {
          const fn = message.function_call
          blocks.push({ type: "tool_use", id: fn.name, name: fn.name, input: parseInput(fn.arguments) })
        }
        messages.push({
          role: "assistant",
          content: blocks.length === 0 || (blocks.length === 1 && blocks[0]!.type === "text")
            ? message.content ?? ""
            : blocks
        })
        break
      }
      case "tool":
        pushBlocks("user", [{ type: "tool_result", tool_use_id: message.tool_call_id, content: message.content }])
        break
      case "function":
        pushBlocks("user", [{ type: "tool_result", tool_use_id: message.name, content: message.content }])
        break
    }
  }
  const body: Record<string, unknown> = { model, max_tokens: request.max_tokens ?? maxTokens }
  if (system.length > 0) body.system = system.join("\n\n")
  body.messages = messages
  for (const key in request) {
    if (translated.has(key) || dropped.has(key)) continue
    const value = (request as Record<string, unknown>)[key]
    if (value === undefined || (key === "n" && value === 1)) continue
    body[key] = value
  }
  if (request.stop !== undefined) body.stop_sequences = typeof request.stop === "string" ? [request.stop] : request.stop
  if (request.user !== undefined) {
    const metadata = body.metadata
    body.metadata = { ...(typeof metadata === "object" && metadata !== null ? metadata : {}), user_id: request.user }
  }
  const definitions = [...(request.tools ?? []).map((t) => t.function), ...(request.functions ?? [])]
  if (definitions.length > 0) {
    body.tools = definitions.map((f) => ({
      name: f.name,
      ...(f.description === undefined ? {} : { description: f.description }),
      input_schema: f.parameters ?? { type: "object", properties: {} }
    }))
  }
  const choice = request.tool_choice ?? request.function_call
  const parallel = (request as { readonly parallel_tool_calls?: unknown }).parallel_tool_calls
  if (choice !== undefined || parallel === false) {
    const toolChoice: Record<string, unknown> = choice === undefined
      ? { type: "auto" }
      : typeof choice === "string"
      ? { type: choice === "required" ? "any" : choice }
      : { type: "tool", name: "function" in choice ? choice.function.name : choice.name }
    if (parallel === false && toolChoice.type !== "none") toolChoice.disable_parallel_tool_use = true
    body.tool_choice = toolChoice
  }
  if (request.model_kwargs !== undefined) {
    // Defined rather than assigned, so that a `__proto__` key is sent as a field instead of replacing the prototype.
    for (const key of Object.keys(request.model_kwargs)) {
      Object.defineProperty(body, key, {
        value: request.model_kwargs[key],
        enumerable: true,
        writable: true,
        configurable: true
      })
    }
  }
  if (stream) body.stream = true
  return body
}

// ---------------------------------------------------------------------------------------------------------------------
// answers
// ---------------------------------------------------------------------------------------------------------------------

/**
 * Our finish reason for an Anthropic `stop_reason`.
 *
 * @since 0.3.0
 * @category decoding
 */
export const finishReason = (stopReason: string): string => {
  switch (stopReason) {
    case "end_turn":
    case "stop_sequence":
      return "stop"
    case "max_tokens":
      return "length"
    case "tool_use":
      return "tool_calls"
    case "refusal":
      return "content_filter"
    default:
      return stopReason
  }
}

const promptTokens = (u: WireUsage): number =>
  (u.input_tokens ?? 0) + (u.cache_creation_input_tokens ?? 0) + (u.cache_read_input_tokens ?? 0)

const isErrorBody = (body: unknown): boolean =>
  typeof body === "object" && body !== null && (body as { type?: unknown }).type === "error"

const decodeResponse = (call: Call, body: unknown): Either.Either<ResponseData, string | InBandError> => {
  if (isErrorBody(body)) return Either.left({ _tag: "InBandError", payload: body })
  if (!responseValidator.is(body)) return Either.left(responseValidator.explain(body))
  let text = ""
  const toolCalls: Array<ToolCall> = []
  for (const block of body.content) {
    if (block.type === "text" && block.text !== undefined) text += block.text
    else if (block.type === "tool_use") {
      toolCalls.push(
        construct.toolCall({
          id: block.id ?? "",
          name: block.name ?? "",
          arguments: JSON.stringify(block.input ?? {})
        })
      )
    }
  }
  const usage = body.usage
  return Either.right({
    id: body.id ?? "",
    model: body.model ?? call.model,
    provider: call.provider,
    choices: [
      construct.choice({
        index: 0,
        text,
        role: body.role ?? "assistant",
        finishReason: body.stop_reason == null ? null : finishReason(body.stop_reason),
        toolCalls
      })
    ],
    usage: usage == null ? undefined : construct.usage({
      promptTokens: promptTokens(usage),
      completionTokens: usage.output_tokens ?? 0,
      totalTokens: promptTokens(usage) + (usage.output_tokens ?? 0)
    })
  })
}

const streamDecoder = (call: Call): StreamDecoder => {
  let served: { model: string; provider: string; id?: string } | undefined
  let prompt = 0
  // Content block index → tool call index (tool calls are numbered from 0 in the order they start).
  const tools = new Map<number, number>()
  const onEvent = (event: { readonly event: string; readonly data: string }, out: Array<ChatChunk>): EventOutcome => {
    const json = eventJson(event.data)
    if (json === notJson) return notJsonOutcome(event.data)
    const type = typeof json === "object" && json !== null && typeof (json as { type?: unknown }).type === "string"
      ? (json as { type: string }).type
      : event.event
    switch (type) {
      case "content_block_delta": {
        if (!blockDeltaValidator.is(json)) return { _tag: "Malformed", reason: blockDeltaValidator.explain(json) }
        const delta = json.delta
        if (delta.type === "text_delta") {
          if (delta.text === undefined) return { _tag: "Malformed", reason: "text_delta without text" }
          if (delta.text.length > 0) out.push({ _tag: "TextDelta", index: 0, text: delta.text })
        } else if (delta.type === "input_json_delta") {
          const toolCallIndex = tools.get(json.index)
          if (toolCallIndex === undefined || delta.partial_json === undefined) {
            return { _tag: "Malformed", reason: `input_json_delta for block ${json.index}, which is not a tool_use` }
          }
          if (delta.partial_json.length > 0) {
            out.push({ _tag: "ToolCallDelta", index: 0, toolCallIndex, arguments: delta.partial_json })
          }
        }
        // thinking, signature and citation deltas carry nothing a choice holds
        return undefined
      }
      case "ping":
      case "content_block_stop":
        return undefined
      case "message_start": {
        if (!startValidator.is(json)) return { _tag: "Malformed", reason: startValidator.explain(json) }
        const message = json.message
        const usage = message.usage
        if (usage != null) prompt = promptTokens(usage)
        served = {
          model: message.model ?? call.model,
          provider: call.provider,
          ...(message.id === undefined ? {} : { id: message.id })
        }
        return undefined
      }
      case "content_block_start": {
        if (!blockStartValidator.is(json)) return { _tag: "Malformed", reason: blockStartValidator.explain(json) }
        const block = json.content_block
        if (block.type === "text") {
          if (block.text !== undefined && block.text.length > 0) {
            out.push({ _tag: "TextDelta", index: 0, text: block.text })
          }
        } else if (block.type === "tool_use") {
          const toolCallIndex = tools.size
          tools.set(json.index, toolCallIndex)
          const input = block.input
          const initial = input === undefined || (typeof input === "object" && input !== null &&
              Object.keys(input).length === 0)
            ? ""
            : JSON.stringify(input)
          out.push({
            _tag: "ToolCallDelta",
            index: 0,
            toolCallIndex,
            ...(block.id === undefined ? {} : { id: block.id }),
            ...(block.name === undefined ? {} : { name: block.name }),
            arguments: initial
          })
        }
        return undefined
      }
      case "message_delta": {
        if (!messageDeltaValidator.is(json)) return { _tag: "Malformed", reason: messageDeltaValidator.explain(json) }
        const stop = json.delta?.stop_reason
        if (stop != null) out.push({ _tag: "Finish", index: 0, reason: finishReason(stop) })
        const usage = json.usage
        if (usage != null) {
          // message_delta's usage is cumulative; its input counts, when present, supersede message_start's.
          const input = usage.input_tokens == null ? prompt : promptTokens(usage)
          const output = usage.output_tokens ?? 0
          out.push({ _tag: "Usage", promptTokens: input, completionTokens: output, totalTokens: input + output })
        }
        return undefined
      }
      case "message_stop":
        return "done"
      case "error":
        return { _tag: "InBandError", payload: json }
      case "":
        return { _tag: "Malformed", reason: "event without a type" }
      default:
        // Anthropic may add event types; one this module does not know carries nothing it could read.
        return undefined
    }
  }
  return { onEvent, served: () => served }
}

// ---------------------------------------------------------------------------------------------------------------------
// errors
// ---------------------------------------------------------------------------------------------------------------------

const contextLength = /prompt is too long|too many (input )?tokens|exceeds? the (model'?s? )?context (window|length)/i
const credit = /credit balance is too low|usage limits?|spend(ing)? limit|purchase credits/i

/**
 * The failure mode of an Anthropic error body (`error.type`, refined by the message), or `undefined` when the body is
 * not Anthropic's.
 *
 * @since 0.3.0
 * @category errors
 */
export const classifyError = (report: ErrorReport): ErrorClassification | undefined => {
  if (!errorValidator.is(report.body)) return undefined
  const error = report.body.error
  const message = error.message ?? ""
  switch (error.type) {
    case "rate_limit_error":
      return {
        tag: error.details?.error_code === "enforced_spend_limit_reached" || credit.test(message)
          ? "QuotaExhausted"
          : "RateLimited"
      }
    case "overloaded_error":
      return { tag: "ServiceUnavailable" }
    case "invalid_request_error":
      // Anthropic uses this type for 4xx statuses it names no other type for: the status decides unless the message
      // is a spent credit or a prompt too long (or there is no status: an in-band error).
      return credit.test(message)
        ? { tag: "QuotaExhausted" }
        : contextLength.test(message)
        ? { tag: "ContextLengthExceeded" }
        : report.status === undefined
        ? { tag: "BadRequest" }
        : undefined
    case "authentication_error":
      return { tag: "AuthenticationFailed" }
    case "permission_error":
      return { tag: "PermissionDenied" }
    case "not_found_error":
      return { tag: "ModelNotFound" }
    case "request_too_large":
      return { tag: "ContextLengthExceeded" }
    case "billing_error":
      return { tag: "QuotaExhausted" }
    case "api_error":
      return { tag: "ServerError" }
    case "timeout_error":
      return { tag: "Timeout" }
    default:
      return undefined
  }
}
