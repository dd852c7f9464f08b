/**
 * Routed streams over a real loopback socket, byte by byte: SSE edge cases, failures before and after the first
 * content, socket cleanup on early exit and interruption, GPTRouter events, a long stream, `collect` and the seed's
 * `completionWithRetry`. Each test starts its own servers on 127.0.0.1:0 and closes them when its scope ends.
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import type * as HttpClient from "@effect/platform/HttpClient"
import { describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Http from "node:http"
import type * as Net from "node:net"
import * as V8 from "node:v8"
import * as Vm from "node:vm"
import type * as Attempt from "../src/Attempt.js"
import type { ChatChunk } from "../src/ChatChunk.js"
import type * as ChatRequest from "../src/ChatRequest.js"
import * as Compat from "../src/Compat.js"
import * as FetchRouterHttpClient from "../src/FetchRouterHttpClient.js"
import * as GptRouter from "../src/GptRouter.js"
import * as Model from "../src/Model.js"
import * as OpenAiCompatible from "../src/OpenAiCompatible.js"
import * as Router from "../src/Router.js"
import type * as RouterError from "../src/RouterError.js"
import * as RouterHttpClient from "../src/RouterHttpClient.js"
import * as SimulatedUpstream from "../src/testing/SimulatedUpstream.js"
import * as S from "../src/testing/UpstreamScript.js"
import { promise, run, runWith } from "./support/live.js"

const KEY = "sk-stream-test-0123456789abcdef"
const fast = { minDelay: "1 millis", maxDelay: "5 millis", initialDelay: "1 millis" } as const
const hi: ChatRequest.ChatRequest["messages"] = [{ role: "user", content: "hi" }]

type Upstream = SimulatedUpstream.SimulatedUpstream
type Protocol = "openai" | "gptrouter"

const endpointFor = (protocol: Protocol, upstream: Upstream) =>
  protocol === "openai"
    ? OpenAiCompatible.endpoint({ baseUrl: upstream.openAiBaseUrl, apiKey: Redacted.make(KEY) })
    : GptRouter.endpoint({ baseUrl: upstream.gptRouterBaseUrl, apiKey: Redacted.make(KEY) })

/** A router over the given models of one upstream, all on one protocol. */
const routerOn = (
  protocol: Protocol,
  upstream: Upstream,
  names: ReadonlyArray<string>,
  options: Omit<Router.Options, "models"> = {}
) => {
  const endpoint = endpointFor(protocol, upstream)
  return Router.make({ retry: fast, ...options, models: names.map((name) => Model.make({ name, endpoint })) })
}

/** Runs a stream to its end, recording every chunk the consumer received. */
const consume = <E, R>(stream: Stream.Stream<ChatChunk, E, R>) =>
  Effect.suspend(() => {
    const seen: Array<ChatChunk> = []
    return Effect.map(
      Effect.exit(Stream.runForEach(stream, (chunk) => Effect.sync(() => seen.push(chunk)))),
      (exit) => ({ seen, exit })
    )
  })

/** The typed failure of an exit; a defect or an interruption fails the test. */
const failureOf = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error("expected the stream to fail")
  expect(Cause.isDie(exit.cause)).toBe(false)
  const failure = Cause.failureOption(exit.cause)
  if (Option.isNone(failure)) throw new Error(`expected a typed failure, got ${Cause.pretty(exit.cause)}`)
  return failure.value
}

const texts = (chunks: ReadonlyArray<ChatChunk>) => chunks.flatMap((c) => c._tag === "TextDelta" ? [c.text] : [])
const tags = (chunks: ReadonlyArray<ChatChunk>) => chunks.map((c) => c._tag)
const started = (chunks: ReadonlyArray<ChatChunk>) => {
  const first = chunks[0]
  if (first?._tag !== "Started") throw new Error(`expected Started first, got ${first?._tag}`)
  return first
}
const outcomes = (trail: ReadonlyArray<Attempt.Attempt>) =>
  trail.map((a) => `${a.model}#${a.attempt}:${a.outcome}${a.error ? `:${a.error._tag}` : ""}`)

const asInterrupted = (error: unknown): RouterError.StreamInterrupted => {
  expect((error as { _tag: string })._tag).toBe("StreamInterrupted")
  return error as RouterError.StreamInterrupted
}

/** A node:http server on 127.0.0.1:0, closed with its connections when the scope ends. */
const listen = (
  handler: (req: Http.IncomingMessage, res: Http.ServerResponse) => void
): Effect.Effect<{ server: Http.Server; url: string }, never, Scope.Scope> =>
  Effect.acquireRelease(
    promise(() =>
      new Promise<{ server: Http.Server; url: string }>((resolve) => {
        const server = Http.createServer(handler)
        server.listen(
          0,
          "127.0.0.1",
          () => resolve({ server, url: `http://127.0.0.1:${(server.address() as Net.AddressInfo).port}` })
        )
      })
    ),
    ({ server }) =>
      promise(() =>
        new Promise<void>((resolve) => {
          server.closeAllConnections()
          server.close(() => resolve())
        })
      )
  )

/** Answers every request (after reading its body) with an SSE 200 and hands the response to `write`. */
const rawSse = (write: (res: Http.ServerResponse, body: string) => void) =>
  listen((req, res) => {
    let body = ""
    req.setEncoding("utf8")
    req.on("data", (piece: string) => {
      body += piece
    })
    req.on("end", () => {
      res.writeHead(200, { "content-type": "text/event-stream" })
      write(res, body)
    })
  })

