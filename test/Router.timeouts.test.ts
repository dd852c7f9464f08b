/**
 * Streams with both limits: `timeout.attempt` bounds the wait for the response headers whatever else is set, and
 * `timeout.firstToken` bounds the wait for the first content (TestClock, FakeHttpClient: exact instants).
 */
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import type { ChatChunk } from "../src/ChatChunk.js"
import * as Model from "../src/Model.js"
import * as OpenAiCompatible from "../src/OpenAiCompatible.js"
import * as RetryPolicy from "../src/RetryPolicy.js"
import * as Router from "../src/Router.js"
import * as FakeHttpClient from "../src/testing/FakeHttpClient.js"
import * as S from "../src/testing/UpstreamScript.js"

const KEY = "sk-timeouts-test-0123456789"
const endpoint = OpenAiCompatible.endpoint({ baseUrl: FakeHttpClient.openAiBaseUrl, apiKey: Redacted.make(KEY) })
const hi = { messages: [{ role: "user" as const, content: "hi" }] }
const fake = (script: S.Script) => FakeHttpClient.layer({ script, apiKey: KEY })

const router = Router.make({
  models: [Model.make({ name: "a", endpoint }), Model.make({ name: "b", endpoint })],
  retry: RetryPolicy.none,
  timeout: { attempt: "1 second", firstToken: "10 seconds" }
})

/** Runs the stream on a fiber; returns the instant it ended, its exit, and the requests' arrivals. */
const streamUntilDone = Effect.gen(function*() {
  const r = yield* router
  const fiber = yield* Effect.fork(Stream.runCollect(r.stream(hi)))
  let at = 0
  while (Option.isNone(yield* Fiber.poll(fiber)) && at < 20_000) {
    yield* TestClock.adjust("100 millis")
    at += 100
  }
  const exit = yield* Fiber.await(fiber)
  const arrivals = (yield* FakeHttpClient.requests).map((req) => `${req.model}@${req.receivedAt}`)
  return { at, exit, arrivals }
})

/** The error of the first attempt, from the trail of the stream's `Started` chunk. */
const firstError = (exit: Exit.Exit<Chunk.Chunk<ChatChunk>, unknown>) => {
  expect(Exit.isSuccess(exit)).toBe(true)
  const started = Exit.isSuccess(exit) ? Chunk.unsafeHead(exit.value) : undefined
  expect(started?._tag).toBe("Started")
  return started?._tag === "Started" ? started.trail[0] : undefined
}

describe("stream timeouts: attempt bounds the headers, firstToken the content", () => {
  it.effect("headers that never come are cut by timeout.attempt (1 s), not by the 10 s first-token limit", () =>
    Effect.gen(function*() {
      const { arrivals, at, exit } = yield* streamUntilDone
      expect(arrivals).toEqual(["a@0", "b@1000"])
      expect(at).toBe(1000)
      const first = firstError(exit)
      const error = first?.error
      expect(error?._tag).toBe("Timeout")
      if (error?._tag === "Timeout") {
        expect(error.phase).toBe("attempt")
        expect(error.afterMillis).toBe(1000)
      }
      expect(first?.endedAt).toBe(1000)
    }).pipe(Effect.provide(fake({ a: [S.hang({ stage: "headers" })], b: [S.succeed()] }))))

  it.effect("headers at 0.5 s and content at 5 s: the attempt limit does not cut the wait for content", () =>
    Effect.gen(function*() {
      const { arrivals, at, exit } = yield* streamUntilDone
      expect(arrivals).toEqual(["a@0"])
      expect(at).toBe(5500)
      expect(Exit.isSuccess(exit)).toBe(true)
    }).pipe(Effect.provide(fake({ a: [S.succeed({ headersDelayMs: 500, firstTokenDelayMs: 5000 })] }))))

  it.effect("content that never comes is cut by timeout.firstToken (10 s)", () =>
    Effect.gen(function*() {
      const { arrivals, at, exit } = yield* streamUntilDone
      expect(arrivals).toEqual(["a@0", "b@10000"])
      expect(at).toBe(10000)
      const error = firstError(exit)?.error
      expect(error?._tag === "Timeout" && error.phase).toBe("first-token")
    }).pipe(Effect.provide(fake({ a: [S.hang({ stage: "first-token" })], b: [S.succeed()] }))))
})
