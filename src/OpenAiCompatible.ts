/**
 * The OpenAI Chat Completions protocol (`POST {baseUrl}/chat/completions`, bearer key). One endpoint reaches OpenAI,
 * OpenRouter, vLLM, llama.cpp, Ollama, LiteLLM's proxy, Groq, Together and every other server that speaks it.
 *
 * @since 0.1.0
 */
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Either from "effect/Either"
import type * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type { ChatChunk } from "./ChatChunk.js"
import { toWireParams } from "./ChatRequest.js"
import { compile } from "./internal/compiledValidator.js"
import * as construct from "./internal/construct.js"
import { eventJson, notJson, notJsonOutcome } from "./internal/eventJson.js"
import { toUsage, toUsageChunk, WireUsage } from "./internal/wireUsage.js"
import type { Call, Endpoint, EventOutcome, ResponseData, StreamDecoder } from "./Provider.js"
import { TypeId } from "./Provider.js"

const WireToolCall = Schema.Struct({
  id: Schema.String,
  type: Schema.optional(Schema.String),
  function: Schema.Struct({ name: Schema.String, arguments: Schema.String })
})

const WireFunctionCall = Schema.Struct({ name: Schema.String, arguments: Schema.String })

/**
 * The non-streaming response body, as far as the router reads it.
 *
 * @since 0.1.0
 * @category schemas
 */
export const WireResponse = Schema.Struct({
  id: Schema.optional(Schema.String),
  model: Schema.optional(Schema.String),
  choices: Schema.Array(Schema.Struct({
    index: Schema.Number,
    message: Schema.Struct({
      role: Schema.optional(Schema.String),
      content: Schema.optional(Schema.NullOr(Schema.String)),
      tool_calls: Schema.optional(Schema.NullOr(Schema.Array(WireToolCall))),
      function_call: Schema.optional(Schema.NullOr(WireFunctionCall))
    }),
    finish_reason: Schema.optional(Schema.NullOr(Schema.String))
  })),
  usage: Schema.optional(Schema.NullOr(WireUsage))
})

/**
 * One streamed `chat.completion.chunk`, as far as the router reads it.
 *
 * @since 0.1.0
 * @category schemas
 */
export const WireChunk = Schema.Struct({
  id: Schema.optional(Schema.String),
  model: Schema.optional(Schema.String),
  choices: Schema.optional(Schema.Array(Schema.Struct({
    index: Schema.Number,
    delta: Schema.optional(Schema.NullOr(Schema.Struct({
      role: Schema.optional(Schema.NullOr(Schema.String)),
      content: Schema.optional(Schema.NullOr(Schema.String)),
      tool_calls: Schema.optional(Schema.NullOr(Schema.Array(Schema.Struct({
        index: Schema.Number,
        id: Schema.optional(Schema.NullOr(Schema.String)),
        type: Schema.optional(Schema.NullOr(Schema.String)),
        function: Schema.optional(Schema.NullOr(Schema.Struct({
          name: Schema.optional(Schema.NullOr(Schema.String)),
          arguments: Schema.optional(Schema.NullOr(Schema.String))
        })))
      })))),
      function_call: Schema.optional(Schema.NullOr(Schema.Struct({
        name: Schema.optional(Schema.NullOr(Schema.String)),
        arguments: Schema.optional(Schema.NullOr(Schema.String))
      })))
    }))),
    finish_reason: Schema.optional(Schema.NullOr(Schema.String))
  }))),
  usage: Schema.optional(Schema.NullOr(WireUsage))
})

const responseValidator = compile(WireResponse)
const chunkValidator = compile(WireChunk)

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** e.g. `https://api.openai.com/v1`, `http://127.0.0.1:11434/v1`. */
  readonly baseUrl: string
  readonly apiKey?: Redacted.Redacted<string> | undefined
  /** The provider label of models on this endpoint (default `openai`). */
  readonly provider?: string | undefined
  /** Extra headers sent with every request (e.g. OpenRouter's `HTTP-Referer`). */
  readonly headers?: Readonly<Record<string, string>> | undefined
  /** Ask for a usage chunk at the end of streams (`stream_options.include_usage`, default true). */
  readonly streamUsage?: boolean | undefined
}

const trimSlash = (url: string): string => url.replace(/\/+$/, "")

