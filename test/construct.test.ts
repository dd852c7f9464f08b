import { describe, expect, it } from "@effect/vitest"
import * as Equal from "effect/Equal"
import * as Schema from "effect/Schema"
import { Attempt } from "../src/Attempt.js"
import { ChatResponse, Choice, Usage } from "../src/ChatResponse.js"
import * as construct from "../src/internal/construct.js"

// The router builds its Schema.Class values without their constructor (internal/construct.ts). These hold the result
// to the constructor's own: same prototype, same own properties in the same order, equal, accepted by the schema.
const same = <C extends object>(built: C, constructed: C) => {
  expect(Object.getPrototypeOf(built)).toBe(Object.getPrototypeOf(constructed))
  expect(Reflect.ownKeys(built)).toEqual(Reflect.ownKeys(constructed))
  expect(Object.getOwnPropertyDescriptors(built)).toEqual(Object.getOwnPropertyDescriptors(constructed))
  expect(Equal.equals(built, constructed)).toBe(true)
  expect(JSON.stringify(built)).toBe(JSON.stringify(constructed))
}

describe("construct", () => {
  it("builds an Attempt as its constructor does, an absent field left absent and an undefined one kept", () => {
    const fields = {
      index: 1,
      attempt: 1,
      model: "m",
      provider: "openai",
      startedAt: 10,
      endedAt: 25,
      outcome: "success" as const,
      note: undefined
    }
    const built = construct.attempt(fields)
    same(built, new Attempt(fields, { disableValidation: true }))
    expect(built).toBeInstanceOf(Attempt)
    expect(built.durationMillis).toBe(15)
    expect(Schema.is(Attempt)(built)).toBe(true)
    expect("deployment" in built).toBe(false)
  })

  it("builds a ChatResponse, its choices and its usage as their constructors do", () => {
    const usageFields = { promptTokens: 1, completionTokens: 2, totalTokens: 3 }
    const choiceFields = { index: 0, text: "hi", role: "assistant", finishReason: "stop", toolCalls: [] }
    const usage = construct.usage(usageFields)
    same(usage, new Usage(usageFields, { disableValidation: true }))
    const choice = construct.choice(choiceFields)
    same(choice, new Choice(choiceFields, { disableValidation: true }))
    // Arrays are compared by reference by Equal: both responses hold the same ones.
    const fields = { id: "x", model: "m", provider: "openai", choices: [choice], usage, trail: [] }
    const built = construct.chatResponse(fields)
    same(built, new ChatResponse(fields, { disableValidation: true }))
    expect(built.text).toBe("hi")
    expect(Schema.is(ChatResponse)(built)).toBe(true)
    expect(Schema.encodeSync(ChatResponse)(built)).toEqual(
      Schema.encodeSync(ChatResponse)(new ChatResponse(fields, { disableValidation: true }))
    )
  })

  it("keeps the constructor for a class with a constructor default, which applies it", () => {
    class WithDefault extends Schema.Class<WithDefault>("test/WithDefault")({
      a: Schema.String,
      b: Schema.optionalWith(Schema.Number, { default: () => 7 })
    }) {}
    const built = construct.unvalidated(WithDefault)({ a: "x" })
    same(built, new WithDefault({ a: "x" }, { disableValidation: true }))
    expect(built.b).toBe(7)
  })
})
