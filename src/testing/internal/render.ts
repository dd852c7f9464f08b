/**
 * Pure rendering of scripted upstream steps into wire actions, shared by the
 * Node `SimulatedUpstream` server and the in-memory `FakeHttpClient` so that
 * both produce byte-identical responses. Runtime-agnostic: no `node:` imports.
 * Part of the test kit: only `src/testing` modules import it.
 *
 * @since 0.1.0
 * @internal
 */
import type * as UpstreamScript from "../UpstreamScript.js"

/**
 * One thing to do on the response body, in order.
 *
 * - `Write`: send these bytes (flush them separately from other writes).
 * - `Wait`: stay silent for `ms` milliseconds.
 * - `Cut`: reset the connection abruptly; nothing follows.
 * - `Hang`: stay silent until the client or the server goes away, emitting
 *   the plan's keep-alive, if any; nothing follows.
 * - `End`: cleanly end the body; nothing follows.
 *
 * @since 0.1.0
 * @category models
 * @internal
 */
export type WireAction =
  | { readonly _tag: "Write"; readonly bytes: Uint8Array }
  | { readonly _tag: "Wait"; readonly ms: number }
  | { readonly _tag: "Cut" }
  | { readonly _tag: "Hang" }
  | { readonly _tag: "End" }

/**
 * Periodic bytes to send while hanging.
 *
 * @since 0.1.0
 * @category models
 * @internal
 */
export interface KeepAlive {
  readonly everyMs: number
  readonly bytes: Uint8Array
}

/**
 * The full answer to one request: either no status line ever, or a status and
 * headers sent after `headersDelayMs`, followed by `actions`.
 *
 * @since 0.1.0
 * @category models
 * @internal
 */
export type WirePlan =
  | { readonly _tag: "HangBeforeHeaders" }
  | {
    readonly _tag: "Respond"
    readonly headersDelayMs: number
    readonly status: number
    readonly headers: Readonly<Record<string, string>>
    readonly actions: ReadonlyArray<WireAction>
    readonly keepAlive: KeepAlive | null
  }

/**
 * Everything about the request that rendering depends on.
 *
 * @since 0.1.0
 * @category models
 * @internal
 */
export interface RenderContext {
  readonly protocol: UpstreamScript.Protocol
  readonly model: string
  /** GPTRouter `providerName` of the served entry. */
  readonly provider: string
  readonly stream: boolean
  /** Response id, e.g. `chatcmpl-3`. */
  readonly id: string
  /** Unix seconds. */
  readonly created: number
  /** OpenAI `stream_options.include_usage` of the request. */
  readonly requestedUsage: boolean
  /** Server-level wire options; the step's own `wire` overrides them. */
  readonly wire: UpstreamScript.WireOptions
}

// ---------------------------------------------------------------------------
// content
// ---------------------------------------------------------------------------

type Piece =
  | { readonly _tag: "Text"; readonly text: string }
  | { readonly _tag: "ToolStart"; readonly index: number; readonly id: string; readonly name: string }
  | { readonly _tag: "ToolArgs"; readonly index: number; readonly args: string }

interface Content {
  readonly text: string | null
  readonly toolCalls: ReadonlyArray<{ readonly id: string; readonly name: string; readonly arguments: string }>
  readonly pieces: ReadonlyArray<Piece>
  readonly usage: UpstreamScript.Usage
  readonly finishReason: string
}

// Cuts text into pieces of `size` code points, so that no piece splits a
// surrogate pair.
const splitText = (text: string, size: number): ReadonlyArray<string> => {
  const codePoints = Array.from(text)
  const out: Array<string> = []
  for (let i = 0; i < codePoints.length; i += size) {
    out.push(codePoints.slice(i, i + size).join(""))
  }
  return out
}

const resolveContent = (
  options: UpstreamScript.ContentOptions & { readonly finishReason?: string },
  ctx: RenderContext
): Content => {
  const toolCalls = (options.toolCalls ?? []).map((call) => ({
    id: call.id,
    name: call.name,
    arguments: typeof call.arguments === "string" ? call.arguments : JSON.stringify(call.arguments)
  }))
  const text = options.text ??
    (options.chunks !== undefined
      ? options.chunks.join("")
      : toolCalls.length > 0
      ? null
      : `Hello from ${ctx.model}`)
  const chunks = options.chunks ?? (text === null ? [] : splitText(text, 4))
  const pieces: Array<Piece> = chunks.map((text) => ({ _tag: "Text", text }))
  // GPTRouter has no tool-call events, so its streams carry text only. Gemini sends each function call whole, in
  // one piece; OpenAI and Anthropic stream its arguments.
  if (ctx.protocol !== "gptrouter") {
    toolCalls.forEach((call, index) => {
      pieces.push({ _tag: "ToolStart", index, id: call.id, name: call.name })
      if (ctx.protocol === "gemini") return
      for (const args of splitText(call.arguments, 8)) {
        pieces.push({ _tag: "ToolArgs", index, args })
      }
    })
  }
  return {
    text,
    toolCalls,
    pieces,
    usage: options.usage ?? { promptTokens: 10, completionTokens: pieces.length },
    finishReason: options.finishReason ?? (toolCalls.length > 0 ? "tool_calls" : "stop")
  }
}

