/**
 * The router as an `@effect/ai` `LanguageModel`: the prompt, tools, tool choice and response format become a
 * `ChatRequest`; the routed answer (or stream) becomes response parts; failures become `AiError`s (`aiError.ts`).
 * Modelled on `@effect/ai-openai`'s `OpenAiLanguageModel`, for the Chat Completions vocabulary.
 *
 * @internal
 */
import * as AiError from "@effect/ai/AiError"
import * as LanguageModel from "@effect/ai/LanguageModel"
import type * as Prompt from "@effect/ai/Prompt"
import type * as Response from "@effect/ai/Response"
import * as Tool from "@effect/ai/Tool"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Encoding from "effect/Encoding"
import * as Stream from "effect/Stream"
import type { Attempt } from "../../Attempt.js"
import type * as ChatRequest from "../../ChatRequest.js"
import type { ChatResponse } from "../../ChatResponse.js"
import * as bridge from "../../internal/bridge.js"
import type * as Router from "../../Router.js"
import type { Config, Route } from "../EffectAi.js"
import { toAiError } from "./aiError.js"

const module = "effect-llm-router"

const malformedInput = (description: string) => new AiError.MalformedInput({ module, method: "prompt", description })

type WireMessage = bridge.WireMessage
type WirePart = { readonly type: string; readonly [key: string]: unknown }

const dataUrl = (mediaType: string, data: string | Uint8Array): string =>
  `data:${mediaType};base64,${typeof data === "string" ? data : Encoding.encodeBase64(data)}`

const userPart = (part: Prompt.UserMessagePart, index: number): Effect.Effect<WirePart, AiError.MalformedInput> => {
  if (part.type === "text") return Effect.succeed({ type: "text", text: part.text })
  if (part.mediaType.startsWith("image/")) {
    const mediaType = part.mediaType === "image/*" ? "image/jpeg" : part.mediaType
    const url = part.data instanceof URL ? part.data.toString() : dataUrl(mediaType, part.data)
    return Effect.succeed({ type: "image_url", image_url: { url } })
  }
  if (part.mediaType === "application/pdf" && !(part.data instanceof URL)) {
    return Effect.succeed({
      type: "file",
      file: { filename: part.fileName ?? `part-${index}.pdf`, file_data: dataUrl(part.mediaType, part.data) }
    })
  }
  return Effect.fail(malformedInput(`unsupported file in a user message: ${part.mediaType}`))
}

/** The prompt in Chat Completions messages. */
export const toMessages = (prompt: Prompt.Prompt): Effect.Effect<Array<WireMessage>, AiError.MalformedInput> =>
  Effect.gen(function*() {
    const messages: Array<WireMessage> = []
    for (const message of prompt.content) {
      switch (message.role) {
        case "system":
          messages.push({ role: "system", content: message.content })
          break
        case "user": {
          const only = message.content.length === 1 ? message.content[0] : undefined
          if (only?.type === "text") {
            messages.push({ role: "user", content: only.text })
          } else {
            const parts: Array<WirePart> = []
            for (let i = 0; i < message.content.length; i++) parts.push(yield* userPart(message.content[i]!, i))
            messages.push({ role: "user", content: parts })
          }
          break
        }
        case "assistant": {
          let text = ""
          const toolCalls: Array<bridge.WireToolCall> = []
          for (const part of message.content) {
            switch (part.type) {
              case "text":
                text += part.text
                break
              case "tool-call":
                // A call the provider ran itself is not the caller's to answer.
                if (part.providerExecuted) break
                toolCalls.push(bridge.toolCall(part.id, part.name, part.params))
                break
              case "file":
                return yield* malformedInput(`unsupported file in an assistant message: ${part.mediaType}`)
              // Reasoning is the provider's own and provider-executed results are not sent back on Chat Completions.
              case "reasoning":
              case "tool-result":
                break
            }
          }
          messages.push(bridge.assistantMessage(text, toolCalls))
          break
        }
        case "tool":
          for (const part of message.content) {
            messages.push({ role: "tool", tool_call_id: part.id, content: JSON.stringify(part.result) })
          }
          break
      }
    }
    return messages
  })