const openAiEvent = (delta: object, finish: string | null = null) =>
  `data: ${
    JSON.stringify({
      id: "chatcmpl-raw",
      object: "chat.completion.chunk",
      created: 0,
      model: "raw-model",
      choices: [{ index: 0, delta, finish_reason: finish }]
    })
  }`

/**
 * A router on a server that answers every stream with "a", its finish and `[DONE]`, then hands the response to
 * `after` (end it, keep writing, or leave it open); counts the server's connections and their closes.
 */
const afterEndMarker = (after: (res: Http.ServerResponse) => void) =>
  Effect.gen(function*() {
    const server = yield* rawSse((res) => {
      res.write(`${openAiEvent({ content: "a" })}\n\n${openAiEvent({}, "stop")}\n\ndata: [DONE]\n\n`)
      after(res)
    })
    let connections = 0
    let closed = 0
    server.server.on("connection", (socket: Net.Socket) => {
      connections++
      socket.on("close", () => closed++)
    })
    const router = yield* Router.make({
      models: [Model.make({ name: "m", endpoint: OpenAiCompatible.endpoint({ baseUrl: server.url }) })],
      retry: fast
    })
    /** Waits until a socket has closed; fails after `withinMs`. */
    const socketClosed = (withinMs: number) =>
      promise(() =>
        new Promise<void>((resolve, reject) => {
          const deadline = Date.now() + withinMs
          const check = () =>
            closed > 0
              ? resolve()
              : Date.now() > deadline
              ? reject(new Error("socket not closed"))
              : setTimeout(check, 10)
          check()
        })
      )
    return { router, connections: () => connections, closed: () => closed, socketClosed }
  })

const multiByte = ["Caf", "é ", "😀", " 日本", "語!"]

// ---------------------------------------------------------------------------------------------------------------------
// Core end to end, once per HttpClient layer
// ---------------------------------------------------------------------------------------------------------------------

