/**
 * The round trips every client layer of ours must get right, in the four ways the router sends (test/support/loopbackHttp.ts
 * `modes`): run by test/NodeRouterHttpClient.test.ts and test/FetchRouterHttpClient.test.ts.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as V8 from "node:v8"
import * as Vm from "node:vm"
import * as ByteSource from "../../src/internal/byteSource.js"
import { closedPort, decoder, direct, endless, holdAfter, modes, serve, text, waitUntil } from "./loopbackHttp.js"
import type { Client, TestServer } from "./loopbackHttp.js"

/** A client layer, and where it differs. */
export interface LayerUnderTest {
  readonly name: string
  readonly layer: Layer.Layer<HttpClient.HttpClient>
  /**
   * Three sequential calls that must share one connection: on `layer` (a layer with one connection per origin, say),
   * each after `delay` (a pool that opens another connection for a request sent the moment a response ends needs one).
   */
  readonly reuse: {
    readonly layer: Layer.Layer<HttpClient.HttpClient>
    readonly delay: Duration.DurationInput | undefined
  }
  /** A refused connection: what its cause is, in words, and where its `code` is. */
  readonly refused: { readonly cause: string; readonly code: (cause: unknown) => unknown }
}

/**
 * Runs `f` with a layer's client (`under.layer`, or the `layer` given) in the given mode.
 */
export const clientOf = (under: { readonly layer: Layer.Layer<HttpClient.HttpClient> }) =>
<A, E>(
  mode: (client: HttpClient.HttpClient) => Client,
  f: (client: Client) => Effect.Effect<A, E, Scope.Scope>,
  layer: Layer.Layer<HttpClient.HttpClient> = under.layer
): Effect.Effect<A, E, Scope.Scope> =>
  Effect.provide(Effect.flatMap(HttpClient.HttpClient, (client) => f(mode(client))), layer)

/**
 * Interrupts `fiber` once `arrived` has run, the server having seen no abort yet; waits until it sees the connection
 * close. The fiber's exit.
 */
const interruptUntilClosed = <A, E>(
  server: TestServer,
  fiber: Fiber.RuntimeFiber<A, E>,
  arrived: Effect.Effect<void>
) =>
  Effect.gen(function*() {
    yield* arrived
    expect(server.aborted()).toBe(0)
    const exit = yield* Fiber.interrupt(fiber)
    yield* waitUntil("the server to see the close", () => server.aborted() === 1)
    return exit
  })

