/**
 * The compiled validators (generated code, and the closures it falls back to) must give the Schema's own verdict on
 * every input: they replace `Schema.is` on the hot path of every call and every streamed chunk.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Arbitrary from "effect/Arbitrary"
import * as fc from "effect/FastCheck"
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

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

// Any value: mostly the atoms (near-valid shapes), sometimes whatever fast-check makes up.
const atom = fc.oneof({ arbitrary: fc.constantFrom(...atoms), weight: 3 }, { arbitrary: fc.anything(), weight: 1 })

// One mutation somewhere inside `value`: below the top, a value may be replaced outright; an array may be emptied,
// cut to one atom or have one item mutated; an object may lose a key, gain one, or have one value mutated.
const mutation = (value: unknown, depth = 0): fc.Arbitrary<unknown> => {
  const options: Array<fc.Arbitrary<unknown>> = depth > 0 ? [atom] : []
  if (Array.isArray(value)) {
    options.push(fc.constant([]), atom.map((a) => [a]))
    if (value.length > 0) {
      options.push(
        fc.nat(value.length - 1).chain((i) =>
          mutation(value[i], depth + 1).map((item) => value.map((v, j) => j === i ? item : v))
        )
      )
    }
  } else if (isRecord(value)) {
    const keys = Object.keys(value)
    options.push(atom.map((a) => ({ ...value, extra: a })))
    if (keys.length > 0) {
      options.push(
        fc.constantFrom(...keys).map((key) => {
          const { [key]: _, ...rest } = value
          return rest
        })
      )
      options.push(
        fc.constantFrom(...keys).chain((key) => mutation(value[key], depth + 1).map((v) => ({ ...value, [key]: v })))
      )
    }
  }
  return options.length > 0 ? fc.oneof(...options) : atom
}

// A value the schema's own arbitrary generates (or the hand-written sample), then one to three mutations.
const mutated = (schema: Schema.Schema<any, any, never>, sample: object): fc.Arbitrary<unknown> => {
  const again = (value: unknown, rounds: number): fc.Arbitrary<unknown> =>
    rounds === 0 ? fc.constant(value) : mutation(value).chain((next) => again(next, rounds - 1))
  return fc.tuple(fc.oneof(fc.constant<unknown>(sample), Arbitrary.make(schema)), fc.integer({ min: 1, max: 3 }))
    .chain(([value, rounds]) => again(value, rounds))
}

describe("compiled validators", () => {
  describe.each(samples)("%s", (_name, schema, sample) => {
    const generated = generate(schema.ast)
    const closures = compileAst(schema.ast)
    const compiled = compile(schema)
    // Schema.is throws on some values (a union discriminant whose `toString` is not a function: Effect converts it
    // with `String`); such a value is not valid, and the library's own checks say so rather than throw.
    const is = Schema.is(schema)
    const reference = (u: unknown) => {
      try {
        return is(u)
      } catch {
        return false
      }
    }
    const verdicts = (input: unknown) => [generated?.(input), closures(input), compiled.is(input)]

    it("generates code (the fast path on Node), and accepts the hand-written sample", () => {
      expect(generated).toBeDefined()
      expect(reference(sample)).toBe(true)
      expect(verdicts(sample)).toEqual([true, true, true])
    })

    it.prop("the generated code and the closures accept every value the schema generates", [schema], ([value]) => {
      expect(reference(value)).toBe(true)
      expect(verdicts(value)).toEqual([true, true, true])
    }, { fastCheck: { numRuns: 200 } })

    it.prop(
      "the generated code, the closures and Schema.is agree on mutated values",
      [mutated(schema, sample)],
      ([input]) => {
        const expected = reference(input)
        expect(verdicts(input)).toEqual([expected, expected, expected])
      },
      { fastCheck: { numRuns: 1000 } }
    )

    it.prop("mutated values Schema.is rejects are rejected", [mutated(schema, sample)], ([input]) => {
      fc.pre(!reference(input))
      expect(verdicts(input)).toEqual([false, false, false])
    }, { fastCheck: { numRuns: 200 } })
  })

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