const core = (clientName: string, client: Layer.Layer<HttpClient.HttpClient>) => {
  const runIt = runWith(client)

  describe(`stream end to end over ${clientName}`, () => {
    for (const protocol of ["openai", "gptrouter"] as const) {
      it.live(`${protocol}: every byte its own write, multi-byte UTF-8 text exact, finish and usage`, () =>
        runIt(Effect.gen(function*() {
          const upstream = yield* SimulatedUpstream.make({
            apiKey: KEY,
            wire: { splitEvery: 1 },
            script: { m: [S.succeed({ chunks: multiByte, usage: { promptTokens: 12, completionTokens: 5 } })] }
          })
          const router = yield* routerOn(protocol, upstream, ["m"])
          const { exit, seen } = yield* consume(router.stream({ messages: hi }))
          expect(Exit.isSuccess(exit)).toBe(true)
          expect(tags(seen)).toEqual([
            "Started",
            "TextDelta",
            "TextDelta",
            "TextDelta",
            "TextDelta",
            "TextDelta",
            "Finish",
            "Usage"
          ])
          expect(texts(seen)).toEqual(multiByte)
          expect(texts(seen).join("")).toBe("Café 😀 日本語!")
          expect(seen.at(-2)).toEqual({ _tag: "Finish", index: 0, reason: "stop" })
          expect(seen.at(-1)).toEqual({ _tag: "Usage", promptTokens: 12, completionTokens: 5, totalTokens: 17 })
          const head = started(seen)
          expect([head.model, head.provider]).toEqual(["m", "openai"])
          expect(outcomes(head.trail)).toEqual(["m#1:success"])
          expect(upstream.requests).toHaveLength(1)
          expect(upstream.requests[0]!.stream).toBe(true)
        })))
    }

    it.live("a cut after 3 chunks: StreamInterrupted \"cut\" with exactly those chunks, once; no second model", () =>
      runIt(Effect.gen(function*() {
        const upstream = yield* SimulatedUpstream.make({
          script: {
            a: [S.cut({ chunks: ["one ", "two ", "three ", "four"], afterChunks: 3 })],
            b: [S.succeed({ text: "from b" })]
          }
        })
        const router = yield* routerOn("openai", upstream, ["a", "b"])
        const { exit, seen } = yield* consume(router.stream({ messages: hi }))
        const error = asInterrupted(failureOf(exit))
        expect(error.reason).toBe("cut")
        expect(error.text).toBe("one two three ")
        expect(error.cause?._tag).toBe("NetworkError")
        expect([error.model, error.provider]).toEqual(["a", "openai"])
        expect(tags(seen)).toEqual(["Started", "TextDelta", "TextDelta", "TextDelta"])
        expect(texts(seen)).toEqual(["one ", "two ", "three "])
        expect(error.chunks).toBe(seen.length)
        expect(upstream.attempts("a")).toBe(1)
        expect(upstream.attempts("b")).toBe(0)
      })))

    it.live("Stream.take(3) closes the socket; the server sees the close", () =>
      runIt(Effect.gen(function*() {
        const upstream = yield* SimulatedUpstream.make({
          script: { m: [S.stall({ chunks: ["1", "2", "3", "4"], afterChunks: 4 })] }
        })
        const router = yield* routerOn("openai", upstream, ["m"])
        const taken = yield* Stream.runCollect(Stream.take(router.stream({ messages: hi }), 3))
        expect(tags([...taken])).toEqual(["Started", "TextDelta", "TextDelta"])
        expect(texts([...taken])).toEqual(["1", "2"])
        yield* promise(() => upstream.waitForClosedConnections(1, 2_000))
        expect(upstream.closedConnections()).toBe(1)
      })))

    it.live("a stream read to its end marker leaves its connection to the next request, even when the response ends later", () =>
      runIt(Effect.gen(function*() {
        // The server sends `[DONE]` and ends the response 30 ms later, in a read of its own.
        const { connections, router } = yield* afterEndMarker((res) => setTimeout(() => res.end(), 30))
        for (let i = 0; i < 3; i++) {
          expect((yield* Router.collect(router.stream({ messages: hi }))).text).toBe("a")
          // Well past the server's end of the response (30 ms; a loaded machine needs the margin), still within the
          // 1 s release window: the released connection is back in the pool.
          yield* Effect.sleep("250 millis")
        }
        expect(connections()).toBe(1)
      })))

    it.live("a response that never ends after its end marker does not hold the consumer, and is aborted later", () =>
      runIt(Effect.gen(function*() {
        const { closed, router, socketClosed } = yield* afterEndMarker(() => {})
        const started = Date.now()
        expect((yield* Router.collect(router.stream({ messages: hi }))).text).toBe("a")
        expect(Date.now() - started).toBeLessThan(500)
        expect(closed()).toBe(0)
        // The release window (1 s) passes and the request is aborted, which closes its socket.
        yield* socketClosed(3_000)
        expect(Date.now() - started).toBeGreaterThanOrEqual(900)
      })))

    it.live("a released response that keeps sending past the drop limit is aborted at once", () =>
      runIt(Effect.gen(function*() {
        // 256 KiB of comments after the end marker, and no end.
        const filler = `: ${"x".repeat(1022)}\n`
        const { router, socketClosed } = yield* afterEndMarker((res) => {
          for (let i = 0; i < 256; i++) res.write(filler)
        })
        const started = Date.now()
        expect((yield* Router.collect(router.stream({ messages: hi }))).text).toBe("a")
        yield* socketClosed(3_000)
        // Well before the release window: the limit, not the timer, ended it.
        expect(Date.now() - started).toBeLessThan(800)
      })))

    it.live("interrupting the consumer closes the socket", () =>
      runIt(Effect.gen(function*() {
        const upstream = yield* SimulatedUpstream.make({
          script: { g: [S.stall({ chunks: ["x", "y", "z"], afterChunks: 2 })] }
        })
        const router = yield* routerOn("gptrouter", upstream, ["g"])
        const twoTexts = yield* Deferred.make<void>()
        let count = 0
        const fiber = yield* Effect.fork(Stream.runForEach(router.stream({ messages: hi }), (chunk) =>
          chunk._tag === "TextDelta" && ++count === 2 ? Deferred.succeed(twoTexts, undefined) : Effect.void))
        yield* Deferred.await(twoTexts)
        const exit = yield* Fiber.interrupt(fiber)
        expect(Exit.isInterrupted(exit)).toBe(true)
        yield* promise(() =>
          upstream.waitForClosedConnections(1, 2_000)
        )
        expect(upstream.closedConnections()).toBe(1)
      })))

    it.live("interrupting a stream still waiting for its first token closes the socket", () =>
      runIt(Effect.gen(function*() {
        const upstream = yield* SimulatedUpstream.make({
          wire: { keepAliveEveryMs: 10 },
          script: { m: [S.hang({ stage: "first-token" })] }
        })
        const router = yield* routerOn("openai", upstream, ["m"])
        const exit = yield* Effect.exit(
          Effect.timeout(Stream.runCollect(router.stream({ messages: hi })), "150 millis")
        )
        expect(Exit.isFailure(exit)).toBe(true)
        yield* promise(() => upstream.waitForClosedConnections(1, 2_000))
        expect(upstream.closedConnections()).toBe(1)
        expect(upstream.requests).toHaveLength(1)
      })))

    it.live("GPTRouter: served model from generation_source, usage from meta, fallback in one request list", () =>
      runIt(Effect.gen(function*() {
        const upstream = yield* SimulatedUpstream.make({
          apiKey: KEY,
          script: {
            g1: [S.inBandError({ afterChunks: 0, message: "provider down" })],
            g2: [S.succeed({ chunks: ["Hel", "lo"], usage: { promptTokens: 3, completionTokens: 2 } })]
          }
        })
        const endpoint = endpointFor("gptrouter", upstream)
        const router = yield* Router.make({
          models: [
            Model.make({ name: "g1", endpoint, provider: "cohere" }),
            Model.make({ name: "g2", endpoint, provider: "anthropic" })
          ],
          retry: { ...fast, maxAttempts: 1 }
        })
        const response = yield* Router.collect(router.stream({ messages: hi }))
        expect(response.text).toBe("Hello")
        expect([response.model, response.provider]).toEqual(["g2", "anthropic"])
        expect(response.usage).toEqual({ promptTokens: 3, completionTokens: 2, totalTokens: 5 })
        expect(response.choices[0]!.finishReason).toBe("stop")
        expect(outcomes(response.trail)).toEqual(["g1#1:fallback:ServerError", "g2#1:success"])
        const bodies = upstream.requests.map((r) =>
          r.body as { stream: boolean; data: Array<{ modelName: string; order: number }> }
        )
        expect(bodies.map((b) => b.stream)).toEqual([true, true])
        expect(upstream.requests.map((r) => r.headers["ws-secret"])).toEqual([KEY, KEY])
        expect(bodies.map((b) => b.data.map((d) => `${d.order}:${d.modelName}`))).toEqual([["1:g1", "2:g2"], ["1:g2"]])
      })))
  })
}

