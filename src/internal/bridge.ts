/**
 * What the two bridges (`effect-llm-router/ai` and `effect-llm-router/ai-sdk`) share: reading a routed stream as the
 * block events both SDKs speak (a text block, tool-input blocks, one finish), the finish-reason vocabulary, and the
 * URL of the deployment an error names. It imports neither SDK, so each bridge keeps its optional dependency to itself.
 */
import * as Schema from "effect/Schema"
import { Attempt } from "../Attempt.js"
import type { ChatChunk } from "../ChatChunk.js"
import type * as ChatRequest from "../ChatRequest.js"
import * as Model from "../Model.js"
import type * as RouterError from "../RouterError.js"

/** A Chat Completions message, as both bridges translate their SDK's prompt into. */
export type WireMessage = ChatRequest.ChatRequest["messages"][number]

/** A tool call in an assistant message. */
export type WireToolCall = NonNullable<Extract<WireMessage, { role: "assistant" }>["tool_calls"]>[number]

/** A tool call's input as the JSON text of an object, as Chat Completions wants it (anything else is `{}`). */
export const toolArguments = (input: unknown): string => {
  if (typeof input === "string") {
    try {
      const parsed = JSON.parse(input)
      return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed) ? input : "{}"
    } catch {
      return "{}"
    }
  }
  return JSON.stringify(typeof input === "object" && input !== null && !Array.isArray(input) ? input : {})
}

/** A tool call the assistant made, on the wire. */
export const toolCall = (id: string, name: string, input: unknown): WireToolCall => ({
  id,
  type: "function",
  function: { name, arguments: toolArguments(input) }
})

/** An assistant turn: its text, and its tool calls (with no text beside them, the content is `null`). */
export const assistantMessage = (text: string, toolCalls: ReadonlyArray<WireToolCall>): WireMessage => ({
  role: "assistant",
  content: text.length === 0 && toolCalls.length > 0 ? null : text,
  ...(toolCalls.length > 0 ? { tool_calls: [...toolCalls] } : {})
})

/** The provider-metadata key both bridges file the router's own details under. */
export const metadataKey = "effect-llm-router"

/** The finish reasons both SDKs share; the AI SDK says `other` where `@effect/ai` says `unknown`. */
export type FinishReason = "stop" | "length" | "content-filter" | "tool-calls" | "unknown"

const finishReasons: Readonly<Record<string, FinishReason>> = {
  stop: "stop",
  length: "length",
  content_filter: "content-filter",
  tool_calls: "tool-calls",
  function_call: "tool-calls"
}

/** The provider's finish reason in the SDKs' vocabulary (the mapping `@effect/ai-openai` uses). */
export const finishReason = (raw: string | null | undefined, hasToolCalls: boolean): FinishReason => {
  if (raw === null || raw === undefined) return hasToolCalls ? "tool-calls" : "stop"
  return Object.prototype.hasOwnProperty.call(finishReasons, raw)
    ? finishReasons[raw]!
    : hasToolCalls
    ? "tool-calls"
    : "unknown"
}

/** One piece of a routed stream, as a block of the SDKs' stream vocabulary. Only the first choice is read. */
export type Event =
  | {
    readonly _tag: "Metadata"
    readonly id: string | undefined
    readonly model: string
    readonly provider: string
    readonly trail: ReadonlyArray<Attempt>
  }
  | { readonly _tag: "TextStart"; readonly id: string }
  | { readonly _tag: "TextDelta"; readonly id: string; readonly delta: string }
  | { readonly _tag: "TextEnd"; readonly id: string }
  | { readonly _tag: "ToolStart"; readonly id: string; readonly name: string }
  | { readonly _tag: "ToolDelta"; readonly id: string; readonly delta: string }
  | {
    readonly _tag: "ToolEnd"
    readonly id: string
    readonly name: string
    readonly arguments: string
    /** False when the stream failed before the call's end: its arguments are partial, it is not a call. */
    readonly complete: boolean
  }
  | {
    readonly _tag: "Finish"
    readonly reason: FinishReason
    /** The reason as the provider sent it. */
    readonly raw: string | undefined
    readonly usage: { readonly promptTokens: number; readonly completionTokens: number } | undefined
  }

interface OpenTool {
  readonly id: string
  readonly name: string
  arguments: string
  ended: boolean
}