/** Registers the round trips (call at the top level of a test file). */
export const roundTripRules = (under: LayerUnderTest): void => {
  const withClient = clientOf(under)

  for (const [name, mode] of modes) {
    describe(`${under.name} (${name})`, () => {
      it.live("GET: url params, request headers, status, response headers, cookies and JSON body", () =>
        Effect.scoped(Effect.gen(function*() {
          const server = yield* serve((req, res) => {
            res.writeHead(201, { "content-type": "application/json", "x-reply": "yes", "set-cookie": "session=abc" })
            res.end(JSON.stringify({ saw: req.url, header: req.headers["x-test"] }))
          })
          const response = yield* withClient(mode, (client) =>
            Effect.flatMap(
              client.get(`${server.url}/echo?x=1`, { headers: { "x-test": "t1" }, urlParams: { y: "2" } }),
              (response) => Effect.map(response.json, (json) => ({ response, json }))
            ))
          expect(response.response.status).toBe(201)
          expect(response.response.headers["x-reply"]).toBe("yes")
          expect(response.response.cookies.cookies["session"]?.value).toBe("abc")
          expect(response.json).toEqual({ saw: "/echo?x=1&y=2", header: "t1" })
          expect(server.requests.map((r) => r.method)).toEqual(["GET"])
        })))

      it.live("POST: text, bytes and stream bodies arrive exactly, with their content type and length", () =>
        Effect.scoped(Effect.gen(function*() {
          const server = yield* serve((req, res) => {
            res.writeHead(200, { "content-type": "text/plain; charset=utf-8" })
            res.end(
              `${req.headers["content-type"]}|${req.headers["content-length"] ?? "-"}|${
                req.headers["transfer-encoding"] ?? "-"
              }`
            )
          })
          const results = yield* withClient(mode, (client) =>
            Effect.forEach([
              HttpClientRequest.post(`${server.url}/text`).pipe(HttpClientRequest.bodyText("héllo ✓", "text/plain")),
              HttpClientRequest.post(`${server.url}/bytes`).pipe(
                HttpClientRequest.bodyUint8Array(new Uint8Array([0, 1, 2, 255]), "application/octet-stream")
              ),
              HttpClientRequest.post(`${server.url}/stream`).pipe(
                HttpClientRequest.bodyStream(
                  Stream.make(new TextEncoder().encode("ab"), new TextEncoder().encode("cd")),
                  { contentType: "text/x-parts" }
                )
              )
            ], (request) => Effect.flatMap(client.execute(request), (response) => response.text)))
          expect(results).toEqual([
            "text/plain|10|-",
            "application/octet-stream|4|-",
            "text/x-parts|-|chunked"
          ])
          expect(server.requests[0]!.body).toBe("héllo ✓")
          expect([...server.requests[1]!.bytes]).toEqual([0, 1, 2, 255])
          expect(server.requests[2]!.body).toBe("abcd")
        })))

      it.live("text and json: a body with a content-length and a chunked one, multi-byte UTF-8 exact, BOM dropped", () =>
        Effect.scoped(Effect.gen(function*() {
          const payload = "\uFEFF{\"text\":\"héllo ✓ 😀\"}"
          const server = yield* serve((req, res) => {
            if (req.url === "/length") {
              res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(payload) })
              res.end(payload)
            } else {
              res.writeHead(200, { "content-type": "application/json" })
              const bytes = Buffer.from(payload)
              // Split inside the emoji, so the decoder has to join the reads.
              res.write(
                bytes.subarray(0, bytes.length - 4),
                () => setTimeout(() => res.end(bytes.subarray(bytes.length - 4)), 10)
              )
            }
          })
          const results = yield* withClient(
            mode,
            (client) =>
              Effect.forEach(["/length", "/chunked"], (path) =>
                Effect.flatMap(
                  client.get(`${server.url}${path}`),
                  (response) => Effect.all([response.text, response.json])
                ))
          )
          expect(results).toEqual([
            ["{\"text\":\"héllo ✓ 😀\"}", { text: "héllo ✓ 😀" }],
            ["{\"text\":\"héllo ✓ 😀\"}", { text: "héllo ✓ 😀" }]
          ])
          expect(server.requests.map((r) => r.url)).toEqual(["/length", "/chunked"])
        })))

      it.live("a body read to its end is not aborted: the connection is reused, and text can be read twice", () =>
        Effect.scoped(Effect.gen(function*() {
          const server = yield* serve((_, res) => res.end("{\"n\":1}"))
          // Sequential calls that would all use one connection (see `reuse`), so a needless abort would show as a second
          // connection.
          const reads = yield* withClient(
            mode,
            (client) =>
              Effect.forEach([1, 2, 3], (i) =>
                Effect.scoped(Effect.flatMap(
                  i === 1 || under.reuse.delay === undefined
                    ? client.get(`${server.url}/small`)
                    : Effect.delay(client.get(`${server.url}/small`), under.reuse.delay),
                  (response) =>
                    Effect.all([response.text, response.text, response.json, response.arrayBuffer.pipe(Effect.either)])
                ))),
            under.reuse.layer
          )
          expect(reads.map(([a, b, json]) => [a, b, json])).toEqual([
            ["{\"n\":1}", "{\"n\":1}", { n: 1 }],
            ["{\"n\":1}", "{\"n\":1}", { n: 1 }],
            ["{\"n\":1}", "{\"n\":1}", { n: 1 }]
          ])
          // Once read as text, the bytes are the text's bytes.
          expect(reads.map(([, , , bytes]) => Either.map(bytes, (b) => decoder.decode(b)))).toEqual([
            Either.right("{\"n\":1}"),
            Either.right("{\"n\":1}"),
            Either.right("{\"n\":1}")
          ])
          expect([server.connections(), server.closed(), server.aborted()]).toEqual([1, 0, 0])
        })))

      it.live("interrupting before the headers arrive closes the socket", () =>
        Effect.scoped(Effect.gen(function*() {
          const server = yield* serve(() => {}) // never answers
          const exit = yield* withClient(mode, (client) =>
            Effect.gen(function*() {
              const fiber = yield* Effect.fork(Effect.scoped(client.get(`${server.url}/hang`)))
              return yield* interruptUntilClosed(
                server,
                fiber,
                waitUntil("the request to arrive", () => server.requests.length === 1)
              )
            }))
          expect(Exit.isInterrupted(exit)).toBe(true)
        })))

      it.live("Stream.take(3) on an endless body closes the socket as soon as the third read is taken", () =>
        Effect.scoped(Effect.gen(function*() {
          const server = yield* serve(endless)
          const taken = yield* withClient(mode, (client) =>
            Effect.gen(function*() {
              const taken = yield* Effect.scoped(Effect.flatMap(
                client.get(`${server.url}/endless`),
                (response) => Stream.runCollect(Stream.take(response.stream, 3))
              ))
              yield* waitUntil("the server to see the close", () => server.aborted() === 1)
              return taken
            }))
          expect(Chunk.size(taken)).toBe(3)
          // Three network reads: the first starts the sequence, and together they are a prefix of it.
          const got = text(taken)
          expect(got.startsWith("chunk-0\n")).toBe(true)
          const expected = Array.from({ length: 1000 }, (_, i) => `chunk-${i}\n`).join("")
          expect(expected.startsWith(got)).toBe(true)
        })))

      it.live("interrupting a stream while it waits for the next read closes the socket", () =>
        Effect.scoped(Effect.gen(function*() {
          const server = yield* serve(holdAfter("first"))
          const exit = yield* withClient(mode, (client) =>
            Effect.gen(function*() {
              const response = yield* client.get(`${server.url}/held`)
              const fiber = yield* Effect.fork(Stream.runCollect(response.stream))
              yield* Effect.sleep("50 millis")
              const exit = yield* Fiber.interrupt(fiber)
              yield* waitUntil("the server to see the close", () => server.aborted() === 1)
              return exit
            }))
          expect(Exit.isInterrupted(exit)).toBe(true)
        })))

      it.live("interrupting a text read aborts the request", () =>
        Effect.scoped(Effect.gen(function*() {
          const server = yield* serve(holdAfter("partial"))
          const exit = yield* withClient(mode, (client) =>
            Effect.gen(function*() {
              const response = yield* client.get(`${server.url}/held`)
              expect(response.status).toBe(200)
              const fiber = yield* Effect.fork(response.text)
              return yield* interruptUntilClosed(server, fiber, Effect.sleep("50 millis"))
            }))
          expect(Exit.isInterrupted(exit)).toBe(true)
        })))

      it.live(`connection refused: RequestError "Transport" whose cause ${under.refused.cause}`, () =>
        Effect.scoped(Effect.gen(function*() {
          const port = yield* closedPort
          const error = yield* withClient(mode, (client) => Effect.flip(client.get(`http://127.0.0.1:${port}/x`)))
          expect(error._tag).toBe("RequestError")
          expect(error.reason).toBe("Transport")
          expect(under.refused.code(error.cause)).toBe("ECONNREFUSED")
        })))

      it.live("a body cut mid-way: text fails with ResponseError \"Decode\"; a stream delivers the bytes, then fails", () =>
        Effect.scoped(Effect.gen(function*() {
          const server = yield* serve((_, res) => {
            res.writeHead(200, { "content-type": "text/plain", "content-length": "100" })
            res.write("0123456789", () => setTimeout(() => res.socket?.destroy(), 20))
          })
          const [textError, streamed] = yield* withClient(mode, (client) =>
            Effect.all([
              Effect.flatMap(client.get(`${server.url}/cut`), (response) => Effect.flip(response.text)),
              Effect.flatMap(
                client.get(`${server.url}/cut`),
                (response) => Stream.runCollect(Stream.either(response.stream))
              )
            ]))
          expect([textError._tag, textError.reason]).toEqual(["ResponseError", "Decode"])
          const items = Chunk.toReadonlyArray(streamed)
          const last = items[items.length - 1]!
          expect(Either.isLeft(last) && [last.left._tag, last.left.reason]).toEqual(["ResponseError", "Decode"])
          expect(text(items.slice(0, -1).map((item) => Either.getOrThrow(item)))).toBe("0123456789")
        })))

      it.live("an invalid URL is RequestError \"InvalidUrl\" and sends nothing", () =>
        Effect.scoped(Effect.gen(function*() {
          const error = yield* withClient(mode, (client) => Effect.flip(client.get("/relative/only")))
          expect([error._tag, error.reason]).toEqual(["RequestError", "InvalidUrl"])
        })))
    })
  }
}