core("FetchHttpClient", FetchHttpClient.layer)
core("FetchRouterHttpClient", FetchRouterHttpClient.layer)
core("RouterHttpClient (node:http)", Layer.orDie(RouterHttpClient.layerNodeHttp))

// ---------------------------------------------------------------------------------------------------------------------
// SSE edge cases
// ---------------------------------------------------------------------------------------------------------------------

describe("stream: SSE framing edge cases", () => {
  for (const protocol of ["openai", "gptrouter"] as const) {
    it.live(`${protocol}: CRLF line endings, every byte its own write so CR and LF land in different reads`, () =>
      run(Effect.gen(function*() {
        const upstream = yield* SimulatedUpstream.make({
          wire: { lineEnding: "\r\n", splitEvery: 1 },
          script: { m: [S.succeed({ chunks: ["α", "β\n", "γ"] })] }
        })
        const router = yield* routerOn(protocol, upstream, ["m"])
        const { exit, seen } = yield* consume(router.stream({ messages: hi }))
        expect(Exit.isSuccess(exit)).toBe(true)
        expect(texts(seen)).toEqual(["α", "β\n", "γ"])
        expect(tags(seen)).toEqual(["Started", "TextDelta", "TextDelta", "TextDelta", "Finish", "Usage"])
      })))

    it.live(`${protocol}: keep-alive comments between chunks produce no chunks`, () =>
      run(Effect.gen(function*() {
        const upstream = yield* SimulatedUpstream.make({
          wire: { keepAliveEveryMs: 4 },
          script: { m: [S.succeed({ chunks: ["a", "b", "c"], firstTokenDelayMs: 20, chunkDelayMs: 15 })] }
        })
        const router = yield* routerOn(protocol, upstream, ["m"])
        const { exit, seen } = yield* consume(router.stream({ messages: hi }))
        expect(Exit.isSuccess(exit)).toBe(true)
        expect(tags(seen)).toEqual(["Started", "TextDelta", "TextDelta", "TextDelta", "Finish", "Usage"])
        expect(texts(seen)).toEqual(["a", "b", "c"])
      })))
  }

  it.live("a `retry:` field does not pause the stream", () =>
    run(Effect.gen(function*() {
      const upstream = yield* SimulatedUpstream.make({
        wire: { retryField: 5_000 },
        script: { m: [S.succeed({ chunks: ["no ", "pause"], chunkDelayMs: 5 })] }
      })
      const router = yield* routerOn("openai", upstream, ["m"])
      const t0 = Date.now()
      const { exit, seen } = yield* consume(router.stream({ messages: hi }))
      const elapsed = Date.now() - t0
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(texts(seen).join("")).toBe("no pause")
      expect(elapsed).toBeLessThan(2_000)
    })))

  it.live("the final event without a trailing blank line is still dispatched ([DONE] or the finish chunk)", () =>
    run(Effect.gen(function*() {
      // Variant 1: `data: [DONE]` is the last line, with no terminator at all.
      const done = yield* rawSse((res) => {
        res.write(`${openAiEvent({ role: "assistant", content: "" })}\n\n`)
        res.write(`${openAiEvent({ content: "last " })}\n\n`)
        res.write(`${openAiEvent({ content: "line" })}\n\n`)
        res.write(`${openAiEvent({}, "stop")}\n\n`)
        res.end("data: [DONE]")
      })
      // Variant 2: the finish chunk is the last event, ended by a single newline, and no [DONE] follows.
      const finish = yield* rawSse((res) => {
        res.write(`${openAiEvent({ role: "assistant", content: "" })}\n\n`)
        res.write(`${openAiEvent({ content: "only " })}\n\n`)
        res.end(`${openAiEvent({ content: "finish" }, "length")}\n`)
      })
      // Variant 3: GPTRouter's `end` event closes the body with no terminator; no update carries a finish reason, so
      // only that last event tells a complete stream from a truncated one.
      const gptEvent = (name: string, data: unknown) => `data: ${JSON.stringify({ event: name, data })}`
      const end = yield* rawSse((res) => {
        res.write(`${gptEvent("generation_source", { modelId: "raw", providerId: "openai" })}\n\n`)
        res.write(`${gptEvent("update", { text: "gpt ", finish_reason: null })}\n\n`)
        res.write(`${gptEvent("update", { text: "end", finish_reason: null })}\n\n`)
        res.end(gptEvent("end", {}))
      })
      const endRouter = yield* Router.make({
        models: [
          Model.make({ name: "raw", endpoint: GptRouter.endpoint({ baseUrl: end.url, apiKey: Redacted.make(KEY) }) })
        ],
        retry: fast
      })
      const ended = yield* consume(endRouter.stream({ messages: hi }))
      expect(Exit.isSuccess(ended.exit)).toBe(true)
      expect(texts(ended.seen)).toEqual(["gpt ", "end"])
      expect(tags(ended.seen)).toEqual(["Started", "TextDelta", "TextDelta"])

      for (const [server, text, reason] of [[done, "last line", "stop"], [finish, "only finish", "length"]] as const) {
        const router = yield* Router.make({
          models: [Model.make({ name: "raw", endpoint: OpenAiCompatible.endpoint({ baseUrl: `${server.url}/v1` }) })],
          retry: fast
        })
        const { exit, seen } = yield* consume(router.stream({ messages: hi }))
        expect(Exit.isSuccess(exit)).toBe(true)
        expect(texts(seen).join("")).toBe(text)
        expect(seen.filter((c) => c._tag === "Finish")).toEqual([{ _tag: "Finish", index: 0, reason }])
        expect(started(seen).id).toBe("chatcmpl-raw")
      }
    })))

  it.live("an event over maxEventBytes: MalformedResponse before content (falls back), \"malformed\" after", () =>
    run(Effect.gen(function*() {
      const upstream = yield* SimulatedUpstream.make({
        script: {
          early: [S.succeed({ chunks: ["x".repeat(2_000)] })],
          late: [S.succeed({ chunks: ["ok ", "y".repeat(2_000), "tail"] })],
          // The same in 50-byte writes, so the oversized event builds up across reads.
          lateSplit: [S.succeed({ chunks: ["ok ", "y".repeat(2_000), "tail"], wire: { splitEvery: 50 } })],
          b: [S.succeed({ text: "small answer" })]
        }
      })
      const options = { maxEventBytes: 512, retry: { ...fast, maxAttempts: 3 } }

      const alone = yield* routerOn("openai", upstream, ["early"], options)
      const e1 = failureOf((yield* consume(alone.stream({ messages: hi }))).exit)
      expect((e1 as { _tag: string })._tag).toBe("MalformedResponse")
      expect((e1 as RouterError.MalformedResponse).reason).toBe("an SSE event exceeded 512 bytes")
      expect(outcomes((e1 as RouterError.MalformedResponse).trail ?? [])).toEqual(["early#1:failed:MalformedResponse"])
      expect(upstream.attempts("early")).toBe(1)

      const withFallback = yield* routerOn("openai", upstream, ["early", "b"], options)
      const fellBack = yield* consume(withFallback.stream({ messages: hi }))
      expect(Exit.isSuccess(fellBack.exit)).toBe(true)
      expect(texts(fellBack.seen).join("")).toBe("small answer")
      expect(started(fellBack.seen).model).toBe("b")
      expect(outcomes(started(fellBack.seen).trail)).toEqual(["early#1:fallback:MalformedResponse", "b#1:success"])

      for (const name of ["late", "lateSplit"]) {
        const late = yield* routerOn("openai", upstream, [name, "b"], options)
        const cut = yield* consume(late.stream({ messages: hi }))
        const e2 = asInterrupted(failureOf(cut.exit))
        expect(e2.reason).toBe("malformed")
        expect(e2.text).toBe("ok ")
        expect(e2.cause?._tag).toBe("MalformedResponse")
        expect((e2.cause as RouterError.MalformedResponse).reason).toBe("an SSE event exceeded 512 bytes")
        expect(texts(cut.seen)).toEqual(["ok "])
      }
      expect(upstream.attempts("b")).toBe(1)
    })))
})