const usageJson = (usage: UpstreamScript.Usage) => ({
  prompt_tokens: usage.promptTokens,
  completion_tokens: usage.completionTokens,
  total_tokens: usage.promptTokens + usage.completionTokens
})

// ---------------------------------------------------------------------------
// error bodies
// ---------------------------------------------------------------------------

/**
 * What an error body says.
 *
 * @since 0.1.0
 * @category models
 * @internal
 */
export interface ErrorInfo {
  readonly message: string
  readonly type: string
  readonly code: string | null
}

/**
 * The error a real server sends for `status` when the script names none.
 *
 * @since 0.1.0
 * @category rendering
 * @internal
 */
export const defaultError = (status: number, model: string): ErrorInfo => {
  switch (status) {
    case 400:
      return { message: "Invalid request.", type: "invalid_request_error", code: null }
    case 401:
      return { message: "Incorrect API key provided.", type: "invalid_request_error", code: "invalid_api_key" }
    case 403:
      return {
        message: `You are not allowed to use the model \`${model}\`.`,
        type: "invalid_request_error",
        code: "permission_denied"
      }
    case 404:
      return {
        message: `The model \`${model}\` does not exist`,
        type: "invalid_request_error",
        code: "model_not_found"
      }
    case 406:
      return { message: `Model ${model} is not available`, type: "invalid_request_error", code: null }
    case 408:
      return { message: "Request timed out.", type: "timeout", code: null }
    case 429:
      return {
        message: "Rate limit reached for requests. Please try again later.",
        type: "rate_limit_exceeded",
        code: "rate_limit_exceeded"
      }
    case 500:
      return {
        message: "The server had an error while processing your request. Sorry about that!",
        type: "server_error",
        code: null
      }
    case 502:
      return { message: "Bad gateway.", type: "server_error", code: null }
    case 503:
      return {
        message: "The engine is currently overloaded, please try again later.",
        type: "server_error",
        code: null
      }
    case 504:
      return { message: "Gateway timeout.", type: "server_error", code: null }
    default:
      return {
        message: `Upstream error ${status}.`,
        type: status >= 500 ? "server_error" : "invalid_request_error",
        code: null
      }
  }
}

// Anthropic's error types (https://docs.claude.com/en/api/errors) by status, and the OpenAI codes the script
// constructors use translated to what Anthropic says in the same situation.
const anthropicTypes = new Set([
  "invalid_request_error",
  "authentication_error",
  "billing_error",
  "permission_error",
  "not_found_error",
  "request_too_large",
  "rate_limit_error",
  "api_error",
  "timeout_error",
  "overloaded_error",
  "conflict_error"
])

const anthropicTypeOfStatus = (status: number): string => {
  switch (status) {
    case 400:
      return "invalid_request_error"
    case 401:
      return "authentication_error"
    case 402:
      return "billing_error"
    case 403:
      return "permission_error"
    case 404:
      return "not_found_error"
    case 408:
    case 504:
      return "timeout_error"
    case 409:
      return "conflict_error"
    case 413:
      return "request_too_large"
    case 429:
      return "rate_limit_error"
    case 503:
    case 529:
      return "overloaded_error"
    default:
      return status >= 500 ? "api_error" : "invalid_request_error"
  }
}

/** The Anthropic error type for a type named in OpenAI's vocabulary (an in-band error's `type`). */
const anthropicType = (type: string, status: number | undefined): string =>
  anthropicTypes.has(type)
    ? type
    : type === "rate_limit_exceeded"
    ? "rate_limit_error"
    : type === "overloaded" || type === "unavailable"
    ? "overloaded_error"
    : status === undefined
    ? "api_error"
    : anthropicTypeOfStatus(status)

const anthropicError = (status: number, info: ErrorInfo): Record<string, unknown> => {
  switch (info.code) {
    case "insufficient_quota":
      return status === 429
        ? {
          type: "rate_limit_error",
          message: "Your organization has reached its monthly spend limit.",
          details: { error_code: "enforced_spend_limit_reached" }
        }
        : {
          type: "invalid_request_error",
          message:
            "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits."
        }
    case "context_length_exceeded":
      return { type: "invalid_request_error", message: "prompt is too long: 208310 tokens > 200000 maximum" }
    case "invalid_api_key":
      return { type: "authentication_error", message: "invalid x-api-key" }
    default:
      // `invalid_request_error` is what OpenAI calls most 4xx; Anthropic names each status's own type.
      return {
        type: info.type === "invalid_request_error" ? anthropicTypeOfStatus(status) : anthropicType(info.type, status),
        message: info.message
      }
  }
}