/**
 * Registers the scope, tracing and leak rules: `leakCheck(mode)` is the layer's own test of 1,000 sequential calls
 * leaving nothing behind (what it can count differs by layer).
 */
export const scopeRules = (
  under: LayerUnderTest,
  leakCheck: (mode: (client: HttpClient.HttpClient) => Client) => Effect.Effect<void, unknown>
): void => {
  const withClient = clientOf(under)

  describe(`${under.name}: scopes, tracing and leaks`, () => {
    const scopedModes: ReadonlyArray<readonly [string, (client: HttpClient.HttpClient) => Client]> = [
      ["untraced", (client) => HttpClient.withScope(HttpClient.withTracerDisabledWhen(client, () => true))],
      ["traced", (client) => HttpClient.withScope(client)]
    ]

    for (const [name, scoped] of scopedModes) {
      it.live(`withScope (${name}): closing the scope of an unread response closes its socket at once`, () =>
        Effect.scoped(Effect.gen(function*() {
          const server = yield* serve(endless)
          yield* withClient(scoped, (client) =>
            Effect.gen(function*() {
              const scope = yield* Scope.make()
              const response = yield* Scope.extend(client.get(`${server.url}/endless`), scope)
              expect(response.status).toBe(200)
              yield* Effect.sleep("30 millis")
              expect(server.aborted()).toBe(0)
              yield* Scope.close(scope, Exit.void)
              yield* waitUntil("the server to see the close", () => server.aborted() === 1)
            }))
        })))

      it.live(`withScope (${name}): closing the scope of a request still waiting for its headers aborts it`, () =>
        Effect.scoped(Effect.gen(function*() {
          const server = yield* serve(() => {}) // never answers
          const exit = yield* withClient(scoped, (client) =>
            Effect.gen(function*() {
              const scope = yield* Scope.make()
              const fiber = yield* Effect.fork(Scope.extend(client.get(`${server.url}/hang`), scope))
              yield* waitUntil("the request to arrive", () => server.requests.length === 1)
              yield* Effect.sleep("20 millis")
              expect(server.aborted()).toBe(0)
              // The scope closes; the request's fiber is not interrupted: the abort alone ends the request.
              yield* Scope.close(scope, Exit.void)
              yield* waitUntil("the server to see the close", () => server.aborted() === 1)
              return yield* Fiber.await(fiber)
            }))
          expect(Exit.isInterrupted(exit)).toBe(false)
          expect(Exit.isFailure(exit) && Cause.failureOption(exit.cause).pipe(Option.map((e) => e._tag))).toEqual(
            Option.some("RequestError")
          )
        })))
    }

    for (const [name, untraced] of [modes[0]!, modes[1]!]) {
      it.live(`${name}: a response that is dropped unread is aborted once it is garbage-collected`, () =>
        Effect.scoped(Effect.gen(function*() {
          V8.setFlagsFromString("--expose-gc")
          const gc = Vm.runInNewContext("gc") as () => void
          const server = yield* serve(endless)
          yield* withClient(untraced, (client) =>
            Effect.gen(function*() {
              yield* Effect.asVoid(client.get(`${server.url}/endless`))
              yield* Effect.sleep("30 millis")
              expect(server.aborted()).toBe(0)
              yield* waitUntil("the server to see the close", () => {
                gc()
                return server.aborted() === 1
              }, 10_000)
            }))
        })))

      it.live(`${name}: 1,000 sequential calls leave no socket, connection, request or listener behind`, () =>
        leakCheck(untraced))
    }

    it.live("traced calls carry a traceparent header; untraced calls do not", () =>
      Effect.scoped(Effect.gen(function*() {
        const server = yield* serve((_, res) => res.end("ok"))
        yield* withClient(
          (client) => client,
          (client) => Effect.withSpan(Effect.flatMap(client.get(`${server.url}/traced`), (r) => r.text), "parent")
        )
        yield* withClient(modes[1]![1], (client) =>
          Effect.withSpan(
            Effect.flatMap(client.get(`${server.url}/untraced`), (r) => r.text),
            "parent"
          ))
        yield* withClient(direct, (client) =>
          Effect.withSpan(
            Effect.flatMap(client.get(`${server.url}/direct`), (r) => r.text),
            "parent"
          ))
        expect(server.requests.map((r) => [r.url, typeof r.headers["traceparent"]])).toEqual([
          ["/traced", "string"],
          ["/untraced", "undefined"],
          ["/direct", "undefined"]
        ])
      })))
  })
}

