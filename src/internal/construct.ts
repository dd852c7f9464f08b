/**
 * Instances of the library's `Schema.Class` values (Attempt, ChatResponse, Choice, Usage, …) built without their
 * constructor, where the router builds them from values it has already checked.
 *
 * Measured 2026-11-30 (node 20, one process): `new Attempt(fields, { disableValidation: true })` takes 1.0-1.5 µs,
 * this 0.2-0.3 µs; `new Usage(…)` 0.26-0.31 µs against 0.06-0.11 µs. Even with validation off the constructor copies
 * its argument and walks every field for a constructor default (`lazilyMergeDefaults`); a routed call builds four to
 * six of these. In `bench/micro/router-call.mjs` (see the commit that brought this in) that is a few µs per call.
 *
 * The instance is the constructor's: the class's prototype, and the argument's own properties in their order (what
 * `Data.Class`, the base of `Schema.Class`, assigns). A class with a constructor default on a field keeps its
 * constructor, which applies it.
 *
 * @internal
 */
import * as Schema from "effect/Schema"
import { Attempt } from "../Attempt.js"
import { ChatResponse, Choice, FunctionCall, ToolCall, Usage } from "../ChatResponse.js"

const hasDefault = (field: Schema.Struct.Field): boolean => {
  if (!Schema.isPropertySignature(field)) return false
  const ast = field.ast
  return ast._tag === "PropertySignatureDeclaration"
    ? ast.defaultValue !== undefined
    : ast.to.defaultValue !== undefined
}

/**
 * `props => new klass(props, { disableValidation: true })`, in its cheaper form when the class has no field with a
 * constructor default.
 *
 * @internal
 */
export const unvalidated = <C, P>(
  klass: (new(props: P, options: { readonly disableValidation: true }) => C) & {
    readonly fields: Schema.Struct.Fields
  }
): (props: P) => C => {
  if (Object.values(klass.fields).some(hasDefault)) {
    return (props) => new klass(props, { disableValidation: true })
  }
  const prototype = klass.prototype as object
  return (props) => Object.assign(Object.create(prototype), props) as C
}

/** @internal */
export const attempt = unvalidated(Attempt)

/** @internal */
export const chatResponse = unvalidated(ChatResponse)

/** @internal */
export const choice = unvalidated(Choice)

/** @internal */
export const usage = unvalidated(Usage)

/** @internal */
export const toolCall = unvalidated(ToolCall)

/** @internal */
export const functionCall = unvalidated(FunctionCall)