/** Tools, tool choice and response format as request fields. */
const toolFields = (
  options: LanguageModel.ProviderOptions,
  config: Config
): Effect.Effect<Partial<ChatRequest.ChatRequest>, AiError.MalformedInput> =>
  Effect.gen(function*() {
    const fields: { -readonly [K in keyof ChatRequest.ChatRequest]?: ChatRequest.ChatRequest[K] } = {}
    if (options.tools.length > 0) {
      const tools: Array<ChatRequest.ChatRequest["tools"] & {} extends ReadonlyArray<infer T> ? T : never> = []
      for (const tool of options.tools) {
        if (Tool.isProviderDefined(tool)) {
          return yield* malformedInput(`provider-defined tool ${tool.name} cannot be routed (only user-defined tools)`)
        }
        const description = Tool.getDescription(tool as any)
        tools.push({
          type: "function",
          function: {
            name: tool.name,
            ...(description === undefined ? {} : { description }),
            parameters: Tool.getJsonSchema(tool as any) as unknown as Record<string, unknown>
          }
        })
      }
      fields.tools = tools
      const choice = options.toolChoice
      fields.tool_choice = typeof choice === "string"
        ? choice
        : "tool" in choice
        ? { type: "function", function: { name: choice.tool } }
        : choice.mode ?? "auto"
    }
    if (options.responseFormat.type === "json") {
      const { objectName, schema } = options.responseFormat
      const description = Tool.getDescriptionFromSchemaAst(schema.ast)
      fields.response_format = {
        type: "json_schema",
        json_schema: {
          name: objectName,
          ...(description === undefined ? {} : { description }),
          schema: Tool.getJsonSchemaFromSchemaAst(schema.ast),
          ...(config.strictJsonSchema === undefined ? {} : { strict: config.strictJsonSchema })
        }
      }
    }
    return fields
  })

/** The request for one call: the configured fields, then what this call sets. */
export const toRequest = (
  options: LanguageModel.ProviderOptions,
  config: Config
): Effect.Effect<ChatRequest.ChatRequest, AiError.MalformedInput> =>
  Effect.gen(function*() {
    const messages = yield* toMessages(options.prompt)
    const fields = yield* toolFields(options, config)
    return { ...config.request, ...fields, messages }
  })

const routeMetadata = (model: string, provider: string, trail: ReadonlyArray<Attempt>) => ({
  [bridge.metadataKey]: { model, provider, trail } satisfies Route
})

const usageOf = (usage: { readonly promptTokens: number; readonly completionTokens: number } | undefined) => ({
  inputTokens: usage?.promptTokens,
  outputTokens: usage?.completionTokens,
  totalTokens: usage === undefined ? undefined : usage.promptTokens + usage.completionTokens
})

const parseParams = (name: string, text: string, method: string): Effect.Effect<unknown, AiError.MalformedOutput> =>
  Effect.try({
    try: () => Tool.unsafeSecureJsonParse(text.length === 0 ? "{}" : text),
    catch: (cause) =>
      new AiError.MalformedOutput({
        module,
        method,
        description: `the parameters of the call to tool ${name} are not JSON: ${text.slice(0, 200)}`,
        cause
      })
  })

/** A routed answer as response parts: metadata (who served, the trail), text, tool calls, finish. */
export const toParts = (response: ChatResponse): Effect.Effect<Array<Response.PartEncoded>, AiError.MalformedOutput> =>
  Effect.gen(function*() {
    const parts: Array<Response.PartEncoded> = [{
      type: "response-metadata",
      id: response.id,
      modelId: response.model,
      metadata: routeMetadata(response.model, response.provider, response.trail)
    }]
    const choice = response.choices[0]
    if (choice !== undefined && choice.text.length > 0) parts.push({ type: "text", text: choice.text })
    const toolCalls = choice?.toolCalls ?? []
    for (const call of toolCalls) {
      parts.push({
        type: "tool-call",
        id: call.id,
        name: call.name,
        params: yield* parseParams(call.name, call.arguments, "generateText")
      })
    }
    parts.push({
      type: "finish",
      reason: bridge.finishReason(choice?.finishReason, toolCalls.length > 0),
      usage: usageOf(response.usage)
    })
    return parts
  })