/**
 * A reader of one routed stream: `chunk` turns each chunk into events, `end` closes the open blocks and emits the one
 * `Finish` (the usage chunk may come after the finish chunk, so the finish waits for the end of the stream); `close`
 * closes the open blocks without a finish (the stream failed).
 */
export const streamReader = () => {
  const textId = "text-0"
  let textOpen = false
  let textEnded = false
  const tools = new Map<number, OpenTool>()
  let raw: string | undefined = undefined
  let usage: { promptTokens: number; completionTokens: number } | undefined = undefined

  const closeBlocks = (out: Array<Event>, complete: boolean) => {
    if (textOpen && !textEnded) {
      textEnded = true
      out.push({ _tag: "TextEnd", id: textId })
    }
    for (const tool of tools.values()) {
      if (tool.ended) continue
      tool.ended = true
      out.push({ _tag: "ToolEnd", id: tool.id, name: tool.name, arguments: tool.arguments, complete })
    }
  }

  const chunk = (chunk: ChatChunk): ReadonlyArray<Event> => {
    switch (chunk._tag) {
      case "Started":
        return [{ _tag: "Metadata", id: chunk.id, model: chunk.model, provider: chunk.provider, trail: chunk.trail }]
      case "TextDelta": {
        if (chunk.index !== 0 || chunk.text.length === 0) return []
        const out: Array<Event> = []
        if (!textOpen) {
          textOpen = true
          out.push({ _tag: "TextStart", id: textId })
        }
        out.push({ _tag: "TextDelta", id: textId, delta: chunk.text })
        return out
      }
      case "ToolCallDelta": {
        if (chunk.index !== 0) return []
        const out: Array<Event> = []
        let tool = tools.get(chunk.toolCallIndex)
        if (tool === undefined) {
          tool = {
            id: chunk.id ?? `call-${chunk.toolCallIndex}`,
            name: chunk.name ?? "",
            arguments: "",
            ended: false
          }
          tools.set(chunk.toolCallIndex, tool)
          out.push({ _tag: "ToolStart", id: tool.id, name: tool.name })
        }
        if (chunk.arguments.length > 0 && !tool.ended) {
          tool.arguments += chunk.arguments
          out.push({ _tag: "ToolDelta", id: tool.id, delta: chunk.arguments })
        }
        return out
      }
      case "Finish": {
        if (chunk.index !== 0) return []
        raw = chunk.reason
        const out: Array<Event> = []
        closeBlocks(out, true)
        return out
      }
      case "Usage":
        usage = { promptTokens: chunk.promptTokens, completionTokens: chunk.completionTokens }
        return []
      case "FunctionCallDelta":
        return []
    }
  }

  const end = (): ReadonlyArray<Event> => {
    const out: Array<Event> = []
    closeBlocks(out, true)
    out.push({ _tag: "Finish", reason: finishReason(raw, tools.size > 0), raw, usage })
    return out
  }

  const close = (): ReadonlyArray<Event> => {
    const out: Array<Event> = []
    closeBlocks(out, false)
    return out
  }

  return { chunk, end, close }
}

/**
 * The base URL of the deployment an error names (its model and provider in the router's list), for the SDK errors
 * that want a URL; `undefined` when the error names none.
 */
export const endpointUrl = (
  models: ReadonlyArray<Model.Entry>,
  error: RouterError.AnyError
): string | undefined => {
  const model = "model" in error ? error.model : undefined
  const provider = "provider" in error ? error.provider : undefined
  if (model === undefined) return undefined
  for (const entry of models) {
    const found = Model.deploymentsOf(entry).find((m) =>
      m.name === model && (provider === undefined || m.provider === provider)
    )
    if (found !== undefined) return found.endpoint.baseUrl
  }
  return undefined
}

const encodeAttempt = Schema.encodeSync(Attempt)

/**
 * A trail as JSON values (each attempt encoded by its schema), for metadata that must be JSON. An attempt without an
 * error is all primitives, each its own encoding: its copy is its encoding, at a fraction of the schema's cost (the
 * AI SDK bridge puts the trail in the metadata of every call).
 */
export const trailToJson = (trail: ReadonlyArray<Attempt>): ReadonlyArray<unknown> =>
  trail.map((attempt) => attempt.error === undefined ? { ...attempt } : encodeAttempt(attempt))