// Gemini's error statuses (google.rpc.Code names) by HTTP status.
const geminiStatuses: Readonly<Record<string, number>> = {
  INVALID_ARGUMENT: 400,
  FAILED_PRECONDITION: 400,
  UNAUTHENTICATED: 401,
  PERMISSION_DENIED: 403,
  NOT_FOUND: 404,
  ABORTED: 409,
  RESOURCE_EXHAUSTED: 429,
  CANCELLED: 499,
  INTERNAL: 500,
  UNAVAILABLE: 503,
  DEADLINE_EXCEEDED: 504
}

const geminiStatusOf = (status: number): string => {
  for (const [name, code] of Object.entries(geminiStatuses)) {
    if (code === status && name !== "FAILED_PRECONDITION") return name
  }
  return status === 408 ? "DEADLINE_EXCEEDED" : status >= 500 ? "UNKNOWN" : "FAILED_PRECONDITION"
}

const geminiStatusOfType = (type: string): string =>
  type in geminiStatuses
    ? type
    : type === "rate_limit_exceeded"
    ? "RESOURCE_EXHAUSTED"
    : type === "overloaded" || type === "overloaded_error" || type === "unavailable"
    ? "UNAVAILABLE"
    : "INTERNAL"

const geminiQuotaMessage = "You exceeded your current quota, please check your plan and billing details. For more " +
  "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits."

const quotaFailure = (quotaId: string, quotaValue: string) => ({
  "@type": "type.googleapis.com/google.rpc.QuotaFailure",
  violations: [{
    quotaMetric: "generativelanguage.googleapis.com/generate_content_free_tier_requests",
    quotaId,
    quotaValue
  }]
})