// ---------------------------------------------------------------------------------------------------------------------
// Failures before and after the first content
// ---------------------------------------------------------------------------------------------------------------------

describe("stream: failures before content are retried or fall back; after content they interrupt", () => {
  for (const protocol of ["openai", "gptrouter"] as const) {
    it.live(`${protocol}: a cut before any content is retried, then falls back`, () =>
      run(Effect.gen(function*() {
        const upstream = yield* SimulatedUpstream.make({
          script: { a: [S.cut({ chunks: ["never"], afterChunks: 0 })], b: [S.succeed({ chunks: ["from ", "b"] })] }
        })
        const router = yield* routerOn(protocol, upstream, ["a", "b"], { retry: { ...fast, maxAttempts: 2 } })
        const { exit, seen } = yield* consume(router.stream({ messages: hi }))
        expect(Exit.isSuccess(exit)).toBe(true)
        expect(texts(seen)).toEqual(["from ", "b"])
        expect(outcomes(started(seen).trail)).toEqual([
          "a#1:retry:NetworkError",
          "a#2:fallback:NetworkError",
          "b#1:success"
        ])
      })))

    it.live(`${protocol}: a clean end without the finish event or the end marker is "truncated"`, () =>
      run(Effect.gen(function*() {
        const upstream = yield* SimulatedUpstream.make({
          script: { a: [S.endWithoutFinish({ chunks: ["par", "tial", " never"], afterChunks: 2 })], b: [S.succeed()] }
        })
        const router = yield* routerOn(protocol, upstream, ["a", "b"])
        const { exit, seen } = yield* consume(router.stream({ messages: hi }))
        const error = asInterrupted(failureOf(exit))
        expect(error.reason).toBe("truncated")
        expect(error.text).toBe("partial")
        expect(texts(seen)).toEqual(["par", "tial"])
        expect(seen.some((c) => c._tag === "Finish")).toBe(false)
        expect(upstream.attempts("b")).toBe(0)
      })))

    it.live(`${protocol}: an in-band error before content is retried then falls back; nothing of the first model is emitted`, () =>
      run(Effect.gen(function*() {
        const upstream = yield* SimulatedUpstream.make({
          script: {
            a: [S.inBandError({ chunks: ["from a"], afterChunks: 0, message: "overloaded" })],
            b: [S.succeed({ chunks: ["from ", "b"] })]
          }
        })
        const router = yield* routerOn(protocol, upstream, ["a", "b"], { retry: { ...fast, maxAttempts: 2 } })
        const { exit, seen } = yield* consume(router.stream({ messages: hi }))
        expect(Exit.isSuccess(exit)).toBe(true)
        expect(texts(seen)).toEqual(["from ", "b"])
        expect(seen.filter((c) => c._tag === "Started")).toHaveLength(1)
        expect(started(seen).model).toBe("b")
        const trail = started(seen).trail
        expect(outcomes(trail)).toEqual(["a#1:retry:ServerError", "a#2:fallback:ServerError", "b#1:success"])
        expect(trail[0]!.error!.body).toContain("overloaded")
        expect(upstream.attempts("a")).toBe(2)
      })))

    it.live(`${protocol}: an in-band error after content is StreamInterrupted "in-band-error" with the partial text`, () =>
      run(Effect.gen(function*() {
        const upstream = yield* SimulatedUpstream.make({
          script: {
            a: [S.inBandError({ chunks: ["p1 ", "p2 ", "p3"], afterChunks: 2, message: "died mid-stream" })],
            b: [S.succeed()]
          }
        })
        const router = yield* routerOn(protocol, upstream, ["a", "b"], { retry: { ...fast, maxAttempts: 2 } })
        const { exit, seen } = yield* consume(router.stream({ messages: hi }))
        const error = asInterrupted(failureOf(exit))
        expect(error.reason).toBe("in-band-error")
        expect(error.text).toBe("p1 p2 ")
        expect(error.cause?._tag).toBe("ServerError")
        expect(error.cause?.body).toContain("died mid-stream")
        expect(texts(seen)).toEqual(["p1 ", "p2 "])
        expect(error.chunks).toBe(seen.length)
        expect(outcomes(error.trail ?? [])).toEqual(["a#1:success"])
        expect(upstream.attempts("a")).toBe(1)
        expect(upstream.attempts("b")).toBe(0)
      })))

    for (const kind of ["not-json", "wrong-schema"] as const) {
      it.live(`${protocol}: a ${kind} event after content is "malformed", not a skipped token`, () =>
        run(Effect.gen(function*() {
          const upstream = yield* SimulatedUpstream.make({
            script: { a: [S.malformed({ kind, chunks: ["a ", "b ", "c ", "d"], afterChunks: 2 })], b: [S.succeed()] }
          })
          const router = yield* routerOn(protocol, upstream, ["a", "b"])
          const { exit, seen } = yield* consume(router.stream({ messages: hi }))
          const error = asInterrupted(failureOf(exit))
          expect(error.reason).toBe("malformed")
          expect(error.text).toBe("a b ")
          expect(error.cause?._tag).toBe("MalformedResponse")
          // The server carries on with "c d" and a finish; none of it may reach the consumer.
          expect(texts(seen)).toEqual(["a ", "b "])
          expect(upstream.attempts("b")).toBe(0)
        })))
    }

    it.live(`${protocol}: malformed JSON before content falls back to the next model`, () =>
      run(Effect.gen(function*() {
        const upstream = yield* SimulatedUpstream.make({
          script: { a: [S.malformed({ kind: "not-json", chunks: ["zz"] })], b: [S.succeed({ chunks: ["b!"] })] }
        })
        const router = yield* routerOn(protocol, upstream, ["a", "b"], { retry: { ...fast, maxAttempts: 3 } })
        const { exit, seen } = yield* consume(router.stream({ messages: hi }))
        expect(Exit.isSuccess(exit)).toBe(true)
        expect(texts(seen)).toEqual(["b!"])
        expect(outcomes(started(seen).trail)).toEqual(["a#1:fallback:MalformedResponse", "b#1:success"])
      })))
  }

  it.live("an error status before the stream opens is retried (honouring retry-after-ms) and then falls back", () =>
    run(Effect.gen(function*() {
      const upstream = yield* SimulatedUpstream.make({
        script: {
          a: [S.rateLimited({ retryAfterMs: 20 }), S.serverError(502)],
          b: [S.succeed({ chunks: ["b", "!"] })]
        }
      })
      const router = yield* routerOn("openai", upstream, ["a", "b"], { retry: { ...fast, maxAttempts: 2 } })
      const { exit, seen } = yield* consume(router.stream({ messages: hi }))
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(texts(seen)).toEqual(["b", "!"])
      const trail = started(seen).trail
      expect(outcomes(trail)).toEqual(["a#1:retry:RateLimited", "a#2:fallback:ServerError", "b#1:success"])
      expect(trail[0]!.waitMillis).toBe(20)
      expect(upstream.requests[1]!.receivedAt - upstream.requests[0]!.receivedAt).toBeGreaterThanOrEqual(19)
    })))

  it.live("the trail and cause of a StreamInterrupted never contain the api key the server echoed", () =>
    run(Effect.gen(function*() {
      const upstream = yield* SimulatedUpstream.make({
        script: {
          a: [S.unauthorized({ message: `bad key ${KEY}` })],
          b: [S.inBandError({ chunks: ["x", "y"], afterChunks: 1, message: `quota for ${KEY} exceeded` })]
        }
      })
      const router = yield* routerOn("openai", upstream, ["a", "b"])
      const error = asInterrupted(failureOf((yield* consume(router.stream({ messages: hi }))).exit))
      expect(outcomes(error.trail ?? [])).toEqual(["a#1:fallback:AuthenticationFailed", "b#1:success"])
      expect(error.cause?.body).toContain("quota for <redacted> exceeded")
      for (const text of [error.message, String(error), JSON.stringify(error)]) expect(text).not.toContain(KEY)
    })))
})

