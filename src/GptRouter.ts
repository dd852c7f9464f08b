/**
 * The GPTRouter protocol (`POST {base}/api/v1/generate`, `ws-secret` header), as LangChain's GPTRouter client speaks it: the
 * ordered list of models goes in one request with `order` 1..n. The server serves the first healthy entry but does not
 * fall back when that model fails, so the router does: each attempt sends the models that remain for this endpoint,
 * the one being tried with `order` 1.
 *
 * @since 0.1.0
 */
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type { ChatChunk } from "./ChatChunk.js"
import { toWireParams } from "./ChatRequest.js"
import { FunctionCall } from "./ChatResponse.js"
import { compile } from "./internal/compiledValidator.js"
import * as construct from "./internal/construct.js"
import { eventJson, notJson, notJsonOutcome } from "./internal/eventJson.js"
import { toUsage, toUsageChunk, WireUsage } from "./internal/wireUsage.js"
import type { Call, Endpoint, EventOutcome, ResponseData, StreamDecoder } from "./Provider.js"
import { TypeId } from "./Provider.js"

/**
 * GPTRouter's default server.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultBaseUrl = "https://gpt-router-preview.writesonic.com"

/**
 * The non-streaming response body.
 *
 * @since 0.1.0
 * @category schemas
 */
export const WireResponse = Schema.Struct({
  id: Schema.optional(Schema.NullOr(Schema.String)),
  choices: Schema.Array(Schema.Struct({
    index: Schema.Number,
    text: Schema.NullOr(Schema.String),
    finish_reason: Schema.optional(Schema.NullOr(Schema.String)),
    role: Schema.optional(Schema.NullOr(Schema.String)),
    function_call: Schema.optional(Schema.NullOr(Schema.Struct({ name: Schema.String, arguments: Schema.String })))
  })),
  model: Schema.optional(Schema.NullOr(Schema.String)),
  providerId: Schema.optional(Schema.NullOr(Schema.String)),
  modelId: Schema.optional(Schema.NullOr(Schema.String)),
  meta: Schema.optional(Schema.NullOr(Schema.Struct({ usage: Schema.optional(Schema.NullOr(WireUsage)) })))
})

/**
 * One streamed event: `data: {"event": …, "data": …}`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const WireEvent = Schema.Struct({
  event: Schema.String,
  data: Schema.optional(Schema.Unknown)
})

const UpdateData = Schema.Struct({
  text: Schema.optional(Schema.NullOr(Schema.String)),
  finish_reason: Schema.optional(Schema.NullOr(Schema.String))
})
const MetaData = Schema.Struct({ usage: Schema.optional(Schema.NullOr(WireUsage)) })
const SourceData = Schema.Struct({
  modelId: Schema.optional(Schema.NullOr(Schema.String)),
  providerId: Schema.optional(Schema.NullOr(Schema.String))
})

const responseValidator = compile(WireResponse)
const eventValidator = compile(WireEvent)
const updateValidator = compile(UpdateData)
const metaValidator = compile(MetaData)
const sourceValidator = compile(SourceData)

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The server (default GPTRouter's own, {@link defaultBaseUrl}); `/api` is added unless it already ends in it. */
  readonly baseUrl?: string | undefined
  /** Sent as `ws-secret`. */
  readonly apiKey: Redacted.Redacted<string>
  /** Provider label used when a model does not name one (default `openai`). */
  readonly provider?: string | undefined
  /** Optional request fields of LangChain's GPTRouter client. */
  readonly metadata?: Readonly<Record<string, unknown>> | undefined
  readonly tag?: string | undefined
  readonly createdByUserId?: string | undefined
  readonly historyId?: string | undefined
  readonly appId?: string | undefined
}

/**
 * The generate URL for a base, as LangChain's GPTRouter client builds it.
 *
 * @since 0.1.0
 * @category encoding
 */
export const generateUrl = (baseUrl: string): string => {
  const base = baseUrl.replace(/\/+$/, "")
  return `${base.endsWith("/api") ? base : `${base}/api`}/v1/generate`
}

