/**
 * The failure modes, declared once: what each status becomes (under the TestClock, through the FakeHttpClient), what
 * is retried and what falls back by default, and that each mode's class round-trips through its schema and is caught
 * by its tag.
 */
import { describe, expect, expectTypeOf, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import { readFileSync } from "node:fs"
import * as Model from "../src/Model.js"
import * as OpenAiCompatible from "../src/OpenAiCompatible.js"
import * as RetryPolicy from "../src/RetryPolicy.js"
import * as Router from "../src/Router.js"
import * as RouterError from "../src/RouterError.js"
import * as FakeHttpClient from "../src/testing/FakeHttpClient.js"
import * as S from "../src/testing/UpstreamScript.js"

const KEY = "sk-modes-test-0123456789"
const endpoint = OpenAiCompatible.endpoint({ baseUrl: FakeHttpClient.openAiBaseUrl, apiKey: Redacted.make(KEY) })
const hi = { messages: [{ role: "user" as const, content: "hi" }] }

// What a user of the library is promised (README "Failure modes"), written out by hand rather than read from the
// declarations, so that a change to a mode's declaration shows up here.
const statusTable: ReadonlyArray<readonly [status: number, tag: RouterError.AttemptErrorTag]> = [
  [400, "BadRequest"],
  [401, "AuthenticationFailed"],
  [402, "QuotaExhausted"],
  [403, "PermissionDenied"],
  [404, "ModelNotFound"],
  [408, "Timeout"],
  [409, "ServiceUnavailable"],
  [413, "ContextLengthExceeded"],
  [418, "BadRequest"],
  [422, "BadRequest"],
  [429, "RateLimited"],
  [500, "ServerError"],
  [501, "ServerError"],
  [502, "ServerError"],
  [503, "ServiceUnavailable"],
  [504, "ServerError"],
  [529, "ServiceUnavailable"],
  [599, "ServerError"]
]
const retried = ["RateLimited", "ServerError", "ServiceUnavailable", "Timeout", "NetworkError"]

describe("failure modes: one declaration each", () => {
  it("the defaults are the README's columns: five transient modes retried, everything but BadRequest falls back", () => {
    expect([...RetryPolicy.defaultRetryOn].sort()).toEqual([...retried].sort())
    expect([...Router.defaultFallbackOn].sort()).toEqual(
      RouterError.attemptErrorTagList.filter((tag) => tag !== "BadRequest").sort()
    )
    expect(RouterError.attemptErrorTagList).toHaveLength(14)
  })

  it("the README's failure-mode table says what each mode's declaration says", () => {
    const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8")
    const rows = new Map<string, ReadonlyArray<string>>()
    for (const line of readme.split("\n")) {
      const cells = line.split("|").slice(1, -1).map((cell) => cell.trim())
      const tag = /^`(\w+)`$/.exec(cells[0] ?? "")?.[1]
      if (tag !== undefined && cells.length === 5) rows.set(tag, cells)
    }
    for (const tag of RouterError.attemptErrorTagList) {
      const mode = RouterError.failureModes[tag]
      const row = rows.get(tag)
      expect(row, tag).toBeDefined()
      expect(row![2], `${tag} retried`).toBe(mode.retryable ? "yes" : "no")
      expect(row![3].startsWith(mode.fallsBack ? "yes" : "**no**"), `${tag} falls back`).toBe(true)
      expect(row![4], `${tag} health`).toBe(mode.health === "ignored" ? "no" : mode.health)
    }
  })

  it("no status is claimed by two modes, and each class's mode names its own tag", () => {
    const seen = new Map<number | string, string>()
    for (const tag of RouterError.attemptErrorTagList) {
      const mode = RouterError.failureModes[tag]
      expect(mode.tag).toBe(tag)
      expect(RouterError.classes[tag]._tag).toBe(tag)
      for (const status of mode.statuses) {
        expect(seen.get(status), `status ${status}`).toBeUndefined()
        seen.set(status, tag)
      }
    }
  })

  describe.each(statusTable)("HTTP %i", (status, tag) => {
    const isRetried = retried.includes(tag)
    it.effect(
      `→ ${tag}, ${isRetried ? "retried once after 4 s" : "not retried"}; ${
        tag === "BadRequest" ? "ends the call" : "falls back"
      }`,
      () =>
        Effect.gen(function*() {
          const router = yield* Router.make({
            models: [Model.make({ name: "a", endpoint }), Model.make({ name: "b", endpoint })],
            retry: { maxAttempts: 2, jitter: 0 }
          })
          const fiber = yield* Effect.fork(Effect.either(router.generate(hi)))
          yield* TestClock.adjust("4 seconds")
          const result = yield* Fiber.join(fiber)
          const requests = (yield* FakeHttpClient.requests).map((r) => `${r.model}@${r.receivedAt}`)
          const failedOnA = isRetried ? ["a@0", "a@4000"] : ["a@0"]
          if (tag === "BadRequest") {
            expect(requests).toEqual(failedOnA)
            expect(result._tag).toBe("Left")
            if (result._tag === "Left") {
              expect(result.left._tag).toBe(tag)
              expect(result.left instanceof RouterError.BadRequest).toBe(true)
            }
          } else {
            expect(requests).toEqual([...failedOnA, `b@${isRetried ? 4000 : 0}`])
            expect(result._tag).toBe("Right")
            if (result._tag === "Right") {
              expect(result.right.trail.map((a) => a.error?._tag)).toEqual([...failedOnA.map(() => tag), undefined])
              expect(result.right.trail[0]!.error?.status).toBe(status)
            }
          }
        }).pipe(
          Effect.provide(FakeHttpClient.layer({ script: { a: [S.fail(status)], b: [S.succeed()] }, apiKey: KEY }))
        )
    )
  })
})

describe("failure modes: classes", () => {
  const call = { provider: "openai", model: "gpt-4o", attempt: 2, status: 503, body: "busy" }
  const instances: ReadonlyArray<RouterError.AttemptError> = [
    new RouterError.RateLimited({ ...call, retryAfterMillis: 1500 }),
    new RouterError.QuotaExhausted(call),
    new RouterError.AuthenticationFailed(call),
    new RouterError.PermissionDenied(call),
    new RouterError.BadRequest(call),
    new RouterError.ContextLengthExceeded(call),
    new RouterError.ContentFiltered(call),
    new RouterError.ModelNotFound(call),
    new RouterError.ServerError(call),
    new RouterError.ServiceUnavailable(call),
    new RouterError.Timeout({ ...call, phase: "first-token", afterMillis: 2000 }),
    new RouterError.NetworkError({ ...call, reason: "ECONNRESET" }),
    new RouterError.MalformedResponse({ ...call, reason: "body is not JSON" }),
    new RouterError.ResponseRejected({ ...call, reason: "not JSON" })
  ]

  it("one instance per mode, in the table's order", () => {
    expect(instances.map((e) => e._tag)).toEqual(RouterError.attemptErrorTagList)
  })

  it.each(instances.map((e) => [e._tag, e] as const))(
    "%s: round-trips through the schema, keeps its message",
    (_, e) => {
      const decoded = Schema.decodeUnknownSync(RouterError.AttemptError)(Schema.encodeSync(RouterError.AttemptError)(e))
      expect(decoded).toBeInstanceOf(RouterError.classes[e._tag])
      expect(decoded.message).toBe(e.message)
      expect(e.message.startsWith("openai/gpt-4o (attempt 2): ")).toBe(true)
      expect(e.message).toContain("(HTTP 503)")
      expect(e.message.endsWith(": busy")).toBe(true)
      expect(RouterError.isRouterError(e)).toBe(true)
      expect(RouterError.isAttemptError(e)).toBe(true)
    }
  )

  it.effect.each(instances.map((e) => [e._tag, e] as const))(
    "%s: caught by Effect.catchTag",
    ([tag, e]) =>
      Effect.gen(function*() {
        const caught = yield* Effect.catchTag(
          Effect.fail(e as RouterError.AttemptError),
          tag,
          (error) => Effect.succeed(error._tag)
        )
        expect(caught).toBe(tag)
      })
  )

  it("messages name the mode's own fields", () => {
    expect(instances[0]!.message).toBe(
      "openai/gpt-4o (attempt 2): rate limited (HTTP 503); server asked to wait 1.5s: busy"
    )
    expect(instances[10]!.message).toContain("timed out (first-token) after 2s")
    expect(instances[11]!.message).toContain("network failure: ECONNRESET")
    expect(instances[12]!.message).toContain("malformed response: body is not JSON")
  })

  it("the constructor validates its fields (a non-string provider is rejected)", () => {
    expect(() => new RouterError.RateLimited({ ...call, provider: 1 as unknown as string })).toThrow(/provider/)
  })

  it("isRouterError narrows to every error of the library, StreamInterrupted and RouterConfigError included", () => {
    const interrupted: unknown = new RouterError.StreamInterrupted({
      provider: "openai",
      model: "m",
      reason: "cut",
      text: "Hel",
      toolCalls: [],
      chunks: 2
    })
    expect(RouterError.isRouterError(interrupted)).toBe(true)
    expect(RouterError.isAttemptError(interrupted)).toBe(false)
    if (RouterError.isRouterError(interrupted)) {
      expectTypeOf(interrupted).toEqualTypeOf<RouterError.AnyError>()
      expectTypeOf<RouterError.StreamInterrupted>().toMatchTypeOf<typeof interrupted>()
      expectTypeOf<RouterError.RouterConfigError>().toMatchTypeOf<typeof interrupted>()
    }
    expect(RouterError.isRouterError(new Error("other"))).toBe(false)
    expect(RouterError.isRouterError({ _tag: "RateLimited" })).toBe(false)
  })
})
