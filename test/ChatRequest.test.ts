import { describe, expect, it } from "@effect/vitest"
import * as Arbitrary from "effect/Arbitrary"
import * as Either from "effect/Either"
import * as fc from "effect/FastCheck"
import * as Schema from "effect/Schema"
import * as ChatRequest from "../src/ChatRequest.js"

// `validate` answers from a validator compiled from the schema and runs the Schema's decoder only for the message.
// These tests hold it to the Schema's own verdict.
const schemaAccepts = Schema.is(ChatRequest.ChatRequest)

const valid: Record<string, unknown> = {
  messages: [
    { role: "system", content: "be brief" },
    { role: "user", content: [{ type: "text", text: "hi" }], name: "u" },
    {
      role: "assistant",
      content: null,
      tool_calls: [{ id: "t", type: "function", function: { name: "f", arguments: "{}" } }]
    },
    { role: "tool", content: "42", tool_call_id: "t" }
  ],
  temperature: 0.7,
  max_tokens: 16,
  n: 1,
  stop: ["\n"],
  top_p: 1,
  presence_penalty: -2,
  frequency_penalty: 2,
  seed: 7,
  tool_choice: "auto",
  user: "u1",
  model_kwargs: { logit_bias: {} }
}

const invalid: ReadonlyArray<readonly [string, Record<string, unknown>, string]> = [
  ["empty messages", { messages: [] }, "messages"],
  ["unknown role", { messages: [{ role: "robot", content: "x" }] }, "messages[0]"],
  ["temperature above 2", { ...valid, temperature: 2.5 }, "temperature"],
  ["temperature NaN", { ...valid, temperature: Number.NaN }, "temperature"],
  ["max_tokens zero", { ...valid, max_tokens: 0 }, "max_tokens"],
  ["max_tokens fractional", { ...valid, max_tokens: 1.5 }, "max_tokens"],
  ["n zero", { ...valid, n: 0 }, "n"],
  ["top_p above 1", { ...valid, top_p: 1.01 }, "top_p"],
  ["presence_penalty below -2", { ...valid, presence_penalty: -2.01 }, "presence_penalty"],
  ["seed fractional", { ...valid, seed: 0.5 }, "seed"],
  ["stop not strings", { ...valid, stop: [1] }, "stop"],
  ["tool_choice unknown", { ...valid, tool_choice: "sometimes" }, "tool_choice"],
  ["user message content a number", { messages: [{ role: "user", content: 5 }] }, "messages[0]"],
  ["tool message without its id", { messages: [{ role: "tool", content: "x" }] }, "messages[0]"]
]

// Values a mutation tries besides fast-check's own: the edges of the fields' ranges and shapes near valid ones.
const oddValues: ReadonlyArray<unknown> = [
  undefined,
  null,
  0,
  1,
  -1,
  0.5,
  2,
  3,
  -2.5,
  1e9,
  Number.NaN,
  "",
  "x",
  "auto",
  "none",
  "required",
  true,
  [],
  ["a"],
  [1],
  {},
  { name: "f" },
  { type: "function", function: { name: "f" } }
]

// `validate` also rejects a `model_kwargs` key that is given (an own, defined field) at top level too: the first such
// key, if any. Keys of `Object.prototype` (`valueOf`, `constructor`, …) are not given.
const duplicatedKwarg = (input: Record<string, unknown>): string | undefined => {
  const kwargs = input.model_kwargs
  if (typeof kwargs !== "object" || kwargs === null) return undefined
  return Object.keys(kwargs).find((key) =>
    key !== "model_kwargs" && Object.prototype.hasOwnProperty.call(input, key) && input[key] !== undefined
  )
}

describe("ChatRequest.validate", () => {
  it("accepts a request the schema accepts, unknown fields kept", () => {
    const input = { ...valid, logprobs: true }
    const result = ChatRequest.validate(input)
    expect(Either.isRight(result)).toBe(true)
    expect(Either.getOrThrow(result)).toEqual(input)
  })

  for (const [name, input, field] of invalid) {
    it(`rejects ${name}, naming ${field}`, () => {
      expect(schemaAccepts(input)).toBe(false)
      const result = ChatRequest.validate(input)
      expect(Either.isLeft(result)).toBe(true)
      if (Either.isLeft(result)) expect(result.left.field.startsWith(field)).toBe(true)
    })
  }

  // Property tests: requests come from the schema's own arbitrary; a mutation puts any value in one field.
  const requests = Arbitrary.make(ChatRequest.ChatRequest)
  const fields = Object.keys(ChatRequest.ChatRequest.fields)
  const mutated = fc.record({
    request: requests,
    field: fc.constantFrom(...fields),
    value: fc.oneof(fc.constantFrom(...oddValues), fc.anything())
  }).map(({ field, request, value }) => ({ field, input: { ...request, [field]: value } as Record<string, unknown> }))

  it.prop("accepts every request the schema generates, as it is", [requests], ([request]) => {
    expect(schemaAccepts(request)).toBe(true)
    const duplicate = duplicatedKwarg(request)
    const result = ChatRequest.validate(request)
    if (duplicate === undefined) expect(result).toEqual(Either.right(request))
    else expect(Either.isLeft(result) && result.left.field).toBe(`model_kwargs.${duplicate}`)
  }, { fastCheck: { numRuns: 200 } })

  it.prop("agrees with the schema when one field holds any value", [mutated], ([{ input }]) => {
    const accepted = schemaAccepts(input) && duplicatedKwarg(input) === undefined
    expect(Either.isRight(ChatRequest.validate(input))).toBe(accepted)
  }, { fastCheck: { numRuns: 500 } })

  it.prop(
    "rejects a request whose one field the schema rejects, naming that field",
    [mutated],
    ([{ field, input }]) => {
      fc.pre(!schemaAccepts(input))
      const result = ChatRequest.validate(input)
      expect(Either.isLeft(result) && result.left.field.startsWith(field)).toBe(true)
    },
    { fastCheck: { numRuns: 300 } }
  )
})
