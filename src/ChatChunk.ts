/**
 * The values of a routed stream. A stream starts with `Started` (which model and provider answer, known before the
 * first delta), then deltas, `Finish` per choice and `Usage` when the provider reports it.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"
import { Attempt } from "./Attempt.js"

/**
 * @since 0.1.0
 * @category schemas
 */
export const Started = Schema.TaggedStruct("Started", {
  /** The response id, when the provider sent one. */
  id: Schema.optional(Schema.String),
  model: Schema.String,
  provider: Schema.String,
  /** When a group's deployment answers: which one (`Health.deploymentId`). */
  deployment: Schema.optional(Schema.String),
  /** The attempts before this stream opened, ending with the one that opened it. */
  trail: Schema.Array(Attempt)
})

/**
 * @since 0.1.0
 * @category schemas
 */
export const TextDelta = Schema.TaggedStruct("TextDelta", {
  index: Schema.Int,
  text: Schema.String
})

/**
 * A piece of a tool call: the first piece of each call carries `id` and `name`, later ones more `arguments` text.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ToolCallDelta = Schema.TaggedStruct("ToolCallDelta", {
  index: Schema.Int,
  toolCallIndex: Schema.Int,
  id: Schema.optional(Schema.String),
  name: Schema.optional(Schema.String),
  arguments: Schema.String
})

/**
 * A piece of a legacy `function_call`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const FunctionCallDelta = Schema.TaggedStruct("FunctionCallDelta", {
  index: Schema.Int,
  name: Schema.optional(Schema.String),
  arguments: Schema.String
})

/**
 * @since 0.1.0
 * @category schemas
 */
export const Finish = Schema.TaggedStruct("Finish", {
  index: Schema.Int,
  reason: Schema.String
})

/**
 * @since 0.1.0
 * @category schemas
 */
export const Usage = Schema.TaggedStruct("Usage", {
  promptTokens: Schema.Number,
  completionTokens: Schema.Number,
  totalTokens: Schema.Number
})

/**
 * @since 0.1.0
 * @category schemas
 */
export const ChatChunk = Schema.Union(Started, TextDelta, ToolCallDelta, FunctionCallDelta, Finish, Usage)

/**
 * @since 0.1.0
 * @category models
 */
export type ChatChunk = typeof ChatChunk.Type

/**
 * @since 0.1.0
 * @category models
 */
export type Started = typeof Started.Type

/**
 * @since 0.1.0
 * @category models
 */
export type TextDelta = typeof TextDelta.Type

/**
 * @since 0.1.0
 * @category models
 */
export type ToolCallDelta = typeof ToolCallDelta.Type

/**
 * @since 0.1.0
 * @category models
 */
export type FunctionCallDelta = typeof FunctionCallDelta.Type

/**
 * @since 0.1.0
 * @category models
 */
export type Finish = typeof Finish.Type

/**
 * @since 0.1.0
 * @category models
 */
export type Usage = typeof Usage.Type

/**
 * Whether a chunk is content: a delta or a finish. `Started` and `Usage` are not, and neither are keep-alives.
 *
 * @since 0.1.0
 * @category guards
 */
export const isContent = (chunk: ChatChunk): boolean => chunk._tag !== "Started" && chunk._tag !== "Usage"