// ---------------------------------------------------------------------------------------------------------------------
// GPTRouter specifics
// ---------------------------------------------------------------------------------------------------------------------

describe("stream: GPTRouter", () => {
  it.live("the served model and provider come from generation_source, not from the request", () =>
    run(Effect.gen(function*() {
      const event = (name: string, data: unknown) => `data: ${JSON.stringify({ event: name, data })}\n\n`
      const server = yield* rawSse((res) => {
        res.write(event("generation_source", { modelId: "claude-3-5-sonnet-20240620", providerId: "anthropic-eu" }))
        res.write(event("update", { text: "Bonjour" }))
        res.write(event("update", { text: " !", finish_reason: "stop" }))
        res.write(event("meta", { usage: { prompt_tokens: 8, completion_tokens: 2, total_tokens: 10 } }))
        res.end(event("end", {}))
      })
      const router = yield* Router.make({
        models: [
          Model.make({
            name: "claude-3-5-sonnet",
            provider: "anthropic",
            endpoint: GptRouter.endpoint({ baseUrl: server.url, apiKey: Redacted.make(KEY) })
          })
        ],
        retry: fast
      })
      const { exit, seen } = yield* consume(router.stream({ messages: hi }))
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(seen).toEqual([
        { _tag: "Started", model: "claude-3-5-sonnet-20240620", provider: "anthropic-eu", trail: started(seen).trail },
        { _tag: "TextDelta", index: 0, text: "Bonjour" },
        { _tag: "TextDelta", index: 0, text: " !" },
        { _tag: "Finish", index: 0, reason: "stop" },
        { _tag: "Usage", promptTokens: 8, completionTokens: 2, totalTokens: 10 }
      ])
      const response = yield* Router.collect(router.stream({ messages: hi }))
      expect([response.model, response.provider, response.text]).toEqual([
        "claude-3-5-sonnet-20240620",
        "anthropic-eu",
        "Bonjour !"
      ])
    })))
})

