/**
 * A fast structural check compiled once from a Schema. Stock `Schema.is` walks the AST through the general parser on
 * every call (about 1 µs per streamed chunk); this compiles the same AST into nested closures. It covers the plain
 * JSON shapes wire schemas use, and refinements by calling their own filter; any other node (transformations,
 * suspensions, records) falls back to `Schema.is` for that subtree, so the answer is always the Schema's own.
 *
 * @internal
 */
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as AST from "effect/SchemaAST"

type Check = (u: unknown) => boolean

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

const compileAst = (ast: AST.AST): Check => {
  switch (ast._tag) {
    case "StringKeyword":
      return (u) => typeof u === "string"
    case "NumberKeyword":
      return (u) => typeof u === "number"
    case "BooleanKeyword":
      return (u) => typeof u === "boolean"
    case "UndefinedKeyword":
      return (u) => u === undefined
    case "UnknownKeyword":
    case "AnyKeyword":
      return () => true
    case "Literal": {
      const literal = ast.literal
      return (u) => u === literal
    }
    case "Union": {
      const members = ast.types.map(compileAst)
      return (u) => {
        for (let i = 0; i < members.length; i++) if (members[i]!(u)) return true
        return false
      }
    }
    case "TupleType": {
      if (ast.elements.length === 0 && ast.rest.length === 1) {
        const item = compileAst(ast.rest[0]!.type)
        return (u) => {
          if (!Array.isArray(u)) return false
          for (let i = 0; i < u.length; i++) if (!item(u[i])) return false
          return true
        }
      }
      break
    }
    case "Refinement": {
      // The same order as the Schema's parser: the underlying shape first, then the refinement's own filter.
      const from = compileAst(ast.from)
      const refinement = ast
      return (u) => from(u) && refinement.filter(u, AST.defaultParseOption, refinement)._tag === "None"
    }
    case "TypeLiteral": {
      if (ast.indexSignatures.length > 0) break
      const props = ast.propertySignatures.map((ps) => {
        const check = compileAst(ps.type)
        return { key: ps.name as string, optional: ps.isOptional, check }
      })
      return (u) => {
        if (!isRecord(u)) return false
        for (let i = 0; i < props.length; i++) {
          const p = props[i]!
          const value = u[p.key]
          if (value === undefined) {
            if (p.optional) continue
            if (!(p.key in u)) return false
          }
          if (!p.check(value)) return false
        }
        return true
      }
    }
  }
  return Schema.is(Schema.make(ast))
}

/** @internal */
export interface CompiledValidator<A> {
  /** Fast path: true when the value has the schema's shape. */
  readonly is: (u: unknown) => u is A
  /** Slow path for the failure message: a readable account of the first problem. */
  readonly explain: (u: unknown) => string
}

/** @internal */
export const compile = <A, I>(schema: Schema.Schema<A, I, never>): CompiledValidator<A> => {
  const check = compileAst(schema.ast)
  const decode = Schema.decodeUnknownEither(schema, { errors: "first" })
  return {
    is: check as (u: unknown) => u is A,
    explain: (u) => {
      const result = decode(u)
      if (result._tag === "Right") return "unexpected shape"
      const issue = ParseResult.ArrayFormatter.formatErrorSync(result.left)[0]
      return issue === undefined ? "unexpected shape" : `${issue.path.join(".") || "(root)"}: ${issue.message}`
    }
  }
}
