/**
 * The node:http client layer (`RouterHttpClient.layerNodeHttp`) over a real loopback socket: the round trips and the
 * scope, tracing and leak rules every client layer of ours passes (test/support/clientLayerRules.ts), a resend on a
 * kept-alive connection the server closed, connection pools released with the layer and never holding the process
 * open; and which client `RouterHttpClient.layer` picks. Each test starts its own node:http server on 127.0.0.1:0 and
 * closes it when its scope ends.
 */
import * as HttpBody from "@effect/platform/HttpBody"
import * as HttpClient from "@effect/platform/HttpClient"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import type * as Http from "node:http"
import * as Https from "node:https"
import type * as Net from "node:net"
import type * as Tls from "node:tls"
import * as Url from "node:url"
import * as internal from "../src/internal/nodeHttpClient.js"
import * as RouterHttpClient from "../src/RouterHttpClient.js"
import { prefetchRules, roundTripRules, scopeRules } from "./support/clientLayerRules.js"
import type { LayerUnderTest } from "./support/clientLayerRules.js"
import { direct, modes, serve, waitUntil } from "./support/loopbackHttp.js"
import type { Client } from "./support/loopbackHttp.js"

const nodeHttp = Layer.orDie(RouterHttpClient.layerNodeHttp)

const nodeLayer: LayerUnderTest = {
  name: "RouterHttpClient.layerNodeHttp",
  layer: nodeHttp,
  // The pool gets a connection back a moment after its response ends (Node emits the end on the next tick).
  reuse: { layer: nodeHttp, delay: "30 millis" },
  refused: { cause: "carries ECONNREFUSED", code: (cause) => (cause as { readonly code?: unknown }).code }
}
roundTripRules(nodeLayer)

/** The client on pools of its own (idle connections closed after `idle` ms), which the test can inspect. */
const withPoolsIdle = (idle: number = internal.idleMillis) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const modules = internal.modules()
      if (modules === undefined) throw new Error("this Node does not hand over node:http")
      const agents = internal.makeAgents(modules, idle)
      return { agents, client: internal.make(modules, agents) }
    }),
    ({ agents }) => Effect.sync(() => internal.destroyAgents(agents))
  )
const withPools = withPoolsIdle()

const count = (sockets: NodeJS.ReadOnlyDict<ReadonlyArray<unknown>>) =>
  Object.values(sockets).reduce((n, list) => n + (list?.length ?? 0), 0)

/**
 * 1,000 sequential calls (every tenth response dropped unread) leave no socket, connection or request behind. The
 * answers are JSON, as an LLM API's are: the router's own send reads such a body before handing it over, so a dropped
 * one frees its connection at once (another body, dropped, holds its connection until it is collected: see the rules).
 */
const leakCheck = (mode: (client: HttpClient.HttpClient) => Client) =>
  Effect.scoped(Effect.gen(function*() {
    const server = yield* serve((_, res) => {
      res.setHeader("content-type", "application/json")
      res.end("{\"ok\":true}")
    })
    const { agents, client: raw } = yield* withPools
    const client = mode(raw)
    const sockets = () => process.getActiveResourcesInfo().filter((r) => r === "TCPSocketWrap").length
    let unread = 0
    const call = Effect.flatMap(client.get(`${server.url}/ok`), (r) =>
      // Every tenth response is dropped unread: a small body that has fully arrived must not hold its connection.
      ++unread % 10 === 0 ? Effect.succeed({ ok: true }) : r.json)
    yield* Effect.replicateEffect(call, 10)
    // Give the last response's end a turn to return its socket to the pool.
    yield* Effect.sleep("5 millis")
    const before = { sockets: sockets(), connections: server.connections(), free: count(agents.http.freeSockets) }
    expect(count(agents.http.sockets)).toBe(0)
    const results = yield* Effect.replicateEffect(call, 1_000)
    yield* Effect.sleep("5 millis")
    expect(results.every((r) => (r as { ok: boolean }).ok === true)).toBe(true)
    expect(server.requests.length).toBe(1_010)
    expect([server.connections(), server.closed(), server.aborted()]).toEqual([before.connections, 0, 0])
    expect(sockets()).toBe(before.sockets)
    expect([count(agents.http.sockets), count(agents.http.freeSockets)]).toEqual([0, before.free])
  }))

scopeRules(nodeLayer, leakCheck)
prefetchRules(nodeLayer)

/** Answers the first request on each connection; destroys the connection on the second, without an answer. */
const resetSecond = () => {
  const seen = new WeakMap<object, number>()
  return (req: Http.IncomingMessage, res: Http.ServerResponse) => {
    const n = (seen.get(req.socket) ?? 0) + 1
    seen.set(req.socket, n)
    if (n === 2) req.socket.destroy()
    else res.end("{\"ok\":true}")
  }
}