// ---------------------------------------------------------------------------------------------------------------------
// Long streams
// ---------------------------------------------------------------------------------------------------------------------

describe("stream: a long stream", () => {
  it.live(
    "50,000 chunks: the concatenated text is exact and every chunk arrives once, in order",
    () =>
      run(Effect.gen(function*() {
        const chunks = Array.from({ length: 50_000 }, (_, i) => `${i},`)
        const upstream = yield* SimulatedUpstream.make({ script: { m: [S.succeed({ chunks })] } })
        const router = yield* routerOn("openai", upstream, ["m"])
        let text = ""
        let deltas = 0
        let inOrder = true
        let usage: ChatChunk | undefined
        yield* Stream.runForEach(router.stream({ messages: hi }), (chunk) =>
          Effect.sync(() => {
            if (chunk._tag === "TextDelta") {
              if (chunk.text !== chunks[deltas]) inOrder = false
              deltas++
              text += chunk.text
            } else if (chunk._tag === "Usage") {
              usage = chunk
            }
          }))
        expect(deltas).toBe(50_000)
        expect(inOrder).toBe(true)
        expect(text).toBe(chunks.join(""))
        expect(usage).toEqual({ _tag: "Usage", promptTokens: 10, completionTokens: 50_000, totalTokens: 50_010 })
      })),
    60_000
  )

  it.live(
    "memory sanity: content is delivered while the server is still writing, and the heap stays flat",
    () =>
      run(Effect.gen(function*() {
        V8.setFlagsFromString("--expose-gc")
        const gc = Vm.runInNewContext("gc") as () => void
        const total = 50_000
        const padding = "p".repeat(600)
        // A server that renders each event when the socket can take it, so its own memory stays constant.
        let written = 0
        const server = yield* rawSse((res) => {
          res.write(`${openAiEvent({ role: "assistant", content: "" })}\n\n`)
          const pump = () => {
            while (written < total) {
              const ok = res.write(`${openAiEvent({ content: `${written},` }).slice(0, -1)},"pad":"${padding}"}\n\n`)
              written++
              if (!ok) return void res.once("drain", pump)
            }
            res.write(`${openAiEvent({}, "stop")}\n\n`)
            res.end("data: [DONE]\n\n")
          }
          pump()
        })
        const router = yield* Router.make({
          models: [Model.make({ name: "raw", endpoint: OpenAiCompatible.endpoint({ baseUrl: `${server.url}/v1` }) })],
          retry: fast
        })
        // After a forced GC: strings and chunk objects would show in heapUsed, retained raw reads in arrayBuffers.
        const memory = () => {
          gc()
          const m = process.memoryUsage()
          return { heap: m.heapUsed, buffers: m.arrayBuffers }
        }
        const baseline = memory()
        let deltas = 0
        let writtenAtFirst = -1
        let peakHeap = 0
        let peakBuffers = 0
        let length = 0
        yield* Stream.runForEach(router.stream({ messages: hi }), (chunk) =>
          Effect.sync(() => {
            if (chunk._tag !== "TextDelta") return
            if (deltas === 0) writtenAtFirst = written
            deltas++
            length += chunk.text.length
            if (deltas % 5_000 === 0) {
              const now = memory()
              peakHeap = Math.max(peakHeap, now.heap - baseline.heap)
              peakBuffers = Math.max(peakBuffers, now.buffers - baseline.buffers)
            }
          }))
        const bodyBytes = Array.from(
          { length: total },
          (_, i) => openAiEvent({ content: `${i},` }).length + padding.length + 10
        )
          .reduce((a, b) => a + b, 0)
        expect(bodyBytes).toBeGreaterThan(35_000_000)
        expect(deltas).toBe(total)
        expect(length).toBe(Array.from({ length: total }, (_, i) => `${i},`).join("").length)
        // The first chunk reached the consumer long before the server had written the body.
        expect(writtenAtFirst).toBeGreaterThanOrEqual(0)
        expect(writtenAtFirst).toBeLessThan(total / 2)
        // What stays alive is the text so far (a rope of ~60 bytes per delta, ~3 MB here) and in-flight reads: a small
        // fraction of the body, whichever way it would be buffered.
        expect(peakHeap).toBeLessThan(8_000_000)
        expect(peakBuffers).toBeLessThan(16_000_000)
      })),
    60_000
  )
})

