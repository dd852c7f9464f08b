/**
 * The AI SDK's call options (language-model specification v3) as a `ChatRequest`: the prompt as Chat Completions
 * messages, settings, tools, tool choice and response format; what cannot be routed is a warning (settings) or an
 * `UnsupportedFunctionalityError` (content). Modelled on `@ai-sdk/openai`'s chat model.
 *
 * @internal
 */
import type {
  LanguageModelV3CallOptions,
  LanguageModelV3DataContent,
  LanguageModelV3Prompt,
  LanguageModelV3ToolResultOutput,
  SharedV3Warning
} from "@ai-sdk/provider"
import { UnsupportedFunctionalityError } from "@ai-sdk/provider"
import * as Encoding from "effect/Encoding"
import type * as ChatRequest from "../../ChatRequest.js"
import * as bridge from "../../internal/bridge.js"

type WireMessage = bridge.WireMessage
type WirePart = { readonly type: string; readonly [key: string]: unknown }
type WireTool = NonNullable<ChatRequest.ChatRequest["tools"]>[number]
type Mutable<T> = { -readonly [K in keyof T]: T[K] }

const base64 = (data: Exclude<LanguageModelV3DataContent, URL>): string =>
  typeof data === "string" ? data : Encoding.encodeBase64(data)

const userPart = (
  part: Extract<LanguageModelV3Prompt[number], { role: "user" }>["content"][number],
  index: number
): WirePart => {
  if (part.type === "text") return { type: "text", text: part.text }
  if (part.mediaType.startsWith("image/")) {
    const mediaType = part.mediaType === "image/*" ? "image/jpeg" : part.mediaType
    const url = part.data instanceof URL ? part.data.toString() : `data:${mediaType};base64,${base64(part.data)}`
    return { type: "image_url", image_url: { url } }
  }
  if (part.data instanceof URL) {
    throw new UnsupportedFunctionalityError({ functionality: `${part.mediaType} file parts with URLs` })
  }
  if (part.mediaType === "application/pdf") {
    return {
      type: "file",
      file: {
        filename: part.filename ?? `part-${index}.pdf`,
        file_data: `data:application/pdf;base64,${base64(part.data)}`
      }
    }
  }
  if (part.mediaType === "audio/wav" || part.mediaType === "audio/mp3" || part.mediaType === "audio/mpeg") {
    return {
      type: "input_audio",
      input_audio: { data: base64(part.data), format: part.mediaType === "audio/wav" ? "wav" : "mp3" }
    }
  }
  throw new UnsupportedFunctionalityError({ functionality: `file part media type ${part.mediaType}` })
}

const toolOutput = (output: LanguageModelV3ToolResultOutput): string => {
  switch (output.type) {
    case "text":
    case "error-text":
      return output.value
    case "json":
    case "error-json":
    case "content":
      return JSON.stringify(output.value)
    case "execution-denied":
      return output.reason ?? "Tool execution denied."
  }
}

/** The prompt as Chat Completions messages. */
export const toMessages = (prompt: LanguageModelV3Prompt): Array<WireMessage> => {
  const messages: Array<WireMessage> = []
  for (const message of prompt) {
    switch (message.role) {
      case "system":
        messages.push({ role: "system", content: message.content })
        break
      case "user": {
        const only = message.content.length === 1 ? message.content[0] : undefined
        messages.push(
          only?.type === "text"
            ? { role: "user", content: only.text }
            : { role: "user", content: message.content.map(userPart) }
        )
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
              if (part.providerExecuted === true) break
              toolCalls.push(bridge.toolCall(part.toolCallId, part.toolName, part.input))
              break
            case "file":
              throw new UnsupportedFunctionalityError({ functionality: "file parts in assistant messages" })
            // Reasoning is the provider's own, and provider-executed results are not sent back on Chat Completions.
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
          if (part.type !== "tool-result") continue
          messages.push({ role: "tool", tool_call_id: part.toolCallId, content: toolOutput(part.output) })
        }
        break
    }
  }
  return messages
}

/** The call options as a request, with a warning per setting that cannot be routed. */
export const toRequest = (
  options: LanguageModelV3CallOptions
): { readonly request: ChatRequest.ChatRequest; readonly warnings: Array<SharedV3Warning> } => {
  const warnings: Array<SharedV3Warning> = []
  const request: Mutable<ChatRequest.ChatRequest> = { messages: toMessages(options.prompt) }
  if (options.maxOutputTokens !== undefined) request.max_tokens = options.maxOutputTokens
  if (options.temperature !== undefined) request.temperature = options.temperature
  if (options.topP !== undefined) request.top_p = options.topP
  if (options.presencePenalty !== undefined) request.presence_penalty = options.presencePenalty
  if (options.frequencyPenalty !== undefined) request.frequency_penalty = options.frequencyPenalty
  if (options.seed !== undefined) request.seed = options.seed
  if (options.stopSequences !== undefined && options.stopSequences.length > 0) request.stop = options.stopSequences
  if (options.topK !== undefined) warnings.push({ type: "unsupported", feature: "topK" })
  const headers = Object.entries(options.headers ?? {}).filter(([name, value]) =>
    value !== undefined && name.toLowerCase() !== "user-agent"
  )
  if (headers.length > 0) {
    warnings.push({
      type: "unsupported",
      feature: "headers",
      details: "each model's endpoint sends its own headers"
    })
  }
  if (options.responseFormat?.type === "json") {
    const format = options.responseFormat
    request.response_format = format.schema === undefined
      ? { type: "json_object" }
      : {
        type: "json_schema",
        json_schema: {
          name: format.name ?? "response",
          ...(format.description === undefined ? {} : { description: format.description }),
          schema: format.schema
        }
      }
  }
  const tools: Array<WireTool> = []
  for (const tool of options.tools ?? []) {
    if (tool.type !== "function") {
      warnings.push({ type: "unsupported", feature: `provider-defined tool ${tool.id}` })
      continue
    }
    tools.push({
      type: "function",
      function: {
        name: tool.name,
        ...(tool.description === undefined ? {} : { description: tool.description }),
        parameters: tool.inputSchema as Record<string, unknown>
      }
    })
  }
  if (tools.length > 0) {
    request.tools = tools
    const choice = options.toolChoice
    if (choice !== undefined) {
      request.tool_choice = choice.type === "tool"
        ? { type: "function", function: { name: choice.toolName } }
        : choice.type
    }
  }
  return { request, warnings }
}