describe("RouterHttpClient.layerNodeHttp: a kept-alive connection the server closed", () => {
  for (const [name, mode] of modes) {
    it.live(`${name}: a GET is sent once more on a new connection and succeeds`, () =>
      Effect.scoped(Effect.gen(function*() {
        const server = yield* serve(resetSecond())
        const { client } = yield* withPools
        const get = Effect.flatMap(mode(client).get(`${server.url}/x`), (r) => r.json)
        expect(yield* get).toEqual({ ok: true })
        yield* Effect.sleep("5 millis")
        expect(yield* get).toEqual({ ok: true })
        // The second request reached the first connection (which the server then destroyed), then a new one.
        expect([server.requests.length, server.connections()]).toEqual([3, 2])
      })))

    it.live(`${name}: a POST is not sent again: RequestError "Transport" carrying ECONNRESET`, () =>
      Effect.scoped(Effect.gen(function*() {
        const server = yield* serve(resetSecond())
        const { client } = yield* withPools
        const post = Effect.flatMap(
          mode(client).post(`${server.url}/x`, { body: HttpBody.text("{\"q\":1}", "application/json") }),
          (r) => r.json
        )
        expect(yield* post).toEqual({ ok: true })
        yield* Effect.sleep("5 millis")
        const error = yield* Effect.flip(post)
        expect([error._tag, error.reason]).toEqual(["RequestError", "Transport"])
        expect((error.cause as { readonly code?: unknown }).code).toBe("ECONNRESET")
        expect([server.requests.length, server.connections()]).toEqual([2, 1])
      })))
  }
})

/**
 * Runs `RouterHttpClient.layerNodeHttp` in a process of its own (through tsx, on the sources) that GETs each URL in
 * turn and prints each body (or the error's tag, reason and cause's code), then ends without releasing the layer.
 */
const callsFromAnotherProcess = (urls: ReadonlyArray<string>, env: Record<string, string>) =>
  Effect.gen(function*() {
    const script = [
      `import * as HttpClient from "@effect/platform/HttpClient"`,
      `import { Effect, Layer } from "effect"`,
      `import * as RouterHttpClient from "./src/RouterHttpClient.ts"`,
      `const get = (url) => Effect.flatMap(HttpClient.HttpClient, (c) => Effect.flatMap(c.get(url), (r) => r.text))`,
      `const program = Effect.forEach(${
        JSON.stringify(urls)
      }, (url) => Effect.tap(get(url), (t) => Effect.sync(() => console.log(t))))`,
      `await Effect.runPromise(program.pipe(`,
      `  Effect.catchAll((e) => Effect.sync(() => console.log([e._tag, e.reason, e.cause?.code].join(" ")))),`,
      `  Effect.provide(Layer.orDie(RouterHttpClient.layerNodeHttp))))`
    ].join("\n")
    const child = ChildProcess.spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      cwd: process.cwd(),
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "inherit"]
    })
    yield* Effect.addFinalizer(() => Effect.sync(() => child.kill()))
    return yield* Effect.promise(() =>
      new Promise<{ lines: Array<string>; answered: number; exited: number }>((resolve) => {
        let out = ""
        let answered = 0
        child.stdout.on("data", (data: Buffer) => {
          out += data.toString()
          answered = Date.now()
        })
        child.on(
          "exit",
          () => resolve({ lines: out.split("\n").filter((l) => l !== ""), answered, exited: Date.now() })
        )
      })
    )
  })