// ---------------------------------------------------------------------------------------------------------------------
// collect and completionWithRetry
// ---------------------------------------------------------------------------------------------------------------------

describe("stream: Router.collect and completionWithRetry", () => {
  for (const protocol of ["openai", "gptrouter"] as const) {
    it.live(`${protocol}: Router.collect(stream) equals generate for the same script`, () =>
      run(Effect.gen(function*() {
        const upstream = yield* SimulatedUpstream.make({
          script: {
            m: [S.succeed({
              chunks: ["Alpha ", "beta ", "gamma"],
              usage: { promptTokens: 21, completionTokens: 3 },
              finishReason: "length"
            })]
          }
        })
        const router = yield* routerOn(protocol, upstream, ["m"])
        const generated = yield* router.generate({ messages: hi })
        const collected = yield* Router.collect(router.stream({ messages: hi }))
        const view = (r: typeof generated) => ({
          text: r.text,
          model: r.model,
          provider: r.provider,
          usage: r.usage,
          choices: r.choices.map((c) => ({ ...c })),
          trail: outcomes(r.trail)
        })
        expect(view(collected)).toEqual(view(generated))
        expect(view(generated)).toMatchObject({
          text: "Alpha beta gamma",
          model: "m",
          usage: { promptTokens: 21, completionTokens: 3, totalTokens: 24 },
          trail: ["m#1:success"]
        })
        expect(generated.choices[0]!.finishReason).toBe("length")
        if (protocol === "openai") expect([generated.id, collected.id]).toEqual(["chatcmpl-1", "chatcmpl-2"])
        expect(upstream.requests.map((r) => r.stream)).toEqual([false, true])
      })))
  }

  it.live("openai: collect equals generate for tool calls too", () =>
    run(Effect.gen(function*() {
      const upstream = yield* SimulatedUpstream.make({
        script: {
          m: [
            S.succeed({ toolCalls: [{ id: "call_1", name: "get_weather", arguments: { city: "Paris", unit: "C" } }] })
          ]
        }
      })
      const router = yield* routerOn("openai", upstream, ["m"])
      const generated = yield* router.generate({ messages: hi })
      const collected = yield* Router.collect(router.stream({ messages: hi }))
      const calls = (r: typeof generated) => r.choices[0]!.toolCalls.map((t) => ({ ...t }))
      expect(calls(collected)).toEqual([{
        id: "call_1",
        name: "get_weather",
        arguments: "{\"city\":\"Paris\",\"unit\":\"C\"}"
      }])
      expect(calls(collected)).toEqual(calls(generated))
      expect(collected.choices[0]!.finishReason).toBe("tool_calls")
      expect(generated.choices[0]!.finishReason).toBe("tool_calls")
    })))

  it.live("completionWithRetry: with stream: true a Stream, without it the response", () =>
    run(Effect.gen(function*() {
      const upstream = yield* SimulatedUpstream.make({
        apiKey: KEY,
        script: { first: [S.unavailable()], second: [S.succeed({ chunks: ["seed ", "style"] })] }
      })
      const endpoint = endpointFor("gptrouter", upstream)
      const models = [{ name: "first", provider: "openai" }, { name: "second", provider: "anthropic" }]
      const options = { endpoint, retry: { ...fast, maxAttempts: 2 } }

      const streamed = Compat.completionWithRetry(models, { messages: hi, stream: true }, options)
      expect(Stream.StreamTypeId in streamed).toBe(true)
      expect(Effect.isEffect(streamed)).toBe(false)
      const { exit, seen } = yield* consume(streamed)
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(texts(seen)).toEqual(["seed ", "style"])
      expect([started(seen).model, started(seen).provider]).toEqual(["second", "anthropic"])

      const single = Compat.completionWithRetry(models, { messages: hi, temperature: 0.1 }, options)
      expect(Effect.isEffect(single)).toBe(true)
      const response = yield* single
      expect([response.text, response.model, response.provider]).toEqual(["seed style", "second", "anthropic"])
      expect(outcomes(response.trail)).toEqual([
        "first#1:retry:ServiceUnavailable",
        "first#2:fallback:ServiceUnavailable",
        "second#1:success"
      ])

      const bodies = upstream.requests.map((r) =>
        r.body as { stream: boolean; data: Array<{ modelName: string; order: number; promptParams: unknown }> }
      )
      expect(bodies.map((b) => [b.stream, b.data.map((d) => `${d.order}:${d.modelName}`).join(",")])).toEqual([
        [true, "1:first,2:second"],
        [true, "1:first,2:second"],
        [true, "1:second"],
        [false, "1:first,2:second"],
        [false, "1:first,2:second"],
        [false, "1:second"]
      ])
      // `stream` is the router's business, not a prompt parameter.
      expect(bodies[0]!.data[0]!.promptParams).toEqual({ messages: hi })
      expect(bodies[3]!.data[0]!.promptParams).toEqual({ messages: hi, temperature: 0.1 })
    })))
})

// Last: importing @effect/platform-node installs undici as the process-wide fetch dispatcher, so the FetchHttpClient
// tests above run before it is loaded.
core(
  "NodeRouterHttpClient.layerUndici",
  Layer.unwrapEffect(
    Effect.map(Effect.promise(() => import("../src/node/NodeRouterHttpClient.js")), (m) => m.layerUndici)
  )
)