/**
 * The layers that read a JSON body of known length before handing its response over (the router reads it whole
 * anyway): the body is whole and read once, an interruption while it arrives aborts the request, a cut body is the
 * read's "Decode" failure, not the request's.
 */
export const prefetchRules = (under: LayerUnderTest): void => {
  const withClient = clientOf(under)

  describe(`${under.name}: a JSON body of known length, read before the router gets its response`, () => {
    it.live("text, json and the ByteSource give the whole body; the connection is reused", () =>
      Effect.scoped(Effect.gen(function*() {
        const payload = JSON.stringify({ text: "héllo ✓", n: [1, 2, 3] })
        const server = yield* serve((_, res) => {
          res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(payload) })
          // In two writes, the second after the headers have gone.
          res.write(payload.slice(0, 5), () => setTimeout(() => res.end(payload.slice(5)), 10))
        })
        const [text, json, viaSource, again] = yield* withClient(direct, (client) =>
          Effect.gen(function*() {
            const response = yield* client.get(`${server.url}/json`)
            const text = yield* response.text
            const json = yield* response.json
            const source = ByteSource.fromResponse(response)!
            const reads = yield* Effect.option(source.pull)
            const after = yield* Effect.flip(source.pull)
            expect(after).toEqual(Option.none())
            const again = yield* Effect.delay(
              Effect.flatMap(client.get(`${server.url}/json`), (r) => r.text),
              "30 millis"
            )
            return [text, json, Option.map(reads, (r) => decoder.decode(Chunk.toReadonlyArray(r)[0]!)), again]
          }))
        expect([text, json, viaSource, again]).toEqual([payload, JSON.parse(payload), Option.some(payload), payload])
        expect([server.connections(), server.aborted()]).toEqual([1, 0])
      })))

    it.live("interrupted while the body is still arriving: the request is aborted (the server sees the close)", () =>
      Effect.scoped(Effect.gen(function*() {
        const server = yield* serve((_, res) => {
          res.writeHead(200, { "content-type": "application/json", "content-length": "100" })
          res.write("{\"partial\":")
        })
        const exit = yield* withClient(direct, (client) =>
          Effect.gen(function*() {
            const fiber = yield* Effect.fork(client.get(`${server.url}/held`))
            return yield* interruptUntilClosed(server, fiber, Effect.sleep("50 millis"))
          }))
        expect(Exit.isInterrupted(exit)).toBe(true)
      })))

    it.live("a body cut mid-way: the response arrives, its text fails with ResponseError \"Decode\"", () =>
      Effect.scoped(Effect.gen(function*() {
        const server = yield* serve((_, res) => {
          res.writeHead(200, { "content-type": "application/json", "content-length": "100" })
          res.write("{\"cut\":", () => setTimeout(() => res.socket?.destroy(), 20))
        })
        const error = yield* withClient(
          direct,
          (client) => Effect.flatMap(client.get(`${server.url}/cut`), (response) => Effect.flip(response.text))
        )
        expect([error._tag, error.reason]).toEqual(["ResponseError", "Decode"])
      })))
  })
}
