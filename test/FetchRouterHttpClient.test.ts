/**
 * The fetch client layer over a real loopback socket: round trips, what the server sees when a request or a body read
 * is cut short (interruption, `Stream.take`, a closed scope, a dropped response, a released body), error mapping,
 * connection reuse, and the platform's `Fetch` / `RequestInit` tags. Each test starts its own node:http server on
 * 127.0.0.1:0 and closes it when its scope ends.
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import type * as HttpClient from "@effect/platform/HttpClient"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as FetchRouterHttpClient from "../src/FetchRouterHttpClient.js"
import * as ByteSource from "../src/internal/byteSource.js"

import { clientOf, prefetchRules, roundTripRules, scopeRules } from "./support/clientLayerRules.js"
import type { LayerUnderTest } from "./support/clientLayerRules.js"
import { direct, endless, modes, serve, text, waitUntil } from "./support/loopbackHttp.js"
import type { Client } from "./support/loopbackHttp.js"

/** Runs `f` with the layer's client in the given mode. */
const withClient = clientOf({ layer: FetchRouterHttpClient.layer })

const fetchLayer: LayerUnderTest = {
  name: "FetchRouterHttpClient",
  layer: FetchRouterHttpClient.layer,
  // fetch's pool opens another connection for a request sent the moment a response ends.
  reuse: { layer: FetchRouterHttpClient.layer, delay: "30 millis" },
  refused: {
    cause: "is fetch's (\"fetch failed\"), carrying ECONNREFUSED",
    code: (cause) => {
      const failed = cause as { readonly message?: unknown; readonly cause?: { readonly code?: unknown } }
      return failed.message === "fetch failed" ? failed.cause?.code : undefined
    }
  }
}
roundTripRules(fetchLayer)

/** 1,000 sequential calls (every tenth response dropped unread) leave no socket, connection or request behind. */
const leakCheck = (mode: (client: HttpClient.HttpClient) => Client) =>
  Effect.scoped(Effect.gen(function*() {
    const server = yield* serve((_, res) => res.end("{\"ok\":true}"))
    const sockets = () => process.getActiveResourcesInfo().filter((r) => r === "TCPSocketWrap").length
    yield* withClient(mode, (client) =>
      Effect.gen(function*() {
        let unread = 0
        const call = Effect.flatMap(client.get(`${server.url}/ok`), (r) =>
          // Every tenth response is dropped unread: a small body that has fully arrived must not hold its connection.
          ++unread % 10 === 0 ? Effect.succeed({ ok: true }) : r.json)
        // Warm up: fetch's pool settles on its connections.
        yield* Effect.replicateEffect(call, 10)
        const before = { sockets: sockets(), connections: server.connections() }
        const results = yield* Effect.replicateEffect(call, 1_000)
        expect(results.every((r) => (r as { ok: boolean }).ok === true)).toBe(true)
        expect(server.requests.length).toBe(1_010)
        expect([server.connections(), server.closed(), server.aborted()]).toEqual([before.connections, 0, 0])
        expect(sockets()).toBe(before.sockets)
      }))
  }))

scopeRules(fetchLayer, leakCheck)

describe("FetchRouterHttpClient: the platform's Fetch and RequestInit tags", () => {
  for (const [name, mode] of [modes[0]!, modes[3]!]) {
    it.live(`${name}: a Fetch provided to the layer sends, one provided around a call wins; RequestInit is added`, () =>
      Effect.scoped(Effect.gen(function*() {
        const server = yield* serve((req, res) => res.end(String(req.headers["x-init"] ?? "-")))
        const seen: Array<string> = []
        const recording = (tag: string): typeof globalThis.fetch => (input, init) => {
          seen.push(tag)
          return globalThis.fetch(input, init)
        }
        const layer = FetchRouterHttpClient.layer.pipe(
          Layer.provide(Layer.succeed(FetchHttpClient.Fetch, recording("layer"))),
          Layer.provide(Layer.succeed(FetchHttpClient.RequestInit, { headers: { "x-init": "from-init" } }))
        )
        const bodies = yield* withClient(mode, (client) =>
          Effect.all([
            Effect.flatMap(client.get(`${server.url}/a`), (r) => r.text),
            Effect.flatMap(client.get(`${server.url}/b`), (r) => r.text).pipe(
              Effect.provideService(FetchHttpClient.Fetch, recording("call"))
            ),
            Effect.flatMap(client.get(`${server.url}/c`, { headers: { "x-init": "from-request" } }), (r) => r.text)
          ]), layer)
        expect(seen).toEqual(["layer", "call", "layer"])
        expect(bodies).toEqual(["from-init", "from-init", "from-request"])
      })))
  }
})

