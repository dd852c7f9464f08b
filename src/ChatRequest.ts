/**
 * The chat request, in OpenAI Chat Completions vocabulary (`max_tokens`, `tool_choice`, …) so that any OpenAI request
 * body is a valid request here. Fields the schema does not know are passed through to the provider untouched, as is
 * `model_kwargs` (LangChain's pass-through for provider-specific parameters).
 *
 * @since 0.1.0
 */
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { compile, safeDecode } from "./internal/compiledValidator.js"
import { InvalidRequest } from "./RouterError.js"

/**
 * @since 0.1.0
 * @category schemas
 */
export const ToolCall = Schema.Struct({
  id: Schema.String,
  type: Schema.Literal("function"),
  function: Schema.Struct({ name: Schema.String, arguments: Schema.String })
})

/**
 * A content part of a user message (`text`, `image_url`, …); fields beyond `type` are passed through.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ContentPart = Schema.Struct(
  { type: Schema.String },
  Schema.Record({ key: Schema.String, value: Schema.Unknown })
)

/**
 * @since 0.1.0
 * @category schemas
 */
export const SystemMessage = Schema.Struct({
  role: Schema.Literal("system"),
  content: Schema.String,
  name: Schema.optional(Schema.String)
})

/**
 * @since 0.1.0
 * @category schemas
 */
export const UserMessage = Schema.Struct({
  role: Schema.Literal("user"),
  content: Schema.Union(Schema.String, Schema.Array(ContentPart)),
  name: Schema.optional(Schema.String)
})

/**
 * @since 0.1.0
 * @category schemas
 */
export const AssistantMessage = Schema.Struct({
  role: Schema.Literal("assistant"),
  content: Schema.optional(Schema.NullOr(Schema.String)),
  name: Schema.optional(Schema.String),
  tool_calls: Schema.optional(Schema.Array(ToolCall)),
  function_call: Schema.optional(Schema.Struct({ name: Schema.String, arguments: Schema.String }))
})

/**
 * @since 0.1.0
 * @category schemas
 */
export const ToolMessage = Schema.Struct({
  role: Schema.Literal("tool"),
  content: Schema.String,
  tool_call_id: Schema.String
})

/**
 * @since 0.1.0
 * @category schemas
 */
export const FunctionMessage = Schema.Struct({
  role: Schema.Literal("function"),
  content: Schema.String,
  name: Schema.String
})

/**
 * @since 0.1.0
 * @category schemas
 */
export const Message = Schema.Union(SystemMessage, UserMessage, AssistantMessage, ToolMessage, FunctionMessage)

/**
 * @since 0.1.0
 * @category models
 */
export type Message = typeof Message.Type

const FunctionDefinition = Schema.Struct({
  name: Schema.String,
  description: Schema.optional(Schema.String),
  parameters: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Unknown }))
})

/**
 * @since 0.1.0
 * @category schemas
 */
export const Tool = Schema.Struct({
  type: Schema.Literal("function"),
  function: FunctionDefinition
})

const Penalty = Schema.Number.pipe(Schema.between(-2, 2))

/**
 * @since 0.1.0
 * @category schemas
 */
export const ChatRequest = Schema.Struct({
  // Non-empty is checked at run time, not in the type, so that an ordinary `Array<Message>` can be passed.
  messages: Schema.Array(Message).pipe(
    Schema.minItems(1, { message: () => "at least one message is required" })
  ),
  temperature: Schema.optional(Schema.Number.pipe(Schema.between(0, 2))),
  max_tokens: Schema.optional(Schema.Int.pipe(Schema.positive())),
  n: Schema.optional(Schema.Int.pipe(Schema.greaterThanOrEqualTo(1))),
  stop: Schema.optional(Schema.Union(Schema.String, Schema.Array(Schema.String))),
  top_p: Schema.optional(Schema.Number.pipe(Schema.between(0, 1))),
  presence_penalty: Schema.optional(Penalty),
  frequency_penalty: Schema.optional(Penalty),
  seed: Schema.optional(Schema.Int),
  tools: Schema.optional(Schema.Array(Tool)),
  tool_choice: Schema.optional(
    Schema.Union(
      Schema.Literal("none", "auto", "required"),
      Schema.Struct({ type: Schema.Literal("function"), function: Schema.Struct({ name: Schema.String }) })
    )
  ),
  functions: Schema.optional(Schema.Array(FunctionDefinition)),
  function_call: Schema.optional(
    Schema.Union(Schema.Literal("none", "auto"), Schema.Struct({ name: Schema.String }))
  ),
  user: Schema.optional(Schema.String),
  response_format: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Unknown })),
  /** Provider-specific parameters sent as they are (LangChain's `model_kwargs`). */
  model_kwargs: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Unknown }))
})

