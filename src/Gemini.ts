/**
 * The Google Gemini protocol (`POST {baseUrl}/v1beta/models/{model}:generateContent` and
 * `:streamGenerateContent?alt=sse`, `x-goog-api-key` header), spoken natively: the request is translated from our
 * OpenAI-vocabulary `ChatRequest`, the answers, stream chunks and error bodies are read in Gemini's own terms and
 * mapped to the same chunks and failure modes as every other protocol.
 *
 * The key travels only in the `x-goog-api-key` header, never as a `?key=` query parameter (which proxies and servers
 * log). The model name is one path segment, percent-encoded (a leading `models/` is taken off, as Google's SDKs do).
 *
 * Request translation:
 * - `system` messages become `systemInstruction` (one text part each);
 * - user turns are `user` contents, assistant turns `model` contents (their `tool_calls` as `functionCall` parts with
 *   the arguments parsed); `tool` messages become `functionResponse` parts of a `user` content (the function's name
 *   found from the call they answer; the content parsed when it is a JSON object, else sent as
 *   `{ "content": text }`); OpenAI `image_url` parts become `inlineData` (a `data:` URL) or `fileData`;
 * - `temperature`, `top_p`, `max_tokens`, `stop`, `n`, `presence_penalty`, `frequency_penalty`, `seed` (and `top_k`)
 *   go into `generationConfig` as `temperature`, `topP`, `maxOutputTokens`, `stopSequences`, `candidateCount`,
 *   `presencePenalty`, `frequencyPenalty`, `seed`, `topK`; `response_format` `json_object` and `json_schema` become
 *   `responseMimeType` (and `responseJsonSchema`);
 * - `tools` (and legacy `functions`) become one tool of `functionDeclarations` (the `parameters` JSON Schema sent as
 *   it is, as `parametersJsonSchema`: Gemini's `parameters` takes only an OpenAPI subset); `tool_choice` `auto`, `required`, `none` and a named function become
 *   `toolConfig.functionCallingConfig` modes `AUTO`, `ANY` (with `allowedFunctionNames` for a name) and `NONE`;
 * - `user`, `logit_bias`, `logprobs`, `top_logprobs`, `parallel_tool_calls` and `stream_options` have no Gemini
 *   counterpart and are left out; every other field and `model_kwargs` is sent as it is (`safetySettings`,
 *   `cachedContent`…), a `generationConfig` among them merged over the translated one.
 *
 * Answers: each candidate is a choice (text parts, `functionCall` parts as tool calls; thought parts left out);
 * `finishReason` `STOP` → `stop` (`tool_calls` when the candidate called a function), `MAX_TOKENS` → `length`,
 * `SAFETY`, `RECITATION`, `BLOCKLIST`, `PROHIBITED_CONTENT`, `SPII`, `IMAGE_SAFETY` → `content_filter` (as OpenAI
 * reports a filtered completion), others as sent. A prompt blocked outright (`promptFeedback.blockReason`, no
 * candidate) is a `ContentFiltered` error. Usage from `usageMetadata` (thought tokens count as completion tokens).
 *
 * Streams: every SSE event is a whole `GenerateContentResponse`. Gemini sends no terminator: a stream is complete when
 * its body ends after the chunk carrying a `finishReason`, and truncated when it ends before one. An `{ "error" }` event
 * is an in-band error.
 *
 * Errors: by the body's `error.status`: `RESOURCE_EXHAUSTED` → `RateLimited` (its `RetryInfo` delay as the wait), or
 * `QuotaExhausted` when the quota spent is a daily one or has a limit of 0; `UNAVAILABLE` → `ServiceUnavailable`;
 * `INVALID_ARGUMENT` → `ContextLengthExceeded` for a token-limit message, `AuthenticationFailed` for an invalid key
 * (`API_KEY_INVALID`), else `BadRequest`; `FAILED_PRECONDITION` (billing or region) → `PermissionDenied`;
 * `PERMISSION_DENIED`, `UNAUTHENTICATED`, `NOT_FOUND`, `INTERNAL`, `DEADLINE_EXCEEDED`, `ABORTED` →
 * `PermissionDenied`, `AuthenticationFailed`, `ModelNotFound`, `ServerError`, `Timeout`, `ServiceUnavailable`.
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
import type { AttemptErrorTag } from "./RouterError.js"

/**
 * Google's Gemini API.
 *
 * @since 0.3.0
 * @category constants
 */
