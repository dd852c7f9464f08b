import { describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
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

  it("agrees with the schema on random mutations of a request", () => {
    // A small deterministic generator (no Math.random): the same cases on every run.
    let seed = 12345
    const next = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648
      return seed / 2147483648
    }
    const values: ReadonlyArray<unknown> = [
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
    const keys = Object.keys(valid).filter((k) => k !== "messages")
    let accepted = 0
    for (let i = 0; i < 2000; i++) {
      const input: Record<string, unknown> = { ...valid }
      const changes = 1 + Math.floor(next() * 3)
      for (let c = 0; c < changes; c++) {
        const key = keys[Math.floor(next() * keys.length)]!
        input[key] = values[Math.floor(next() * values.length)]
      }
      const expected = schemaAccepts(input)
      if (expected) accepted++
      expect(Either.isRight(ChatRequest.validate(input))).toBe(expected)
    }
    // Both verdicts occur, so the comparison covers both branches.
    expect(accepted).toBeGreaterThan(50)
    expect(accepted).toBeLessThan(1950)
  })
})
