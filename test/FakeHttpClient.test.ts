/**
 * The in-memory FakeHttpClient answers every step exactly like the loopback SimulatedUpstream: same status, headers
 * and bytes, and a body that breaks at the same point. Both are asked through an Effect HttpClient.
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as FakeHttpClient from "../src/testing/FakeHttpClient.js"
import * as SimulatedUpstream from "../src/testing/SimulatedUpstream.js"
import * as S from "../src/testing/UpstreamScript.js"

interface Observed {
  readonly status: number
  readonly headers: Record<string, string>
  readonly body: string
  readonly broken: boolean
}

// Headers the HTTP stack adds on a socket, not the script.
const transportHeaders = new Set(["date", "connection", "keep-alive", "transfer-encoding"])

const observe = (client: HttpClient.HttpClient, request: HttpClientRequest.HttpClientRequest) =>
  Effect.scoped(Effect.gen(function*() {
    const response = yield* client.execute(request)
    // Collected read by read, so a body that breaks still shows what arrived before the break.
    const bytes: Array<Uint8Array> = []
    const read = yield* Effect.either(Stream.runForEach(response.stream, (b) => Effect.sync(() => bytes.push(b))))
    const headers: Record<string, string> = {}
    for (const [name, value] of Object.entries(response.headers)) {
      if (!transportHeaders.has(name)) headers[name] = value
    }
    const body = bytes.map((b) => new TextDecoder().decode(b)).join("")
    return {
      status: response.status,
      headers,
      // The Unix second of `created` may differ between the two runs.
      body: body.replace(/"created":\d+/g, "\"created\":0"),
      broken: Either.isLeft(read)
    } satisfies Observed
  }))

const requests = (base: string) => [
  HttpClientRequest.post(`${base}/v1/chat/completions`).pipe(
    HttpClientRequest.bearerToken("sk-parity"),
    HttpClientRequest.bodyUnsafeJson({ model: "m", messages: [{ role: "user", content: "hi" }] })
  ),
  HttpClientRequest.post(`${base}/v1/chat/completions`).pipe(
    HttpClientRequest.bearerToken("sk-parity"),
    HttpClientRequest.bodyUnsafeJson({
      model: "m",
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: "user", content: "hi" }]
    })
  ),
  HttpClientRequest.post(`${base}/api/v1/generate`).pipe(
    HttpClientRequest.setHeader("ws-secret", "sk-parity"),
    HttpClientRequest.bodyUnsafeJson({ stream: true, data: [{ modelName: "m", providerName: "openai", order: 1 }] })
  ),
  ...[false, true].map((stream) =>
    HttpClientRequest.post(`${base}/v1/messages`).pipe(
      HttpClientRequest.setHeaders({ "x-api-key": "sk-parity", "anthropic-version": "2023-06-01" }),
      HttpClientRequest.bodyUnsafeJson({
        model: "m",
        max_tokens: 64,
        stream,
        messages: [{ role: "user", content: "hi" }]
      })
    )
  ),
  ...[":generateContent", ":streamGenerateContent?alt=sse"].map((method) =>
    HttpClientRequest.post(`${base}/v1beta/models/m${method}`).pipe(
      HttpClientRequest.setHeader("x-goog-api-key", "sk-parity"),
      HttpClientRequest.bodyUnsafeJson({ contents: [{ role: "user", parts: [{ text: "hi" }] }] })
    )
  )
]

const steps: ReadonlyArray<readonly [string, S.Step]> = [
  ["succeed", S.succeed({ text: "héllo wörld 🌍", toolCalls: [{ id: "t1", name: "f", arguments: { x: 1 } }] })],
  ["rateLimited", S.rateLimited({ retryAfter: 3, retryAfterMs: 2500 })],
  ["unavailable", S.unavailable()],
  ["overloaded (529)", S.serverError(529)],
  ["quotaExhausted", S.quotaExhausted()],
  ["notFound", S.notFound()],
  [
    "delays, keep-alives, a text then two tool calls",
    S.succeed({
      firstTokenDelayMs: 12,
      chunkDelayMs: 1,
      wire: { keepAliveEveryMs: 5, retryField: 100 },
      text: "ab",
      toolCalls: [{ id: "t1", name: "f", arguments: { x: 1 } }, { id: "t2", name: "g", arguments: "{}" }]
    })
  ],
  ["cut inside the tool calls", S.cut({ afterChunks: 3, toolCalls: [{ id: "t1", name: "f", arguments: { x: 1 } }] })],
  ["contextLengthExceeded", S.contextLengthExceeded()],
  ["cut", S.cut({ afterChunks: 2 })],
  ["endWithoutFinish", S.endWithoutFinish({ afterChunks: 1 })],
  ["inBandError", S.inBandError({ afterChunks: 1, message: "overloaded" })],
  ["malformed", S.malformed({ kind: "not-json", afterChunks: 1 })],
  ["malformed: wrong schema", S.malformed({ kind: "wrong-schema", afterChunks: 2 })],
  ["malformed: bad event", S.malformed({ kind: "bad-event", afterChunks: 1 })],
  ["split and CRLF", S.succeed({ text: "abc", wire: { splitEvery: 3, lineEnding: "\r\n" } })]
]

describe("FakeHttpClient: parity with SimulatedUpstream", () => {
  for (const [name, step] of steps) {
    it.live(`${name}: same status, headers, bytes and breakage`, () =>
      Effect.gen(function*() {
        const script = { m: [step] }
        const upstream = yield* SimulatedUpstream.make({ script, apiKey: "sk-parity" })
        const loopback = yield* HttpClient.HttpClient
        const fake = FakeHttpClient.make({ script, apiKey: "sk-parity" })
        const real: Array<Observed> = []
        for (const request of requests(upstream.url)) real.push(yield* observe(loopback, request))
        const faked: Array<Observed> = []
        for (const request of requests(FakeHttpClient.url)) faked.push(yield* observe(fake.client, request))
        expect(faked).toEqual(real)
        const breaks = step._tag === "Cut"
        expect(real.map((o) => o.broken)).toEqual(real.map(() => breaks))
        expect(real.map((o) => o.status)).toEqual(real.map(() => step._tag === "Fail" ? step.status : 200))
        expect(real.every((o) => o.body.length > 0)).toBe(true)
        expect(fake.requests().map((r) => [r.protocol, r.model, r.stream, r.attempt])).toEqual(
          upstream.requests.map((r) => [r.protocol, r.model, r.stream, r.attempt])
        )
      }).pipe(Effect.scoped, Effect.provide(FetchHttpClient.layer)))
  }

  it.live("a wrong key is the same answer in both, in each protocol's shape", () =>
    Effect.gen(function*() {
      const script = { m: [S.succeed()] }
      const upstream = yield* SimulatedUpstream.make({ script, apiKey: "sk-other" })
      const loopback = yield* HttpClient.HttpClient
      const fake = FakeHttpClient.make({ script, apiKey: "sk-other" })
      const real: Array<Observed> = []
      for (const request of requests(upstream.url)) real.push(yield* observe(loopback, request))
      const faked: Array<Observed> = []
      for (const request of requests(FakeHttpClient.url)) faked.push(yield* observe(fake.client, request))
      expect(faked).toEqual(real)
      // Google answers a wrong key with 400 API_KEY_INVALID.
      expect(real.map((o) => o.status)).toEqual([401, 401, 401, 401, 401, 400, 400])
      expect(JSON.parse(real[3]!.body)).toEqual({
        type: "error",
        error: { type: "authentication_error", message: "invalid x-api-key" }
      })
      expect(JSON.parse(real[5]!.body).error.details[0].reason).toBe("API_KEY_INVALID")
    }).pipe(Effect.scoped, Effect.provide(FetchHttpClient.layer)))
})

describe("FakeHttpClient on the TestClock", () => {
  it.effect("headers wait for headersDelayMs; a hang before headers never answers until interrupted", () =>
    Effect.gen(function*() {
      const fake = FakeHttpClient.make({ script: { m: [S.unavailable({ headersDelayMs: 700 }), S.hang()] } })
      const [request] = requests(FakeHttpClient.url)
      const first = yield* Effect.fork(observe(fake.client, request!))
      yield* TestClock.adjust("699 millis")
      expect(first.unsafePoll()).toBeNull()
      yield* TestClock.adjust("1 millis")
      expect((yield* Fiber.join(first)).status).toBe(503)
      const second = yield* Effect.fork(observe(fake.client, request!))
      yield* TestClock.adjust("1 hour")
      expect(second.unsafePoll()).toBeNull()
      yield* Fiber.interrupt(second)
      expect(fake.requests().map((r) => r.receivedAt)).toEqual([0, 700])
      expect(fake.closedConnections()).toBe(1)
    }))

  it.effect("a stall keeps the body open, sending keep-alives on the clock", () =>
    Effect.gen(function*() {
      const fake = FakeHttpClient.make({
        script: { m: [S.stall({ afterChunks: 1, chunks: ["a", "b"] })] },
        wire: { keepAliveEveryMs: 1000 }
      })
      const request = requests(FakeHttpClient.url)[1]!
      const body = yield* Effect.fork(Effect.scoped(Effect.gen(function*() {
        const response = yield* fake.client.execute(request)
        return yield* Stream.runCollect(Stream.take(response.stream, 5))
      })))
      yield* TestClock.adjust("2999 millis")
      expect(body.unsafePoll()).toBeNull()
      yield* TestClock.adjust("1 millis")
      const reads = Chunk.toReadonlyArray(yield* Fiber.join(body)).map((b) => new TextDecoder().decode(b))
      expect(reads.slice(2)).toEqual(Array(3).fill(": keep-alive\n\n"))
      expect(reads[1]).toContain("\"content\":\"a\"")
    }))
})