export const defaultBaseUrl = "https://generativelanguage.googleapis.com"

/**
 * The API version in the path unless the endpoint names another.
 *
 * @since 0.3.0
 * @category constants
 */
export const defaultApiVersion = "v1beta"

const WirePart = Schema.Struct({
  text: Schema.optional(Schema.String),
  thought: Schema.optional(Schema.Boolean),
  functionCall: Schema.optional(Schema.Struct({
    id: Schema.optional(Schema.String),
    name: Schema.String,
    args: Schema.optional(Schema.Unknown)
  }))
})

const WireUsage = Schema.Struct({
  promptTokenCount: Schema.optional(Schema.Number),
  candidatesTokenCount: Schema.optional(Schema.Number),
  thoughtsTokenCount: Schema.optional(Schema.Number),
  totalTokenCount: Schema.optional(Schema.Number)
})
type WireUsage = typeof WireUsage.Type

/**
 * A `GenerateContentResponse` (the whole answer, and each streamed chunk), as far as the router reads it.
 *
 * @since 0.3.0
 * @category schemas
 */
export const WireResponse = Schema.Struct({
  candidates: Schema.optional(Schema.Array(Schema.Struct({
    content: Schema.optional(Schema.Struct({
      role: Schema.optional(Schema.String),
      parts: Schema.optional(Schema.Array(WirePart))
    })),
    finishReason: Schema.optional(Schema.String),
    index: Schema.optional(Schema.Number)
  }))),
  promptFeedback: Schema.optional(Schema.Struct({ blockReason: Schema.optional(Schema.String) })),
  usageMetadata: Schema.optional(WireUsage),
  modelVersion: Schema.optional(Schema.String),
  responseId: Schema.optional(Schema.String)
})

/**
 * An error body: `{ "error": { "code", "message", "status", "details" } }`.
 *
 * @since 0.3.0
 * @category schemas
 */
export const WireError = Schema.Struct({
  error: Schema.Struct({
    code: Schema.optional(Schema.Number),
    message: Schema.optional(Schema.String),
    status: Schema.optional(Schema.String),
    details: Schema.optional(Schema.Array(Schema.Unknown))
  })
})

const responseValidator = compile(WireResponse)
const errorValidator = compile(WireError)

/**
 * @since 0.3.0
 * @category models
 */
export interface Options {
  /** The server (default {@link defaultBaseUrl}); `/{apiVersion}/models/{model}:…` is added. */
  readonly baseUrl?: string | undefined
  /** Sent as `x-goog-api-key`. */
  readonly apiKey: Redacted.Redacted<string>
  /** The API version in the path (default {@link defaultApiVersion}). */
  readonly apiVersion?: string | undefined
  /** The provider label of models on this endpoint (default `google`). */
  readonly provider?: string | undefined
  /** Extra headers sent with every request. */
  readonly headers?: Readonly<Record<string, string>> | undefined
}

const trimSlash = (url: string): string => url.replace(/\/+$/, "")

/**
 * The URL of a call: the model as one percent-encoded path segment, `alt=sse` for a stream.
 *
 * @since 0.3.0
 * @category encoding
 */
export const callUrl = (baseUrl: string, apiVersion: string, model: string, stream: boolean): string =>
  `${trimSlash(baseUrl)}/${apiVersion}/models/${encodeURIComponent(model.replace(/^models\//, ""))}:${
    stream ? "streamGenerateContent?alt=sse" : "generateContent"
  }`