const geminiError = (status: number, info: ErrorInfo): Record<string, unknown> => {
  const error = (message: string, details?: ReadonlyArray<unknown>) => ({
    code: status,
    message,
    status: geminiStatusOf(status),
    ...(details === undefined ? {} : { details })
  })
  switch (info.code) {
    case "insufficient_quota":
      // The daily quota is spent: waiting a minute does not help.
      return error(geminiQuotaMessage, [quotaFailure("GenerateRequestsPerDayPerProjectPerModel-FreeTier", "250")])
    case "rate_limit_exceeded":
      // The same message as a spent quota: only the quota id tells a per-minute limit apart.
      return error(geminiQuotaMessage, [quotaFailure("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "10")])
    case "context_length_exceeded":
      return error("The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).")
    case "invalid_api_key":
      return error("API key not valid. Please pass a valid API key.", [{
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        reason: "API_KEY_INVALID",
        domain: "googleapis.com",
        metadata: { service: "generativelanguage.googleapis.com" }
      }])
    default:
      return error(info.message)
  }
}

/**
 * An error body in the protocol's own shape. Anthropic and Gemini bodies translate the OpenAI codes the script
 * constructors set (`insufficient_quota`, `rate_limit_exceeded`, `context_length_exceeded`, `invalid_api_key`) to what
 * those providers send in the same situation; otherwise their type (Anthropic `error.type`, Gemini `error.status`)
 * follows the HTTP status.
 *
 * @since 0.1.0
 * @category rendering
 * @internal
 */
export const errorBody = (protocol: UpstreamScript.Protocol, status: number, info: ErrorInfo): string => {
  switch (protocol) {
    case "openai":
      return JSON.stringify({ error: { message: info.message, type: info.type, code: info.code } })
    case "gptrouter":
      return JSON.stringify({ message: info.message })
    case "anthropic":
      return JSON.stringify({ type: "error", error: anthropicError(status, info) })
    case "gemini":
      return JSON.stringify({ error: geminiError(status, info) })
  }
}

// ---------------------------------------------------------------------------
// framing
// ---------------------------------------------------------------------------

type Draft =
  | { readonly _tag: "Text"; readonly text: string }
  | { readonly _tag: "Wait"; readonly ms: number }
  | { readonly _tag: "Cut" }
  | { readonly _tag: "Hang" }
  | { readonly _tag: "End" }

const write = (text: string): Draft => ({ _tag: "Text", text })
const wait = (ms: number | undefined): ReadonlyArray<Draft> => ms !== undefined && ms > 0 ? [{ _tag: "Wait", ms }] : []
const END: Draft = { _tag: "End" }
const CUT: Draft = { _tag: "Cut" }
const HANG: Draft = { _tag: "Hang" }

const encoder = new TextEncoder()

const finalize = (
  drafts: ReadonlyArray<Draft>,
  wire: UpstreamScript.WireOptions,
  keepAlive: KeepAlive | null
): ReadonlyArray<WireAction> => {
  const out: Array<WireAction> = []
  const split = wire.splitEvery !== undefined && wire.splitEvery >= 1 ? Math.floor(wire.splitEvery) : undefined
  const pushBytes = (bytes: Uint8Array) => {
    if (split === undefined) {
      out.push({ _tag: "Write", bytes })
      return
    }
    for (let i = 0; i < bytes.length; i += split) {
      out.push({ _tag: "Write", bytes: bytes.slice(i, i + split) })
    }
  }
  for (const draft of drafts) {
    switch (draft._tag) {
      case "Text": {
        if (draft.text.length > 0) {
          pushBytes(encoder.encode(draft.text))
        }
        break
      }
      case "Wait": {
        // Keep-alives are what a proxy sends while the model is silent, so
        // they fill waits rather than being a separate schedule.
        let remaining = draft.ms
        if (keepAlive !== null) {
          while (remaining > keepAlive.everyMs) {
            out.push({ _tag: "Wait", ms: keepAlive.everyMs })
            pushBytes(keepAlive.bytes)
            remaining -= keepAlive.everyMs
          }
        }
        if (remaining > 0) {
          out.push({ _tag: "Wait", ms: remaining })
        }
        break
      }
      default: {
        out.push(draft)
      }
    }
  }
  return out
}

const effectiveWire = (ctx: RenderContext, step: UpstreamScript.Step): UpstreamScript.WireOptions => ({
  ...ctx.wire,
  ...step.wire
})

const sseHeaders = (ctx: RenderContext): Record<string, string> => ({
  "content-type": "text/event-stream",
  "cache-control": "no-cache",
  "x-request-id": ctx.id
})

const jsonHeaders = (ctx: RenderContext, body: string | null): Record<string, string> => {
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "x-request-id": ctx.id
  }
  if (body !== null) {
    headers["content-length"] = String(encoder.encode(body).length)
  }
  return headers
}

const respond = (
  headersDelayMs: number | undefined,
  status: number,
  headers: Record<string, string>,
  drafts: ReadonlyArray<Draft>,
  wire: UpstreamScript.WireOptions,
  keepAlive: KeepAlive | null
): WirePlan => ({
  _tag: "Respond",
  headersDelayMs: Math.max(0, headersDelayMs ?? 0),
  status,
  headers,
  actions: finalize(drafts, wire, keepAlive),
  keepAlive
})

// ---------------------------------------------------------------------------
// protocol event encoders
// ---------------------------------------------------------------------------

interface Encoder {
  readonly preamble: ReadonlyArray<string>
  readonly piece: (piece: Piece, isLast: boolean) => string | null
  readonly finish: (isLastPieceCarriedIt: boolean) => ReadonlyArray<string>
  readonly usage: () => string | null
  readonly done: ReadonlyArray<string>
  readonly inBandError: (message: string, type: string) => string
  readonly malformed: (kind: UpstreamScript.MalformedKind) => string
}

const sseEvent = (le: string, data: string): string => `data: ${data}${le}${le}`

const openAiEncoder = (ctx: RenderContext, content: Content, le: string, includeUsage: boolean): Encoder => {
  const chunk = (choices: ReadonlyArray<unknown>, extra?: Record<string, unknown>) =>
    JSON.stringify({
      id: ctx.id,
      object: "chat.completion.chunk",
      created: ctx.created,
      model: ctx.model,
      choices,
      ...extra
    })
  const delta = (d: unknown, finishReason: string | null = null) => [
    { index: 0, delta: d, finish_reason: finishReason }
  ]
  return {
    preamble: [sseEvent(le, chunk(delta({ role: "assistant", content: "" })))],
    piece: (piece) => {
      switch (piece._tag) {
        case "Text":
          return sseEvent(le, chunk(delta({ content: piece.text })))
        case "ToolStart":
          return sseEvent(
            le,
            chunk(delta({
              tool_calls: [{
                index: piece.index,
                id: piece.id,
                type: "function",
                function: { name: piece.name, arguments: "" }
              }]
            }))
          )
        case "ToolArgs":
          return sseEvent(
            le,
            chunk(delta({ tool_calls: [{ index: piece.index, function: { arguments: piece.args } }] }))
          )
      }
    },
    finish: () => [sseEvent(le, chunk(delta({}, content.finishReason)))],
    usage: () => includeUsage ? sseEvent(le, chunk([], { usage: usageJson(content.usage) })) : null,
    done: [sseEvent(le, "[DONE]")],
    inBandError: (message, type) => sseEvent(le, JSON.stringify({ error: { message, type } })),
    malformed: (kind) => {
      switch (kind) {
        case "not-json":
          // A truncated chunk: the most common way real streams carry non-JSON.
          return sseEvent(
            le,
            `{"id":"${ctx.id}","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":`
          )
        case "wrong-schema":
          return sseEvent(le, JSON.stringify({ id: ctx.id, object: "chat.completion.chunk", choices: "not-a-list" }))
        case "bad-event":
          return `event: mystery${le}data: ${JSON.stringify({ type: "mystery" })}${le}${le}`
      }
    }
  }
}

const gptRouterEncoder = (ctx: RenderContext, content: Content, le: string, includeUsage: boolean): Encoder => {
  const event = (name: string, data: unknown) => sseEvent(le, JSON.stringify({ event: name, data }))
  return {
    preamble: [event("generation_source", { modelId: ctx.model, providerId: ctx.provider })],
    piece: (piece, isLast) =>
      piece._tag === "Text"
        ? event("update", isLast ? { text: piece.text, finish_reason: content.finishReason } : { text: piece.text })
        : null,
    // The finish reason rides on the last update; only an empty answer needs
    // an update of its own to carry it.
    finish: (carried) => carried ? [] : [event("update", { text: "", finish_reason: content.finishReason })],
    usage: () => includeUsage ? event("meta", { usage: usageJson(content.usage) }) : null,
    done: [event("end", {})],
    inBandError: (message) => event("error", { message }),
    malformed: (kind) => {
      switch (kind) {
        case "not-json":
          return sseEvent(le, `{"event":"update","data":{"text":`)
        case "wrong-schema":
          return event("update", { text: 42 })
        case "bad-event":
          return event("mystery", {})
      }
    }
  }
}

const anthropicStopReason = (reason: string): string => {
  switch (reason) {
    case "stop":
      return "end_turn"
    case "length":
      return "max_tokens"
    case "tool_calls":
      return "tool_use"
    case "content_filter":
      return "refusal"
    default:
      return reason
  }
}

const parseArgs = (args: string): unknown => {
  try {
    return JSON.parse(args)
  } catch {
    return {}
  }
}

const anthropicEncoder = (ctx: RenderContext, content: Content, le: string, includeUsage: boolean): Encoder => {
  const event = (name: string, data: Record<string, unknown>) =>
    `event: ${name}${le}data: ${JSON.stringify({ type: name, ...data })}${le}${le}`
  // The content block open now: text, or the tool call of that index.
  let open: { readonly kind: "text" | "tool"; readonly block: number } | undefined
  let blocks = 0
  const start = (kind: "text" | "tool", block: Record<string, unknown>): string => {
    const stop = open === undefined ? "" : event("content_block_stop", { index: open.block })
    open = { kind, block: blocks++ }
    return stop + event("content_block_start", { index: open.block, content_block: block })
  }
  return {
    preamble: [
      event("message_start", {
        message: {
          id: ctx.id,
          type: "message",
          role: "assistant",
          model: ctx.model,
          content: [],
          stop_reason: null,
          stop_sequence: null,
          ...(includeUsage ? { usage: { input_tokens: content.usage.promptTokens, output_tokens: 1 } } : {})
        }
      }),
      event("ping", {})
    ],
    piece: (piece) => {
      switch (piece._tag) {
        case "Text": {
          const opening = open?.kind === "text" ? "" : start("text", { type: "text", text: "" })
          return opening + event("content_block_delta", {
            index: open!.block,
            delta: { type: "text_delta", text: piece.text }
          })
        }
        case "ToolStart":
          return start("tool", { type: "tool_use", id: piece.id, name: piece.name, input: {} })
        case "ToolArgs":
          return event("content_block_delta", {
            index: open?.block ?? 0,
            delta: { type: "input_json_delta", partial_json: piece.args }
          })
      }
    },
    finish: () => {
      const stop = open === undefined ? "" : event("content_block_stop", { index: open.block })
      open = undefined
      return [
        stop + event("message_delta", {
          delta: { stop_reason: anthropicStopReason(content.finishReason), stop_sequence: null },
          ...(includeUsage ? { usage: { output_tokens: content.usage.completionTokens } } : {})
        })
      ]
    },
    usage: () => null,
    done: [event("message_stop", {})],
    inBandError: (message, type) => event("error", { error: { type: anthropicType(type, undefined), message } }),
    malformed: (kind) => {
      switch (kind) {
        case "not-json":
          return `event: content_block_delta${le}data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":${le}${le}`
        case "wrong-schema":
          return event("content_block_delta", { index: 0, delta: { type: "text_delta", text: 42 } })
        case "bad-event":
          // Anthropic may add event types: a client ignores one it does not know.
          return event("mystery", {})
      }
    }
  }
}

const geminiFinishReason = (reason: string): string => {
  switch (reason) {
    case "stop":
    case "tool_calls":
      return "STOP"
    case "length":
      return "MAX_TOKENS"
    case "content_filter":
      return "SAFETY"
    default:
      return reason
  }
}

const geminiUsage = (usage: UpstreamScript.Usage) => ({
  promptTokenCount: usage.promptTokens,
  candidatesTokenCount: usage.completionTokens,
  totalTokenCount: usage.promptTokens + usage.completionTokens
})

const geminiEncoder = (ctx: RenderContext, content: Content, le: string, includeUsage: boolean): Encoder => {
  const chunk = (candidate: Record<string, unknown>, usage: boolean) =>
    sseEvent(
      le,
      JSON.stringify({
        candidates: [{ ...candidate, index: 0 }],
        ...(usage ? { usageMetadata: geminiUsage(content.usage) } : {}),
        modelVersion: ctx.model,
        responseId: ctx.id
      })
    )
  const parts = (parts: ReadonlyArray<unknown>) => ({ content: { parts, role: "model" } })
  return {
    // Gemini sends no preamble and no terminator: the stream is complete when the body ends after a finishReason.
    preamble: [],
    piece: (piece) => {
      switch (piece._tag) {
        case "Text":
          return chunk(parts([{ text: piece.text }]), false)
        case "ToolStart": {
          const call = content.toolCalls[piece.index]!
          return chunk(
            parts([{ functionCall: { id: call.id, name: call.name, args: parseArgs(call.arguments) } }]),
            false
          )
        }
        case "ToolArgs":
          return null
      }
    },
    finish: () => [
      chunk({ ...parts([{ text: "" }]), finishReason: geminiFinishReason(content.finishReason) }, includeUsage)
    ],
    usage: () => null,
    done: [],
    inBandError: (message, type) => {
      const status = geminiStatusOfType(type)
      return sseEvent(le, JSON.stringify({ error: { code: geminiStatuses[status], message, status } }))
    },
    malformed: (kind) => {
      switch (kind) {
        case "not-json":
          return sseEvent(le, `{"candidates":[{"content":{"parts":[{"text":`)
        case "wrong-schema":
          return sseEvent(le, JSON.stringify({ candidates: "not-a-list", responseId: ctx.id }))
        case "bad-event":
          return `event: mystery${le}data: ${JSON.stringify({ mystery: true })}${le}${le}`
      }
    }
  }
}

const encoders = {
  openai: openAiEncoder,
  gptrouter: gptRouterEncoder,
  anthropic: anthropicEncoder,
  gemini: geminiEncoder
} as const

// ---------------------------------------------------------------------------
// rendering
// ---------------------------------------------------------------------------

type StreamingStep = Exclude<UpstreamScript.Step, UpstreamScript.Fail | UpstreamScript.Hang>

const renderStream = (step: StreamingStep, ctx: RenderContext): WirePlan => {
  const wire = effectiveWire(ctx, step)
  const le = wire.lineEnding ?? "\n"
  const content = resolveContent(step, ctx)
  const includeUsage = wire.includeUsage ?? (ctx.protocol === "openai" ? ctx.requestedUsage : true)
  const enc = encoders[ctx.protocol](ctx, content, le, includeUsage)
  const keepAlive: KeepAlive | null = wire.keepAliveEveryMs !== undefined && wire.keepAliveEveryMs > 0
    ? { everyMs: wire.keepAliveEveryMs, bytes: encoder.encode(`: keep-alive${le}${le}`) }
    : null
  const pieces = content.pieces
  const stopAt = step._tag === "Succeed" ? pieces.length : Math.max(0, Math.floor(step.afterChunks))
  // Steps that break the stream never reveal a finish reason, even when they
  // sent every piece.
  let lastTextIndex = -1
  if (step._tag === "Succeed" || step._tag === "Malformed") {
    pieces.forEach((piece, i) => {
      if (piece._tag === "Text") {
        lastTextIndex = i
      }
    })
  }

  const drafts: Array<Draft> = []
  if (wire.retryField !== undefined) {
    drafts.push(write(`retry: ${wire.retryField}${le}${le}`))
  }
  drafts.push(...wait(step.firstTokenDelayMs))
  drafts.push(...enc.preamble.map(write))
  const emitPieces = (from: number, to: number) => {
    for (let i = from; i < Math.min(to, pieces.length); i++) {
      if (i > 0) {
        drafts.push(...wait(step.chunkDelayMs))
      }
      const text = enc.piece(pieces[i]!, i === lastTextIndex)
      if (text !== null) {
        drafts.push(write(text))
      }
    }
  }
  const finishAndEnd = () => {
    drafts.push(...enc.finish(lastTextIndex >= 0).map(write))
    const usage = enc.usage()
    if (usage !== null) {
      drafts.push(write(usage))
    }
    drafts.push(...enc.done.map(write), END)
  }
  emitPieces(0, stopAt)
  const tailDelay = stopAt > 0 ? wait(step.chunkDelayMs) : []
  switch (step._tag) {
    case "Succeed": {
      finishAndEnd()
      break
    }
    case "Stall": {
      drafts.push(HANG)
      break
    }
    case "Cut": {
      drafts.push(...tailDelay, CUT)
      break
    }
    case "EndWithoutFinish": {
      drafts.push(...tailDelay, END)
      break
    }
    case "InBandError": {
      const message = step.message ?? "The server had an error while processing your request."
      drafts.push(...tailDelay, write(enc.inBandError(message, step.type ?? "server_error")), END)
      break
    }
    case "Malformed": {
      drafts.push(...tailDelay, write(enc.malformed(step.kind)))
      emitPieces(stopAt, pieces.length)
      finishAndEnd()
      break
    }
  }
  return respond(step.headersDelayMs, 200, sseHeaders(ctx), drafts, wire, keepAlive)
}

const openAiCompletion = (ctx: RenderContext, content: Content): string => {
  const message: Record<string, unknown> = { role: "assistant", content: content.text }
  if (content.toolCalls.length > 0) {
    message.tool_calls = content.toolCalls.map((call) => ({
      id: call.id,
      type: "function",
      function: { name: call.name, arguments: call.arguments }
    }))
  }
  return JSON.stringify({
    id: ctx.id,
    object: "chat.completion",
    created: ctx.created,
    model: ctx.model,
    choices: [{ index: 0, message, finish_reason: content.finishReason }],
    usage: usageJson(content.usage)
  })
}

const gptRouterCompletion = (ctx: RenderContext, content: Content): string =>
  JSON.stringify({
    id: ctx.id,
    choices: [{ index: 0, text: content.text ?? "", finish_reason: content.finishReason, role: "assistant" }],
    model: ctx.model,
    providerId: ctx.provider,
    modelId: ctx.model,
    meta: { usage: usageJson(content.usage) }
  })

const anthropicCompletion = (ctx: RenderContext, content: Content): string =>
  JSON.stringify({
    id: ctx.id,
    type: "message",
    role: "assistant",
    model: ctx.model,
    content: [
      ...(content.text === null ? [] : [{ type: "text", text: content.text }]),
      ...content.toolCalls.map((call) => ({
        type: "tool_use",
        id: call.id,
        name: call.name,
        input: parseArgs(call.arguments)
      }))
    ],
    stop_reason: anthropicStopReason(content.finishReason),
    stop_sequence: null,
    usage: { input_tokens: content.usage.promptTokens, output_tokens: content.usage.completionTokens }
  })

const geminiCompletion = (ctx: RenderContext, content: Content): string =>
  JSON.stringify({
    candidates: [{
      content: {
        parts: [
          ...(content.text === null ? [] : [{ text: content.text }]),
          ...content.toolCalls.map((call) => ({
            functionCall: { id: call.id, name: call.name, args: parseArgs(call.arguments) }
          }))
        ],
        role: "model"
      },
      finishReason: geminiFinishReason(content.finishReason),
      index: 0
    }],
    usageMetadata: geminiUsage(content.usage),
    modelVersion: ctx.model,
    responseId: ctx.id
  })

const completions = {
  openai: openAiCompletion,
  gptrouter: gptRouterCompletion,
  anthropic: anthropicCompletion,
  gemini: geminiCompletion
} as const

/** A complete answer that is an error, in the protocol's shape (sent with a 200). */
const inBandErrorBody = (ctx: RenderContext, message: string, type: string): string => {
  switch (ctx.protocol) {
    case "openai":
      return JSON.stringify({ error: { message, type, code: null } })
    case "gptrouter":
      return JSON.stringify({ message })
    case "anthropic":
      return JSON.stringify({ type: "error", error: { type: anthropicType(type, undefined), message } })
    case "gemini": {
      const status = geminiStatusOfType(type)
      return JSON.stringify({ error: { code: geminiStatuses[status], message, status } })
    }
  }
}

const wrongSchemaBody = (ctx: RenderContext): string => {
  switch (ctx.protocol) {
    case "anthropic":
      return JSON.stringify({ id: ctx.id, type: "message", model: ctx.model, content: "not-a-list" })
    case "gemini":
      return JSON.stringify({ candidates: "not-a-list", responseId: ctx.id })
    default:
      return JSON.stringify({ id: ctx.id, object: "chat.completion", model: ctx.model, choices: "not-a-list" })
  }
}

const halfOf = (body: string): string => Array.from(body).slice(0, Math.floor(Array.from(body).length / 2)).join("")

const renderNonStream = (step: StreamingStep, ctx: RenderContext): WirePlan => {
  const wire = effectiveWire(ctx, step)
  const content = resolveContent(step, ctx)
  const full = completions[ctx.protocol](ctx, content)
  const generationMs = (step.headersDelayMs ?? 0) + (step.firstTokenDelayMs ?? 0) +
    (step.chunkDelayMs ?? 0) * Math.max(0, content.pieces.length - 1)
  switch (step._tag) {
    case "Succeed":
      return respond(generationMs, 200, jsonHeaders(ctx, full), [write(full), END], wire, null)
    case "Stall":
      return respond(step.headersDelayMs, 200, jsonHeaders(ctx, null), [HANG], wire, null)
    case "Cut":
      // The declared length is the full body, so the client knows it was cut.
      return respond(step.headersDelayMs, 200, jsonHeaders(ctx, full), [write(halfOf(full)), CUT], wire, null)
    case "EndWithoutFinish":
      return respond(step.headersDelayMs, 200, jsonHeaders(ctx, null), [write(halfOf(full)), END], wire, null)
    case "InBandError": {
      const message = step.message ?? "The server had an error while processing your request."
      const body = inBandErrorBody(ctx, message, step.type ?? "server_error")
      return respond(step.headersDelayMs, 200, jsonHeaders(ctx, body), [write(body), END], wire, null)
    }
    case "Malformed": {
      const body = step.kind === "not-json"
        ? "upstream says: this is not json"
        : wrongSchemaBody(ctx)
      return respond(generationMs, 200, jsonHeaders(ctx, body), [write(body), END], wire, null)
    }
  }
}

const renderFail = (step: UpstreamScript.Fail, ctx: RenderContext): WirePlan => {
  const wire = effectiveWire(ctx, step)
  let body: string
  let contentType: string
  if (step.body !== undefined) {
    body = typeof step.body === "string" ? step.body : JSON.stringify(step.body)
    contentType = typeof step.body === "string" ? "text/plain; charset=utf-8" : "application/json"
  } else {
    const defaults = defaultError(step.status, ctx.model)
    body = errorBody(ctx.protocol, step.status, {
      message: step.message ?? defaults.message,
      type: step.type ?? defaults.type,
      code: step.code !== undefined ? step.code : defaults.code
    })
    contentType = "application/json"
  }
  const headers: Record<string, string> = {
    "content-type": contentType,
    "content-length": String(encoder.encode(body).length),
    "x-request-id": ctx.id
  }
  for (const [name, value] of Object.entries(step.headers ?? {})) {
    headers[name.toLowerCase()] = value
  }
  return respond(step.headersDelayMs, step.status, headers, [write(body), END], wire, null)
}

const renderHang = (step: UpstreamScript.Hang, ctx: RenderContext): WirePlan => {
  if (step.stage === "headers") {
    return { _tag: "HangBeforeHeaders" }
  }
  const wire = effectiveWire(ctx, step)
  if (!ctx.stream) {
    return respond(step.headersDelayMs, 200, jsonHeaders(ctx, null), [HANG], wire, null)
  }
  const le = wire.lineEnding ?? "\n"
  const keepAlive: KeepAlive | null = wire.keepAliveEveryMs !== undefined && wire.keepAliveEveryMs > 0
    ? { everyMs: wire.keepAliveEveryMs, bytes: encoder.encode(`: keep-alive${le}${le}`) }
    : null
  const drafts: Array<Draft> = []
  if (wire.retryField !== undefined) {
    drafts.push(write(`retry: ${wire.retryField}${le}${le}`))
  }
  drafts.push(HANG)
  return respond(step.headersDelayMs, 200, sseHeaders(ctx), drafts, wire, keepAlive)
}

/**
 * Renders one step for one request.
 *
 * @since 0.1.0
 * @category rendering
 * @internal
 */
export const render = (step: UpstreamScript.Step, ctx: RenderContext): WirePlan => {
  switch (step._tag) {
    case "Fail":
      return renderFail(step, ctx)
    case "Hang":
      return renderHang(step, ctx)
    default:
      return ctx.stream ? renderStream(step, ctx) : renderNonStream(step, ctx)
  }
}

/**
 * A complete JSON response with no delays, for answers that no script step
 * decides (unknown path, wrong method, bad key, bad body).
 *
 * @since 0.1.0
 * @category rendering
 * @internal
 */
export const jsonResponse = (status: number, body: string, id: string): WirePlan =>
  respond(
    0,
    status,
    {
      "content-type": "application/json",
      "content-length": String(encoder.encode(body).length),
      "x-request-id": id
    },
    [write(body), END],
    {},
    null
  )