/**
 * A chat request. Unknown fields are allowed at run time and passed through; in TypeScript, put them in
 * `model_kwargs`.
 *
 * @since 0.1.0
 * @category models
 */
export type ChatRequest = typeof ChatRequest.Type

/**
 * Request fields a fallback model may override (for example a larger `max_tokens` on a larger model).
 *
 * @since 0.1.0
 * @category models
 */
export type Overrides = Omit<Partial<ChatRequest>, "messages">

const decode = safeDecode(ChatRequest, { onExcessProperty: "preserve", errors: "first" })
// The schema has no transformations, so a value that passes the compiled check is its own decoding; the Schema's
// decoder only runs to name the first problem.
const check = compile(ChatRequest)

const formatPath = (path: ReadonlyArray<PropertyKey>): string =>
  path.reduce<string>(
    (acc, key) => typeof key === "number" ? `${acc}[${key}]` : acc === "" ? String(key) : `${acc}.${String(key)}`,
    ""
  )

/**
 * Checks a request before anything is sent: the first problem becomes an `InvalidRequest` naming the field. Unknown
 * fields are kept.
 *
 * @since 0.1.0
 * @category validation
 */
export const validate = (input: unknown): Either.Either<ChatRequest, InvalidRequest> => {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    return Either.left(new InvalidRequest({ field: "(request)", reason: "expected an object" }))
  }
  const decoded = check.is(input) ? Either.right(input) : decode(input)
  if (Either.isLeft(decoded)) {
    return Either.left(
      new InvalidRequest({ field: formatPath(decoded.left.path) || "(request)", reason: decoded.left.message })
    )
  }
  const request = decoded.right
  // LangChain's GPTRouter rejects a parameter given twice; a silent winner would hide a caller's mistake.
  if (request.model_kwargs !== undefined) {
    for (const key of Object.keys(request.model_kwargs)) {
      // Own keys only: `constructor`, `toString` and the rest of `Object.prototype` are not "given".
      if (key !== "model_kwargs" && hasOwn(request, key) && (request as Record<string, unknown>)[key] !== undefined) {
        return Either.left(
          new InvalidRequest({ field: `model_kwargs.${key}`, reason: `\`${key}\` is given twice (also at top level)` })
        )
      }
    }
  }
  return Either.right(request)
}

const hasOwn = (o: object, key: string): boolean => Object.prototype.hasOwnProperty.call(o, key)

/**
 * The request's parameters as a provider receives them: known fields, unknown fields passed through, and
 * `model_kwargs` spread in. `messages` is included.
 *
 * @since 0.1.0
 * @category encoding
 */
export const toWireParams = (request: ChatRequest): Record<string, unknown> => {
  const params: Record<string, unknown> = {}
  for (const key in request) {
    if (key === "model_kwargs") continue
    const value = (request as Record<string, unknown>)[key]
    if (value !== undefined) params[key] = value
  }
  if (request.model_kwargs !== undefined) {
    // Defined rather than assigned, so that a `__proto__` key is sent as a field instead of replacing the prototype.
    for (const key of Object.keys(request.model_kwargs)) {
      Object.defineProperty(params, key, {
        value: request.model_kwargs[key],
        enumerable: true,
        writable: true,
        configurable: true
      })
    }
  }
  return params
}