/**
 * A Gemini endpoint.
 *
 * @example
 * ```ts
 * import { Config, Effect } from "effect"
 * import { Gemini, Model } from "effect-llm-router"
 *
 * // Sent as the x-goog-api-key header, never in the URL; Redacted everywhere else.
 * export const flash = Effect.map(Config.redacted("GEMINI_API_KEY"), (apiKey) =>
 *   Model.make({ name: "gemini-2.5-flash", endpoint: Gemini.endpoint({ apiKey }) }))
 * ```
 *
 * @since 0.3.0
 * @category constructors
 */
export const endpoint = (options: Options): Endpoint => {
  const baseUrl = options.baseUrl ?? defaultBaseUrl
  const apiVersion = options.apiVersion ?? defaultApiVersion
  const headers: Record<string, string> = { ...options.headers, "x-goog-api-key": Redacted.value(options.apiKey) }
  return {
    [TypeId]: TypeId,
    protocol: "gemini",
    provider: options.provider ?? "google",
    baseUrl,
    secrets: [options.apiKey],
    statusOverrides: {},
    httpRequest: (call) =>
      HttpClientRequest.post(callUrl(baseUrl, apiVersion, call.model, call.stream)).pipe(
        HttpClientRequest.acceptJson,
        HttpClientRequest.setHeaders(headers),
        HttpClientRequest.bodyUnsafeJson(toWire(call.request))
      ),
    decodeResponse,
    streamDecoder,
    classifyError
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// request
// ---------------------------------------------------------------------------------------------------------------------

const translated = new Set([
  "messages",
  "temperature",
  "top_p",
  "top_k",
  "max_tokens",
  "stop",
  "n",
  "presence_penalty",
  "frequency_penalty",
  "seed",
  "response_format",
  "tools",
  "tool_choice",
  "functions",
  "function_call",
  "model_kwargs"
])
const dropped = new Set(["user", "logit_bias", "logprobs", "top_logprobs", "parallel_tool_calls", "stream_options"])

type Part = Record<string, unknown>

const parseJson = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

const isObject = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

const userParts = (content: string | ReadonlyArray<Record<string, unknown>>): Array<Part> => {
  if (typeof content === "string") return [{ text: content }]
  return content.map((part) => {
    if (part.type === "text" && typeof part.text === "string") return { text: part.text }
    if (part.type === "image_url") {
      const image = part.image_url
      const url = typeof image === "string" ? image : (image as { url?: unknown } | undefined)?.url
      if (typeof url === "string") {
        const data = /^data:([^;,]+);base64,(.*)$/s.exec(url)
        return data === null ? { fileData: { fileUri: url } } : { inlineData: { mimeType: data[1], data: data[2] } }
      }
    }
    return { ...part }
  })
}

/**
 * The `generateContent` request body for a request.
 *
 * @since 0.3.0
 * @category encoding
 */
export const toWire = (request: ChatRequest): Record<string, unknown> => {
  const system: Array<Part> = []
  const contents: Array<{ role: "user" | "model"; parts: Array<Part> }> = []
  // The function a tool call id named, to label its result (Gemini matches results by name).
  const names = new Map<string, string>()
  const pushResult = (part: Part) => {
    const last = contents[contents.length - 1]
    // Results of one turn's calls go together in one user content.
    if (last !== undefined && last.role === "user" && last.parts.every((p) => "functionResponse" in p)) {
      last.parts.push(part)
    } else {
      contents.push({ role: "user", parts: [part] })
    }
  }
  const response = (content: string) => {
    const parsed = parseJson(content)
    return isObject(parsed) ? parsed : { content }
  }
  for (const message of request.messages as ReadonlyArray<Message>) {
    switch (message.role) {
      case "system":
        system.push({ text: message.content })
        break
      case "user":
        contents.push({ role: "user", parts: userParts(message.content) })
        break
      case "assistant": {
        const parts: Array<Part> = []
        if (message.content != null && message.content.length > 0) parts.push({ text: message.content })
        for (const call of message.tool_calls ?? []) {
          names.set(call.id, call.function.name)
          const args = parseJson(call.function.arguments)
          parts.push({ functionCall: { id: call.id, name: call.function.name, args: args ?? call.function.arguments } })
        }
        if (message.function_call !== undefined) {
          const args = parseJson(message.function_call.arguments)
          parts.push({
            functionCall: { name: message.function_call.name, args: args ?? message.function_call.arguments }
          })
        }
        contents.push({ role: "model", parts: parts.length === 0 ? [{ text: "" }] : parts })
        break
      }
      case "tool":
        pushResult({
          functionResponse: {
            id: message.tool_call_id,
            name: names.get(message.tool_call_id) ?? message.tool_call_id,
            response: response(message.content)
          }
        })
        break
      case "function":
        pushResult({ functionResponse: { name: message.name, response: response(message.content) } })
        break
    }
  }
  const config: Record<string, unknown> = {}
  const set = (key: string, value: unknown) => {
    if (value !== undefined) config[key] = value
  }
  const extra = request as Record<string, unknown>
  set("temperature", request.temperature)
  set("topP", request.top_p)
  set("topK", extra.top_k)
  set("maxOutputTokens", request.max_tokens)
  set("stopSequences", typeof request.stop === "string" ? [request.stop] : request.stop)
  set("candidateCount", request.n)
  set("presencePenalty", request.presence_penalty)
  set("frequencyPenalty", request.frequency_penalty)
  set("seed", request.seed)
  const format = request.response_format
  if (format?.type === "json_object" || format?.type === "json_schema") {
    config.responseMimeType = "application/json"
    const schema = (format.json_schema as { schema?: unknown } | undefined)?.schema
    if (format.type === "json_schema" && schema !== undefined) config.responseJsonSchema = schema
  }
  const body: Record<string, unknown> = {}
  if (system.length > 0) body.systemInstruction = { parts: system }
  body.contents = contents
  const definitions = [...(request.tools ?? []).map((t) => t.function), ...(request.functions ?? [])]
  if (definitions.length > 0) {
    body.tools = [{
      functionDeclarations: definitions.map((f) => ({
        name: f.name,
        ...(f.description === undefined ? {} : { description: f.description }),
        // JSON Schema, as OpenAI's tools carry it (Gemini's `parameters` takes only an OpenAPI subset, and rejects
        // `additionalProperties`, `$ref`, `anyOf`, … that JSON Schema tools use).
        ...(f.parameters === undefined ? {} : { parametersJsonSchema: f.parameters })
      }))
    }]
  }
  const choice = request.tool_choice ?? request.function_call
  if (choice !== undefined) {
    body.toolConfig = {
      functionCallingConfig: typeof choice === "string"
        ? { mode: choice === "required" ? "ANY" : choice.toUpperCase() }
        : { mode: "ANY", allowedFunctionNames: ["function" in choice ? choice.function.name : choice.name] }
    }
  }
  for (const key in request) {
    if (translated.has(key) || dropped.has(key)) continue
    const value = extra[key]
    if (value !== undefined) body[key] = value
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
  const given = body.generationConfig
  if (isObject(given)) body.generationConfig = { ...config, ...given }
  else if (Object.keys(config).length > 0 && given === undefined) body.generationConfig = config
  return body
}

// ---------------------------------------------------------------------------------------------------------------------
// answers
// ---------------------------------------------------------------------------------------------------------------------

const filtered = new Set(["SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"])

/**
 * Our finish reason for a Gemini `finishReason` (`calledFunction`: the candidate called a function).
 *
 * @since 0.3.0
 * @category decoding
 */
export const finishReason = (reason: string, calledFunction: boolean): string =>
  reason === "STOP"
    ? (calledFunction ? "tool_calls" : "stop")
    : reason === "MAX_TOKENS"
    ? "length"
    : filtered.has(reason)
    ? "content_filter"
    : reason

const toUsage = (u: WireUsage) => {
  const promptTokens = u.promptTokenCount ?? 0
  const completionTokens = (u.candidatesTokenCount ?? 0) + (u.thoughtsTokenCount ?? 0)
  return { promptTokens, completionTokens, totalTokens: u.totalTokenCount ?? promptTokens + completionTokens }
}

const isErrorBody = (body: unknown): boolean => isObject(body) && body.error != null

const blocked = (body: typeof WireResponse.Type): boolean =>
  body.promptFeedback?.blockReason !== undefined && (body.candidates === undefined || body.candidates.length === 0)

const decodeResponse = (call: Call, body: unknown): Either.Either<ResponseData, string | InBandError> => {
  if (isErrorBody(body)) return Either.left({ _tag: "InBandError", payload: body })
  if (!responseValidator.is(body)) return Either.left(responseValidator.explain(body))
  if (blocked(body)) return Either.left({ _tag: "InBandError", payload: body })
  const candidates = body.candidates ?? []
  if (candidates.length === 0) return Either.left("no candidates")
  return Either.right({
    id: body.responseId ?? "",
    model: body.modelVersion ?? call.model,
    provider: call.provider,
    choices: candidates.map((candidate, i) => {
      let text = ""
      const toolCalls: Array<ToolCall> = []
      for (const part of candidate.content?.parts ?? []) {
        if (part.thought === true) continue
        if (part.text !== undefined) text += part.text
        if (part.functionCall !== undefined) {
          toolCalls.push(
            construct.toolCall({
              id: part.functionCall.id ?? `call_${toolCalls.length}`,
              name: part.functionCall.name,
              arguments: JSON.stringify(part.functionCall.args ?? {})
            })
          )
        }
      }
      return construct.choice({
        index: candidate.index ?? i,
        text,
        role: "assistant",
        finishReason: candidate.finishReason === undefined
          ? null
          : finishReason(candidate.finishReason, toolCalls.length > 0),
        toolCalls
      })
    }),
    usage: body.usageMetadata === undefined
      ? undefined
      : construct.usage(toUsage(body.usageMetadata))
  })
}

const streamDecoder = (call: Call): StreamDecoder => {
  let served: { model: string; provider: string; id?: string } | undefined
  // Per candidate: how many function calls it has made so far.
  const calls = new Map<number, number>()
  let usage: WireUsage | undefined
  let finished = false
  const onEvent = (event: { readonly data: string }, out: Array<ChatChunk>): EventOutcome => {
    if (event.data.length === 0) return undefined
    const json = eventJson(event.data)
    if (json === notJson) return notJsonOutcome(event.data)
    if (isErrorBody(json)) return { _tag: "InBandError", payload: json }
    if (!responseValidator.is(json)) return { _tag: "Malformed", reason: responseValidator.explain(json) }
    if (blocked(json)) return { _tag: "InBandError", payload: json }
    if (served === undefined) {
      served = {
        model: json.modelVersion ?? call.model,
        provider: call.provider,
        ...(json.responseId === undefined ? {} : { id: json.responseId })
      }
    }
    let finishedNow = false
    const candidates = json.candidates ?? []
    for (let c = 0; c < candidates.length; c++) {
      const candidate = candidates[c]!
      const index = candidate.index ?? c
      const parts = candidate.content?.parts
      if (parts !== undefined) {
        for (const part of parts) {
          if (part.thought === true) continue
          if (part.text !== undefined && part.text.length > 0) out.push({ _tag: "TextDelta", index, text: part.text })
          const fn = part.functionCall
          if (fn !== undefined) {
            const toolCallIndex = calls.get(index) ?? 0
            calls.set(index, toolCallIndex + 1)
            out.push({
              _tag: "ToolCallDelta",
              index,
              toolCallIndex,
              id: fn.id ?? `call_${toolCallIndex}`,
              name: fn.name,
              arguments: JSON.stringify(fn.args ?? {})
            })
          }
        }
      }
      if (candidate.finishReason !== undefined) {
        out.push({ _tag: "Finish", index, reason: finishReason(candidate.finishReason, (calls.get(index) ?? 0) > 0) })
        finishedNow = true
      }
    }
    // usageMetadata is cumulative and may ride on every chunk: reported once with the finish, and again only if a
    // later chunk revises it.
    if (json.usageMetadata !== undefined) usage = json.usageMetadata
    if ((finishedNow || finished) && usage !== undefined && (finishedNow || json.usageMetadata !== undefined)) {
      out.push({ _tag: "Usage", ...toUsage(usage) })
    }
    if (finishedNow) finished = true
    return undefined
  }
  return { onEvent, served: () => served }
}

// ---------------------------------------------------------------------------------------------------------------------
// errors
// ---------------------------------------------------------------------------------------------------------------------

const tokenLimit =
  /input token count.*exceeds|exceeds the maximum number of tokens|token count exceeds|too many tokens|context (window|length)/i
const spent = /per ?day|limit: 0\b/i

const detailsOf = (details: ReadonlyArray<unknown> | undefined): ReadonlyArray<Record<string, unknown>> =>
  (details ?? []).filter(isObject)

/** A `RetryInfo.retryDelay` (`"36s"`, `"1.5s"`) in milliseconds. */
const retryDelay = (details: ReadonlyArray<Record<string, unknown>>): number | undefined => {
  for (const detail of details) {
    const delay = detail.retryDelay
    if (typeof delay !== "string") continue
    const match = /^(\d+(?:\.\d+)?)s$/.exec(delay.trim())
    if (match !== null) return Math.round(Number(match[1]) * 1000)
  }
  return undefined
}

/** Whether a quota failure names a spent daily quota (or one of 0: the model is not in this tier at all). */
const quotaSpent = (message: string, details: ReadonlyArray<Record<string, unknown>>): boolean => {
  if (spent.test(message)) return true
  for (const detail of details) {
    const violations = detail.violations
    if (!Array.isArray(violations)) continue
    for (const v of violations) {
      if (!isObject(v)) continue
      if (typeof v.quotaId === "string" && /PerDay/i.test(v.quotaId)) return true
      if (v.quotaValue === "0") return true
    }
  }
  return false
}

const byStatus: Readonly<Record<string, AttemptErrorTag>> = {
  UNAVAILABLE: "ServiceUnavailable",
  PERMISSION_DENIED: "PermissionDenied",
  UNAUTHENTICATED: "AuthenticationFailed",
  NOT_FOUND: "ModelNotFound",
  INTERNAL: "ServerError",
  DEADLINE_EXCEEDED: "Timeout",
  ABORTED: "ServiceUnavailable"
}

/**
 * The failure mode of a Gemini error body (`error.status`, refined by the message and details), `ContentFiltered` for
 * a blocked prompt, or `undefined` when the body is neither.
 *
 * @since 0.3.0
 * @category errors
 */
export const classifyError = (report: ErrorReport): ErrorClassification | undefined => {
  const body = report.body
  if (responseValidator.is(body) && !isErrorBody(body) && blocked(body)) return { tag: "ContentFiltered" }
  if (!errorValidator.is(body)) return undefined
  const error = body.error
  const message = error.message ?? ""
  const details = detailsOf(error.details)
  switch (error.status) {
    case "RESOURCE_EXHAUSTED": {
      if (quotaSpent(message, details)) return { tag: "QuotaExhausted" }
      const wait = retryDelay(details)
      return wait === undefined ? { tag: "RateLimited" } : { tag: "RateLimited", retryAfterMillis: wait }
    }
    case "INVALID_ARGUMENT":
      if (details.some((d) => d.reason === "API_KEY_INVALID") || /api key not valid/i.test(message)) {
        return { tag: "AuthenticationFailed" }
      }
      return { tag: tokenLimit.test(message) ? "ContextLengthExceeded" : "BadRequest" }
    case "FAILED_PRECONDITION":
      // "free tier is not available in your country; enable billing": no retry or wait fixes it for this key.
      return report.status === undefined || report.status === 400 ? { tag: "PermissionDenied" } : undefined
    default: {
      const tag = error.status === undefined ? undefined : byStatus[error.status]
      return tag === undefined ? undefined : { tag }
    }
  }
}
