/**
 * Folds chunks into what has arrived so far: the partial output a `StreamInterrupted` carries, and the response a
 * collected stream becomes.
 *
 * @internal
 */
import type { Attempt } from "../Attempt.js"
import type { ChatChunk } from "../ChatChunk.js"
import type { ChatResponse } from "../ChatResponse.js"
import * as construct from "./construct.js"

interface ToolCallPart {
  index: number
  id: string | undefined
  name: string | undefined
  arguments: string
}

interface ChoiceState {
  text: string
  finish: string | null
  toolCalls: Map<number, ToolCallPart>
  functionCall: { name: string | undefined; arguments: string } | undefined
}

/** @internal */
export class Accumulator {
  readonly choices = new Map<number, ChoiceState>()
  usage: { promptTokens: number; completionTokens: number; totalTokens: number } | undefined
  chunks = 0
  model = ""
  provider = ""
  trail: ReadonlyArray<Attempt> = []

  private choice(index: number): ChoiceState {
    let state = this.choices.get(index)
    if (state === undefined) {
      state = { text: "", finish: null, toolCalls: new Map(), functionCall: undefined }
      this.choices.set(index, state)
    }
    return state
  }

  add(chunk: ChatChunk): void {
    this.chunks++
    switch (chunk._tag) {
      case "Started":
        this.model = chunk.model
        this.provider = chunk.provider
        this.trail = chunk.trail
        return
      case "TextDelta":
        this.choice(chunk.index).text += chunk.text
        return
      case "ToolCallDelta": {
        const calls = this.choice(chunk.index).toolCalls
        const part = calls.get(chunk.toolCallIndex)
        if (part === undefined) {
          calls.set(chunk.toolCallIndex, {
            index: chunk.toolCallIndex,
            id: chunk.id,
            name: chunk.name,
            arguments: chunk.arguments
          })
        } else {
          part.id ??= chunk.id
          part.name ??= chunk.name
          part.arguments += chunk.arguments
        }
        return
      }
      case "FunctionCallDelta": {
        const state = this.choice(chunk.index)
        if (state.functionCall === undefined) {
          state.functionCall = { name: chunk.name, arguments: chunk.arguments }
        } else {
          state.functionCall.name ??= chunk.name
          state.functionCall.arguments += chunk.arguments
        }
        return
      }
      case "Finish":
        this.choice(chunk.index).finish = chunk.reason
        return
      case "Usage":
        this.usage = {
          promptTokens: chunk.promptTokens,
          completionTokens: chunk.completionTokens,
          totalTokens: chunk.totalTokens
        }
        return
    }
  }

  /** The first choice's text so far. */
  text(): string {
    return this.choices.get(0)?.text ?? ""
  }

  /** The first choice's tool-call parts so far. */
  toolCalls(): Array<{ index: number; id?: string; name?: string; arguments: string }> {
    const calls = this.choices.get(0)?.toolCalls
    if (calls === undefined) return []
    return [...calls.values()].map((p) => ({
      index: p.index,
      ...(p.id === undefined ? {} : { id: p.id }),
      ...(p.name === undefined ? {} : { name: p.name }),
      arguments: p.arguments
    }))
  }

  toResponse(id: string): ChatResponse {
    const choices = [...this.choices.entries()].sort(([a], [b]) => a - b).map(([index, state]) =>
      construct.choice({
        index,
        text: state.text,
        role: "assistant",
        finishReason: state.finish,
        toolCalls: [...state.toolCalls.values()].map((p) =>
          construct.toolCall({ id: p.id ?? "", name: p.name ?? "", arguments: p.arguments })
        ),
        ...(state.functionCall === undefined ? {} : {
          functionCall: construct.functionCall({
            name: state.functionCall.name ?? "",
            arguments: state.functionCall.arguments
          })
        })
      })
    )
    return construct.chatResponse({
      id,
      model: this.model,
      provider: this.provider,
      choices,
      ...(this.usage === undefined ? {} : { usage: construct.usage(this.usage) }),
      trail: this.trail
    })
  }
}