/**
 * An OpenAI-compatible endpoint: OpenAI, OpenRouter, vLLM, llama.cpp, Ollama, LiteLLM's proxy, Groq, Together…
 *
 * @example
 * ```ts
 * import { Config, Effect } from "effect"
 * import { OpenAiCompatible } from "effect-llm-router"
 *
 * // The key is Redacted: it never appears in errors, logs or spans.
 * export const openai = Effect.map(Config.redacted("OPENAI_API_KEY"), (apiKey) =>
 *   OpenAiCompatible.endpoint({ baseUrl: "https://api.openai.com/v1", apiKey }))
 *
 * // A local server needs no key; `provider` labels its models in the trail.
 * export const ollama = OpenAiCompatible.endpoint({ baseUrl: "http://127.0.0.1:11434/v1", provider: "ollama" })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const endpoint = (options: Options): Endpoint => {
  const url = `${trimSlash(options.baseUrl)}/chat/completions`
  const provider = options.provider ?? "openai"
  const streamUsage = options.streamUsage ?? true
  let base = HttpClientRequest.post(url).pipe(HttpClientRequest.acceptJson)
  if (options.apiKey !== undefined) base = HttpClientRequest.bearerToken(base, options.apiKey)
  if (options.headers !== undefined) base = HttpClientRequest.setHeaders(base, options.headers)
  return {
    [TypeId]: TypeId,
    protocol: "openai-compatible",
    provider,
    baseUrl: options.baseUrl,
    secrets: options.apiKey === undefined ? [] : [options.apiKey],
    statusOverrides: {},
    httpRequest: (call) => {
      const body: Record<string, unknown> = { model: call.model, ...toWireParams(call.request) }
      if (call.stream) {
        body.stream = true
        if (streamUsage && body.stream_options === undefined) body.stream_options = { include_usage: true }
      }
      return HttpClientRequest.bodyUnsafeJson(base, body)
    },
    decodeResponse,
    streamDecoder
  }
}

const decodeResponse = (call: Call, body: unknown): Either.Either<ResponseData, string> => {
  if (!responseValidator.is(body)) return Either.left(responseValidator.explain(body))
  const choices = body.choices.map((c) =>
    construct.choice({
      index: c.index,
      text: c.message.content ?? "",
      role: c.message.role ?? "assistant",
      finishReason: c.finish_reason ?? null,
      toolCalls: (c.message.tool_calls ?? []).map((t) =>
        construct.toolCall({ id: t.id, name: t.function.name, arguments: t.function.arguments })
      ),
      ...(c.message.function_call == null
        ? {}
        : { functionCall: construct.functionCall(c.message.function_call) })
    })
  )
  return Either.right({
    id: body.id ?? "",
    model: body.model ?? call.model,
    provider: call.provider,
    choices,
    usage: body.usage == null ? undefined : toUsage(body.usage)
  })
}

const streamDecoder = (call: Call): StreamDecoder => {
  let served: { model: string; provider: string; id?: string } | undefined
  const onEvent = (event: { readonly data: string }, out: Array<ChatChunk>): EventOutcome => {
    const data = event.data
    if (data === "[DONE]") return "done"
    const json = eventJson(data)
    if (json === notJson) return notJsonOutcome(data)
    if (typeof json === "object" && json !== null && "error" in json && (json as any).error != null) {
      return { _tag: "InBandError", payload: json }
    }
    if (!chunkValidator.is(json)) return { _tag: "Malformed", reason: chunkValidator.explain(json) }
    if (served === undefined) {
      served = {
        model: json.model ?? call.model,
        provider: call.provider,
        ...(json.id === undefined ? {} : { id: json.id })
      }
    }
    const choices = json.choices
    if (choices !== undefined) {
      for (let i = 0; i < choices.length; i++) {
        const choice = choices[i]!
        const delta = choice.delta
        if (delta != null) {
          if (delta.content != null && delta.content.length > 0) {
            out.push({ _tag: "TextDelta", index: choice.index, text: delta.content })
          }
          const tools = delta.tool_calls
          if (tools != null) {
            for (const t of tools) {
              out.push({
                _tag: "ToolCallDelta",
                index: choice.index,
                toolCallIndex: t.index,
                ...(t.id == null ? {} : { id: t.id }),
                ...(t.function?.name == null ? {} : { name: t.function.name }),
                arguments: t.function?.arguments ?? ""
              })
            }
          }
          const fn = delta.function_call
          if (fn != null) {
            out.push({
              _tag: "FunctionCallDelta",
              index: choice.index,
              ...(fn.name == null ? {} : { name: fn.name }),
              arguments: fn.arguments ?? ""
            })
          }
        }
        if (choice.finish_reason != null) {
          out.push({ _tag: "Finish", index: choice.index, reason: choice.finish_reason })
        }
      }
    }
    if (json.usage != null) out.push(toUsageChunk(json.usage))
    return undefined
  }
  return { onEvent, served: () => served }
}