describe("FetchRouterHttpClient: the direct send's abort", () => {
  it.live("a Fetch in context gets a real AbortSignal, aborted (and the socket closed) on interruption", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serve(() => {}) // never answers
      const signals: Array<AbortSignal> = []
      const recording: typeof globalThis.fetch = (input, init) => {
        signals.push(init!.signal!)
        return globalThis.fetch(input, init)
      }
      const exit = yield* withClient(direct, (client) =>
        Effect.gen(function*() {
          const fiber = yield* Effect.fork(client.get(`${server.url}/hang`))
          yield* waitUntil("the request to arrive", () => server.requests.length === 1)
          const exit = yield* Fiber.interrupt(fiber)
          yield* waitUntil("the server to see the close", () => server.aborted() === 1)
          return exit
        }).pipe(Effect.provideService(FetchHttpClient.Fetch, recording)))
      expect(Exit.isInterrupted(exit)).toBe(true)
      expect(signals.length).toBe(1)
      expect(signals[0] instanceof AbortSignal).toBe(true)
      expect(signals[0]!.aborted).toBe(true)
    })))
})

prefetchRules(fetchLayer)

describe("FetchRouterHttpClient: the body as the router reads it (ByteSource)", () => {
  /** The direct send's response, its body taken as a ByteSource. */
  const open = (url: string) =>
    withClient(direct, (client) =>
      Effect.map(client.get(url), (response) => {
        if (!ByteSource.hasByteSource(response)) throw new Error("the response offers no ByteSource")
        return ByteSource.fromResponse(response)!
      }))
  const pullText = (source: ByteSource.ByteSource) => Effect.map(source.pull, (reads) => text(reads))
  const drain = (source: ByteSource.ByteSource) =>
    Effect.gen(function*() {
      let all = ""
      for (let i = 0; i < 100_000; i++) {
        const reads = yield* Effect.option(source.pull)
        if (Option.isNone(reads)) return all
        all += text(reads.value)
      }
      throw new Error("the body did not end")
    })

  it.live("pulls every read in order, then ends (a 5 MB body arrives whole, also through text)", () =>
    Effect.scoped(Effect.gen(function*() {
      const big = "0123456789abcdef".repeat(5 * 65_536)
      const server = yield* serve((_, res) => {
        res.writeHead(200, { "content-type": "text/plain" })
        res.end(big)
      })
      const source = yield* open(`${server.url}/big`)
      expect(yield* drain(source)).toBe(big)
      // At the end it stays ended.
      expect(yield* Effect.flip(source.pull)).toEqual(Option.none())
      const viaText = yield* withClient(
        direct,
        (client) => Effect.flatMap(client.get(`${server.url}/big`), (r) => r.text)
      )
      expect(viaText.length).toBe(big.length)
      expect(viaText === big).toBe(true)
    })))

  it.live("release after the end marker lets the rest arrive: the next request reuses the connection", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serve((_, res) => {
        res.writeHead(200, { "content-type": "text/event-stream" })
        res.write("data: [DONE]\n\n", () => setTimeout(() => res.end(": bye\n\n"), 20))
      })
      const source = yield* open(`${server.url}/sse`)
      expect(yield* pullText(source)).toBe("data: [DONE]\n\n")
      source.release()
      yield* waitUntil("the response to finish", () => server.requests.length === 1 && server.connections() === 1)
      yield* Effect.sleep("60 millis")
      const again = yield* open(`${server.url}/sse`)
      expect(yield* pullText(again)).toBe("data: [DONE]\n\n")
      again.release()
      yield* Effect.sleep("60 millis")
      expect([server.requests.length, server.connections(), server.aborted()]).toEqual([2, 1, 0])
    })))

  it.live("release of a body that keeps coming aborts it past releaseLimitBytes", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serve((_, res) => {
        res.writeHead(200, { "content-type": "text/event-stream" })
        const chunk = "x".repeat(16 * 1024)
        const timer = setInterval(() => res.write(chunk), 2)
        res.on("close", () => clearInterval(timer))
      })
      const source = yield* open(`${server.url}/flood`)
      yield* pullText(source)
      const released = Date.now()
      source.release()
      yield* waitUntil("the server to see the close", () => server.aborted() === 1)
      // Well before the time limit: the byte limit ended it.
      expect(Date.now() - released).toBeLessThan(ByteSource.releaseMaxMillis - 200)
    })))

  it.live("release of a body that trickles on aborts it after releaseMaxMillis", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serve(endless)
      const source = yield* open(`${server.url}/trickle`)
      yield* pullText(source)
      const released = Date.now()
      source.release()
      yield* Effect.sleep(`${ByteSource.releaseMaxMillis - 300} millis`)
      expect(server.aborted()).toBe(0)
      yield* waitUntil("the server to see the close", () => server.aborted() === 1)
      expect(Date.now() - released).toBeGreaterThanOrEqual(ByteSource.releaseMaxMillis - 50)
    })))

  it.live("close before the end cancels the body: the server sees the socket close; close after the end does not", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serve(endless)
      const source = yield* open(`${server.url}/endless`)
      yield* pullText(source)
      source.close()
      yield* waitUntil("the server to see the close", () => server.aborted() === 1)
      const small = yield* serve((_, res) => res.end("done"))
      const finished = yield* open(`${small.url}/small`)
      expect(yield* drain(finished)).toBe("done")
      finished.close()
      yield* Effect.sleep("30 millis")
      expect([small.aborted(), small.closed()]).toEqual([0, 0])
    })))

  it.live("a body cut mid-way: the reads that arrived, then ResponseError \"Decode\"; a body read once already fails", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serve((_, res) => {
        res.writeHead(200, { "content-type": "text/plain", "content-length": "100" })
        res.write("0123456789", () => setTimeout(() => res.socket?.destroy(), 20))
      })
      const source = yield* open(`${server.url}/cut`)
      expect(yield* pullText(source)).toBe("0123456789")
      const error = yield* Effect.flip(source.pull)
      expect(Option.map(error, (e) => [e._tag, e.reason])).toEqual(Option.some(["ResponseError", "Decode"]))
      // Twice: the stream is being read, so its reader cannot be taken again.
      const taken = yield* withClient(
        direct,
        (client) =>
          Effect.flatMap(client.get(`${server.url}/cut`), (response) => {
            const first = ByteSource.fromResponse(response)!
            const second = ByteSource.fromResponse(response)!
            first.close()
            return Effect.flip(second.pull)
          })
      )
      expect(Option.map(taken, (e) => e.reason)).toEqual(Option.some("Decode"))
    })))

  it.live("a response without a body: the source ends at once, `stream` fails with \"EmptyBody\"", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serve((_, res) => {
        res.writeHead(204)
        res.end()
      })
      const source = yield* open(`${server.url}/none`)
      expect(yield* Effect.flip(source.pull)).toEqual(Option.none())
      const error = yield* withClient(
        direct,
        (client) =>
          Effect.flatMap(client.get(`${server.url}/none`), (response) => Effect.flip(Stream.runDrain(response.stream)))
      )
      expect([error._tag, error.reason]).toEqual(["ResponseError", "EmptyBody"])
    })))
})
