/**
 * The compiled validators (generated code, and the closures it falls back to) must give the Schema's own verdict on
 * every input: they replace `Schema.is` on the hot path of every call and every streamed chunk.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Schema from "effect/Schema"
import { ChatRequest } from "../src/ChatRequest.js"
import * as GptRouter from "../src/GptRouter.js"
import { compile, compileAst, generate } from "../src/internal/compiledValidator.js"
import * as OpenAiCompatible from "../src/OpenAiCompatible.js"

const samples: ReadonlyArray<readonly [string, Schema.Schema<any, any, never>, object]> = [
  ["OpenAI chunk", OpenAiCompatible.WireChunk, {
    id: "c",
    model: "m",
    choices: [{
      index: 0,
      delta: {
        role: "assistant",
        content: "hi",
        tool_calls: [{ index: 0, id: "t", type: "function", function: { name: "f", arguments: "{" } }],
        function_call: { name: "g", arguments: "}" }
      },
      finish_reason: null
    }],
    usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 }
  }],
  ["OpenAI response", OpenAiCompatible.WireResponse, {
    id: "r",
    model: "m",
    choices: [{
      index: 0,
      message: {
        role: "assistant",
        content: "hello",
        tool_calls: [{ id: "t", type: "function", function: { name: "f", arguments: "{}" } }],
        function_call: null
      },
      finish_reason: "stop"
    }],
    usage: null
  }],
  ["GPTRouter response", GptRouter.WireResponse, {
    id: "g",
    choices: [{ index: 0, text: "hi", finish_reason: "stop", role: "assistant", function_call: null }],
    model: "m",
    providerId: "openai",
    modelId: "gpt",
    meta: { usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 } }
  }],
  ["GPTRouter event", GptRouter.WireEvent, { event: "update", data: { text: "hi" } }],
  ["chat request", ChatRequest, {
    messages: [{ role: "user", content: "hi" }, { role: "assistant", content: null }],
    temperature: 1,
    max_tokens: 5,
    stop: ["x"]
  }]
]

// Deterministic pseudo-random values (no Math.random: the same cases on every run).
const rng = (seed: number) => () => {
  seed = (seed * 1103515245 + 12345) % 2147483648
  return seed / 2147483648
}

const atoms: ReadonlyArray<unknown> = [
  undefined,
  null,
  0,
  1,
  -1,
  0.5,
  3,
  Number.NaN,
  "",
  "x",
  "assistant",
  "stop",
  "function",
  true,
  false,
  [],
  [1],
  ["a"],
  {},
  { name: "f" },
  { index: 0 },
  [{ index: 0 }],
  { type: "text" }
]

const mutate = (value: unknown, next: () => number, depth = 0): unknown => {
  if (depth > 0 && next() < 0.15) return atoms[Math.floor(next() * atoms.length)]
  if (Array.isArray(value)) {
    if (value.length === 0 || next() < 0.1) return next() < 0.5 ? [] : [atoms[Math.floor(next() * atoms.length)]]
    const copy = [...value]
    const i = Math.floor(next() * copy.length)
    copy[i] = mutate(copy[i], next, depth + 1)
    return copy
  }
  if (typeof value === "object" && value !== null) {
    const copy: Record<string, unknown> = { ...value }
    const keys = Object.keys(copy)
    const r = next()
    if (keys.length > 0 && r < 0.2) delete copy[keys[Math.floor(next() * keys.length)]!]
    else if (r < 0.3) copy["extra"] = atoms[Math.floor(next() * atoms.length)]
    else if (keys.length > 0) {
      const key = keys[Math.floor(next() * keys.length)]!
      copy[key] = mutate(copy[key], next, depth + 1)
    }
    return copy
  }
  return atoms[Math.floor(next() * atoms.length)]
}

describe("compiled validators", () => {
  for (const [name, schema, sample] of samples) {
    it(`${name}: generated code, the closures and Schema.is agree on 3000 mutated inputs`, () => {
      const generated = generate(schema.ast)
      // Code generation works on Node: the fast path is the one tested.
      expect(generated).toBeDefined()
      const closures = compileAst(schema.ast)
      const compiled = compile(schema)
      const reference = Schema.is(schema)
      const next = rng(name.length * 7919)
      const base = sample
      let accepted = 0
      for (let i = 0; i < 3000; i++) {
        let input: unknown = base
        const rounds = 1 + Math.floor(next() * 3)
        for (let k = 0; k < rounds; k++) input = mutate(input, next)
        const expected = reference(input)
        if (expected) accepted++
        expect([generated!(input), closures(input), compiled.is(input)]).toEqual([expected, expected, expected])
      }
      // The sample is valid, and the mutations land on both sides of the verdict.
      expect(reference(sample)).toBe(true)
      expect(accepted).toBeGreaterThan(30)
      expect(accepted).toBeLessThan(2970)
    })
  }

  it("an absent required key fails, a present key holding undefined is checked as a value", () => {
    const schema = Schema.Struct({
      a: Schema.Union(Schema.String, Schema.Undefined),
      b: Schema.optional(Schema.Number)
    })
    const check = generate(schema.ast)!
    for (const input of [{}, { a: undefined }, { a: "x" }, { a: "x", b: undefined }, { a: "x", b: "y" }, null, []]) {
      expect(check(input)).toBe(Schema.is(schema)(input))
    }
  })
})