/**
 * A GPTRouter endpoint.
 *
 * @example
 * ```ts
 * import { Redacted } from "effect"
 * import { GptRouter, Model } from "effect-llm-router"
 *
 * const gptRouter = GptRouter.endpoint({ apiKey: Redacted.make(process.env.GPT_ROUTER_API_KEY ?? "") })
 * // GPTRouter serves models of several providers; `provider` is sent as its `providerName`.
 * export const models = [
 *   Model.make({ name: "gpt-4o-mini", provider: "openai", endpoint: gptRouter }),
 *   Model.make({ name: "claude-3-haiku", provider: "anthropic", endpoint: gptRouter })
 * ]
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const endpoint = (options: Options): Endpoint => {
  const baseUrl = options.baseUrl ?? defaultBaseUrl
  const extras: Record<string, unknown> = {}
  for (const key of ["metadata", "tag", "createdByUserId", "historyId", "appId"] as const) {
    if (options[key] !== undefined) extras[key] = options[key]
  }
  const base = HttpClientRequest.post(generateUrl(baseUrl)).pipe(
    HttpClientRequest.acceptJson,
    HttpClientRequest.setHeader("ws-secret", Redacted.value(options.apiKey))
  )
  return {
    [TypeId]: TypeId,
    protocol: "gptrouter",
    provider: options.provider ?? "openai",
    baseUrl,
    secrets: [options.apiKey],
    // GPTRouter's client maps 406 to "not available".
    statusOverrides: { 406: "ServiceUnavailable" },
    httpRequest: (call) => {
      const promptParams = toWireParams(call.request)
      const data = [call, ...call.siblings].map((m, i) => ({
        modelName: m.model,
        providerName: m.provider,
        order: i + 1,
        promptParams
      }))
      return HttpClientRequest.bodyUnsafeJson(base, { stream: call.stream, data, ...extras })
    },
    decodeResponse,
    streamDecoder
  }
}

const decodeResponse = (call: Call, body: unknown): Either.Either<ResponseData, string> => {
  if (!responseValidator.is(body)) return Either.left(responseValidator.explain(body))
  const usage = body.meta?.usage
  return Either.right({
    id: body.id ?? "",
    model: body.modelId ?? body.model ?? call.model,
    provider: body.providerId ?? call.provider,
    choices: body.choices.map((c) =>
      construct.choice({
        index: c.index,
        text: c.text ?? "",
        role: c.role ?? "assistant",
        finishReason: c.finish_reason ?? null,
        toolCalls: [],
        ...(c.function_call == null ? {} : { functionCall: new FunctionCall(c.function_call) })
      })
    ),
    usage: usage == null ? undefined : toUsage(usage)
  })
}

const streamDecoder = (call: Call): StreamDecoder => {
  let served: { model: string; provider: string } | undefined
  const onEvent = (event: { readonly event: string; readonly data: string }, out: Array<ChatChunk>): EventOutcome => {
    const json = eventJson(event.data)
    if (json === notJson) return notJsonOutcome(event.data)
    // GPTRouter's server wraps the event name in the JSON; accept a plain SSE `event:` field too.
    const value = json
    const wrapped = eventValidator.is(value)
    const name = wrapped ? value.event : event.event
    const data = wrapped ? value.data : value
    switch (name) {
      case "update": {
        if (!updateValidator.is(data)) return { _tag: "Malformed", reason: `update: ${updateValidator.explain(data)}` }
        if (data.text != null && data.text.length > 0) out.push({ _tag: "TextDelta", index: 0, text: data.text })
        if (data.finish_reason != null) out.push({ _tag: "Finish", index: 0, reason: data.finish_reason })
        return undefined
      }
      case "meta": {
        if (!metaValidator.is(data)) return { _tag: "Malformed", reason: `meta: ${metaValidator.explain(data)}` }
        if (data.usage != null) out.push(toUsageChunk(data.usage))
        return undefined
      }
      case "generation_source": {
        if (sourceValidator.is(data)) {
          served = { model: data.modelId ?? call.model, provider: data.providerId ?? call.provider }
        }
        return undefined
      }
      case "end":
        return "done"
      case "error":
        return { _tag: "InBandError", payload: data ?? json }
      case "":
        return { _tag: "Malformed", reason: "event without a name" }
      default:
        // Events GPTRouter does not define (heartbeats, progress) carry no output.
        return undefined
    }
  }
  return { onEvent, served: () => served }
}