describe("RouterHttpClient.layerNodeHttp: its pools", () => {
  it.live("releasing the layer closes its kept-alive connections", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serve((_, res) => res.end("{\"ok\":true}"))
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(nodeHttp, scope)
      const client = direct(context.unsafeMap.get(HttpClient.HttpClient.key) as HttpClient.HttpClient)
      expect(yield* Effect.flatMap(client.get(`${server.url}/ok`), (r) => r.json)).toEqual({ ok: true })
      yield* Effect.sleep("20 millis")
      expect([server.connections(), server.closed()]).toEqual([1, 0])
      yield* Scope.close(scope, Exit.void)
      yield* waitUntil("the server to see the connection close", () => server.closed() === 1)
    })))

  /** When the server sees its connection close, in ms after the response was read; `undefined` if not within 3 s. */
  const closedAfter = (server: { readonly closed: () => number }) =>
    Effect.promise(() =>
      new Promise<number | undefined>((resolve) => {
        const start = Date.now()
        const tick = () => {
          if (server.closed() > 0) resolve(Date.now() - start)
          else if (Date.now() - start > 3_000) resolve(undefined)
          else setTimeout(tick, 5)
        }
        tick()
      })
    )

  it.live(
    "an idle connection is closed after the pool's idle time, or a second before the server's hint",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const plain = yield* serve((_, res) => res.end("{}"))
        const hinted = yield* serve((_, res) => {
          res.setHeader("keep-alive", "timeout=2")
          res.end("{}")
        })
        // The hint (2 s, less the second's margin) is sooner than the pool's idle time (2.5 s here).
        const { client } = yield* withPoolsIdle(2_500)
        yield* Effect.flatMap(direct(client).get(`${hinted.url}/x`), (r) => r.text)
        const afterHint = yield* closedAfter(hinted)
        expect(afterHint).toBeGreaterThanOrEqual(900)
        expect(afterHint).toBeLessThan(1_800)
        // Without a hint: the pool's idle time.
        const { client: short } = yield* withPoolsIdle(300)
        yield* Effect.flatMap(direct(short).get(`${plain.url}/x`), (r) => r.text)
        const afterIdle = yield* closedAfter(plain)
        expect(afterIdle).toBeGreaterThanOrEqual(250)
        expect(afterIdle).toBeLessThan(1_000)
      })),
    10_000
  )

  it.live(
    "a connection in use is never cut by the idle time: a slow answer and a pause mid-body arrive whole",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const server = yield* serve((_, res) => {
          setTimeout(() => {
            res.writeHead(200, { "content-type": "text/plain" })
            res.write("first ", () => setTimeout(() => res.end("second"), 400))
          }, 400)
        })
        const { client } = yield* withPoolsIdle(100)
        for (const [, mode] of modes) {
          expect(yield* Effect.flatMap(mode(client).get(`${server.url}/slow`), (r) => r.text)).toBe("first second")
        }
        expect(server.aborted()).toBe(0)
      })),
    10_000
  )

  it.live("an idle kept-alive connection does not keep the process alive", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serve((_, res) => res.end("{\"ok\":true}"))
      // A process that makes one call and never releases the layer, while the server keeps the connection open (5 s).
      const child = yield* callsFromAnotherProcess([`${server.url}/ok`], {})
      expect(child.lines).toEqual(["{\"ok\":true}"])
      // Well before the server's keep-alive timeout (5 s) would have closed the connection.
      expect(child.exited - child.answered).toBeLessThan(2_500)
    })), 20_000)
})

describe("RouterHttpClient.layerNodeHttp: https", () => {
  /** A TLS server on 127.0.0.1:0 with the certificate in test/support/tls (self-signed, for 127.0.0.1; tests only). */
  const serveTls = Effect.acquireRelease(
    Effect.promise(() =>
      new Promise<{ server: Https.Server; url: string; connections: () => number }>((resolve) => {
        let connections = 0
        const server = Https.createServer({
          key: Fs.readFileSync(new URL("./support/tls/key.pem", import.meta.url)),
          cert: Fs.readFileSync(new URL("./support/tls/cert.pem", import.meta.url))
        }, (req, res) => {
          req.resume()
          req.on("end", () => {
            // JSON, as an LLM API answers: read whole before it is handed over, so its connection is free for the next.
            res.setHeader("content-type", "application/json")
            res.end(JSON.stringify({ path: req.url, tls: (req.socket as Tls.TLSSocket).encrypted }))
          })
        })
        server.on("secureConnection", () => connections++)
        server.listen(0, "127.0.0.1", () => {
          const port = (server.address() as Net.AddressInfo).port
          resolve({ server, url: `https://127.0.0.1:${port}`, connections: () => connections })
        })
      })
    ),
    ({ server }) =>
      Effect.promise(() =>
        new Promise<void>((resolve) => {
          server.closeAllConnections()
          server.close(() => resolve())
        })
      )
  )

  it.live(
    "two calls on one TLS connection, the certificate checked against 127.0.0.1",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const tls = yield* serveTls
        // The child trusts the test certificate (NODE_EXTRA_CA_CERTS), so the default verification applies.
        const child = yield* callsFromAnotherProcess([`${tls.url}/a`, `${tls.url}/b`], {
          NODE_EXTRA_CA_CERTS: Url.fileURLToPath(new URL("./support/tls/cert.pem", import.meta.url))
        })
        expect(child.lines).toEqual(["{\"path\":\"/a\",\"tls\":true}", "{\"path\":\"/b\",\"tls\":true}"])
        expect(tls.connections()).toBe(1)
      })),
    20_000
  )

  it.live(
    "a certificate nobody vouches for: RequestError \"Transport\" with Node's TLS error code",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const tls = yield* serveTls
        const child = yield* callsFromAnotherProcess([`${tls.url}/a`], {})
        expect(child.lines).toEqual(["RequestError Transport DEPTH_ZERO_SELF_SIGNED_CERT"])
      })),
    20_000
  )
})