const parseParamsSync = (name: string, text: string, method: string): unknown => {
  try {
    return Tool.unsafeSecureJsonParse(text.length === 0 ? "{}" : text)
  } catch (cause) {
    return new AiError.MalformedOutput({
      module,
      method,
      description: `the parameters of the call to tool ${name} are not JSON: ${text.slice(0, 200)}`,
      cause
    })
  }
}

/** The stream parts of one event, appended to `out`; the error when a tool call's parameters are not JSON. */
const appendStreamParts = (
  event: bridge.Event,
  out: Array<Response.StreamPartEncoded>
): AiError.MalformedOutput | undefined => {
  switch (event._tag) {
    case "Metadata":
      out.push({
        type: "response-metadata",
        id: event.id,
        modelId: event.model,
        metadata: routeMetadata(event.model, event.provider, event.trail)
      })
      return
    case "TextStart":
      out.push({ type: "text-start", id: event.id })
      return
    case "TextDelta":
      out.push({ type: "text-delta", id: event.id, delta: event.delta })
      return
    case "TextEnd":
      out.push({ type: "text-end", id: event.id })
      return
    case "ToolStart":
      out.push({ type: "tool-params-start", id: event.id, name: event.name })
      return
    case "ToolDelta":
      out.push({ type: "tool-params-delta", id: event.id, delta: event.delta })
      return
    case "ToolEnd": {
      out.push({ type: "tool-params-end", id: event.id })
      if (!event.complete) return
      const params = parseParamsSync(event.name, event.arguments, "streamText")
      if (params instanceof AiError.MalformedOutput) return params
      out.push({ type: "tool-call", id: event.id, name: event.name, params })
      return
    }
    case "Finish":
      out.push({ type: "finish", reason: event.reason, usage: usageOf(event.usage) })
      return
  }
}

/** The parts of a batch of events, in one step per batch rather than per event. */
const streamParts = (
  events: Iterable<bridge.Event>
): Effect.Effect<Chunk.Chunk<Response.StreamPartEncoded>, AiError.MalformedOutput> =>
  Effect.suspend(() => {
    const out: Array<Response.StreamPartEncoded> = []
    for (const event of events) {
      const error = appendStreamParts(event, out)
      if (error !== undefined) return Effect.fail(error)
    }
    return Effect.succeed(Chunk.unsafeFromArray(out))
  })

/** The `LanguageModel` service over a router. */
export const make = (router: Router.Service, config: Config): Effect.Effect<LanguageModel.Service> => {
  const generateError = toAiError(router.models, "generateText")
  const streamError = toAiError(router.models, "streamText")
  return LanguageModel.make({
    generateText: (options) =>
      toRequest(options, config).pipe(
        Effect.flatMap((request) => Effect.mapError(router.generate(request), generateError)),
        Effect.flatMap(toParts)
      ),
    streamText: (options) =>
      Stream.unwrap(Effect.map(toRequest(options, config), (request) =>
        Stream.suspend(() => {
          const reader = bridge.streamReader()
          return router.stream(request).pipe(
            Stream.mapError(streamError),
            Stream.mapChunksEffect((chunks) => streamParts(Chunk.toReadonlyArray(chunks).flatMap(reader.chunk))),
            // The finish waits for the end: a usage chunk may follow the finish chunk.
            Stream.concat(Stream.unwrap(Effect.map(Effect.suspend(() => streamParts(reader.end())), Stream.fromChunk)))
          )
        })))
  })
}
