/**
 * The routed call's answer: every choice, token usage, the id, which model and provider served it, and the trail of
 * attempts that led to it.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"
import { Attempt } from "./Attempt.js"

/**
 * @since 0.1.0
 * @category models
 */
export class Usage extends Schema.Class<Usage>("effect-llm-router/Usage")({
  promptTokens: Schema.Number,
  completionTokens: Schema.Number,
  totalTokens: Schema.Number
}) {}

/**
 * A tool call the model asked for. `arguments` is the JSON text as the model wrote it.
 *
 * @since 0.1.0
 * @category models
 */
export class ToolCall extends Schema.Class<ToolCall>("effect-llm-router/ToolCall")({
  id: Schema.String,
  name: Schema.String,
  arguments: Schema.String
}) {}

/**
 * A legacy `function_call`.
 *
 * @since 0.1.0
 * @category models
 */
export class FunctionCall extends Schema.Class<FunctionCall>("effect-llm-router/FunctionCall")({
  name: Schema.String,
  arguments: Schema.String
}) {}

/**
 * @since 0.1.0
 * @category models
 */
export class Choice extends Schema.Class<Choice>("effect-llm-router/Choice")({
  index: Schema.Int,
  text: Schema.String,
  role: Schema.String,
  /** `stop`, `length`, `tool_calls`, `content_filter`, … as the provider sent it; `null` when it sent none. */
  finishReason: Schema.NullOr(Schema.String),
  toolCalls: Schema.Array(ToolCall),
  functionCall: Schema.optional(FunctionCall)
}) {}

/**
 * @since 0.1.0
 * @category models
 */
export class ChatResponse extends Schema.Class<ChatResponse>("effect-llm-router/ChatResponse")({
  id: Schema.String,
  /** The model that served the answer, as the provider reported it. */
  model: Schema.String,
  /** The provider that served the answer. */
  provider: Schema.String,
  /** When a group's deployment served it: which one (`Health.deploymentId`). */
  deployment: Schema.optional(Schema.String),
  choices: Schema.Array(Choice),
  usage: Schema.optional(Usage),
  /** What the answer cost, when the serving model has a price (`Model.make({ price })`). */
  cost: Schema.optional(Schema.NonNegative),
  /** Every attempt of the routed call; the last one is the success. */
  trail: Schema.Array(Attempt)
}) {
  /**
   * The first choice's text.
   *
   * @since 0.1.0
   */
  get text(): string {
    return this.choices[0]?.text ?? ""
  }
}
