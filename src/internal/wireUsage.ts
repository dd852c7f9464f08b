/**
 * Token usage as both wire protocols spell it.
 *
 * @internal
 */
import * as Schema from "effect/Schema"
import type { Usage } from "../ChatResponse.js"
import * as construct from "./construct.js"

/** @internal */
export const WireUsage = Schema.Struct({
  prompt_tokens: Schema.Number,
  completion_tokens: Schema.Number,
  total_tokens: Schema.optional(Schema.Number)
})

/** @internal */
export type WireUsage = typeof WireUsage.Type

/** @internal */
export const toUsage = (u: WireUsage): Usage =>
  construct.usage({
    promptTokens: u.prompt_tokens,
    completionTokens: u.completion_tokens,
    totalTokens: u.total_tokens ?? u.prompt_tokens + u.completion_tokens
  })

/** @internal */
export const toUsageChunk = (u: WireUsage) => ({
  _tag: "Usage" as const,
  promptTokens: u.prompt_tokens,
  completionTokens: u.completion_tokens,
  totalTokens: u.total_tokens ?? u.prompt_tokens + u.completion_tokens
})