describe("RouterHttpClient.layer: which client", () => {
  /** Who sent the request, by its headers: fetch adds `sec-fetch-mode`, node:http adds nothing. */
  const sender = (layer: Layer.Layer<HttpClient.HttpClient, unknown>) =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serve((_, res) => res.end("{\"ok\":true}"))
      yield* Effect.provide(
        Effect.flatMap(
          HttpClient.HttpClient,
          (client) => Effect.flatMap(client.get(`${server.url}/ok`), (r) => r.json)
        ),
        layer
      )
      return server.requests[0]!.headers["sec-fetch-mode"] === undefined ? "node:http" : "fetch"
    }))

  /** Runs `f` while the runtime does not hand over its modules (as before Node 20.16). */
  const withoutBuiltins = <A, E>(f: Effect.Effect<A, E>) =>
    Effect.acquireUseRelease(
      Effect.sync(() => {
        const original = process.getBuiltinModule
        ;(process as { getBuiltinModule?: unknown }).getBuiltinModule = undefined
        return original
      }),
      () => f,
      (original) => Effect.sync(() => ((process as { getBuiltinModule?: unknown }).getBuiltinModule = original))
    )

  it.live("on Node, node:http; the explicit fetch layer is fetch (the check tells them apart)", () =>
    Effect.gen(function*() {
      expect(yield* sender(RouterHttpClient.layer)).toBe("node:http")
      expect(yield* sender(nodeHttp)).toBe("node:http")
      const { FetchRouterHttpClient } = yield* Effect.promise(() => import("../src/index.js"))
      expect(yield* sender(FetchRouterHttpClient.layer)).toBe("fetch")
    }))

  it.live("without process.getBuiltinModule: fetch, and layerNodeHttp fails with a RouterConfigError", () =>
    withoutBuiltins(Effect.gen(function*() {
      expect(yield* sender(RouterHttpClient.layer)).toBe("fetch")
      const error = yield* Effect.flip(Layer.build(RouterHttpClient.layerNodeHttp).pipe(Effect.scoped))
      expect(error._tag).toBe("RouterConfigError")
      expect(error.option).toBe("RouterHttpClient.layerNodeHttp")
      expect(error.message).toContain("node:http")
    })))

  it("modules: only Node that hands them over", () => {
    const getBuiltinModule = (id: string) => process.getBuiltinModule(id)
    expect(internal.modules({ versions: { node: "20.20.0" }, getBuiltinModule })).toBeDefined()
    expect(internal.modules({ versions: { node: "20.15.0" } })).toBeUndefined()
    expect(internal.modules({ versions: { node: "22.0.0", bun: "1.2.0" }, getBuiltinModule })).toBeUndefined()
    expect(internal.modules({ versions: { node: "22.0.0", deno: "2.0.0" }, getBuiltinModule })).toBeUndefined()
    expect(internal.modules({})).toBeUndefined()
    expect(internal.modules({ versions: { node: "22.0.0" }, getBuiltinModule: () => undefined })).toBeUndefined()
    // Runtimes that hand over a `node:http` of their own.
    const node = { versions: { node: "22.0.0" }, getBuiltinModule }
    const global = globalThis as Record<string, unknown>
    for (const [name, value] of [["EdgeRuntime", "edge-runtime"], ["navigator", { userAgent: "Cloudflare-Workers" }]]) {
      const had = Object.getOwnPropertyDescriptor(globalThis, name as string)
      Object.defineProperty(globalThis, name as string, { value, configurable: true })
      try {
        expect(internal.modules(node)).toBeUndefined()
      } finally {
        if (had === undefined) delete global[name as string]
        else Object.defineProperty(globalThis, name as string, had)
      }
    }
    expect(internal.modules(node)).toBeDefined()
  })

  it.live("a URL that is not http: or https: is RequestError \"InvalidUrl\", in every mode", () =>
    Effect.scoped(Effect.gen(function*() {
      const { client } = yield* withPools
      for (const [, mode] of modes) {
        const error = yield* Effect.flip(mode(client).get("ftp://127.0.0.1/x"))
        expect([error._tag, error.reason]).toEqual(["RequestError", "InvalidUrl"])
      }
    })))
})
