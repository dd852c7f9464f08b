/**
 * A node:http server on 127.0.0.1:0 that records what it sees, and the four ways the router sends through a client
 * layer: what test/NodeRouterHttpClient.test.ts and test/FetchRouterHttpClient.test.ts share.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Http from "node:http"
import * as Net from "node:net"
import * as UntracedClient from "../../src/internal/untracedClient.js"

export interface Seen {
  readonly method: string
  readonly url: string
  readonly headers: Http.IncomingHttpHeaders
  readonly body: string
  readonly bytes: Buffer
}

export interface TestServer {
  readonly url: string
  readonly requests: Array<Seen>
  /** Connections accepted so far. */
  readonly connections: () => number
  /** Connections closed so far (by either side). */
  readonly closed: () => number
  /**
   * Responses whose connection closed before they were finished: the client gave up on them. (Counting sockets instead
   * would also count the spare connection undici opens and drops right after an abort.)
   */
  readonly aborted: () => number
}

export type Handler = (req: Http.IncomingMessage, res: Http.ServerResponse) => void

/** A server on 127.0.0.1:0 that records each request (with its body) before `handler` answers it. */
export const serve = (handler: Handler): Effect.Effect<TestServer, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() =>
      new Promise<{ server: Http.Server; info: TestServer }>((resolve) => {
        const requests: Array<Seen> = []
        let connections = 0
        let closed = 0
        let aborted = 0
        const server = Http.createServer((req, res) => {
          res.on("close", () => {
            if (!res.writableFinished) aborted++
          })
          const chunks: Array<Buffer> = []
          req.on("data", (chunk: Buffer) => chunks.push(chunk))
          req.on("end", () => {
            requests.push({
              method: req.method ?? "",
              url: req.url ?? "",
              headers: req.headers,
              body: Buffer.concat(chunks).toString("utf8"),
              bytes: Buffer.concat(chunks)
            })
            handler(req, res)
          })
        })
        server.on("connection", (socket) => {
          connections++
          socket.on("close", () => closed++)
        })
        server.listen(0, "127.0.0.1", () => {
          const port = (server.address() as Net.AddressInfo).port
          resolve({
            server,
            info: {
              url: `http://127.0.0.1:${port}`,
              requests,
              connections: () => connections,
              closed: () => closed,
              aborted: () => aborted
            }
          })
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
  ).pipe(Effect.map(({ info }) => info))

/** Polls `condition` every 5 ms; a defect naming `what` after `timeoutMs`. */
export const waitUntil = (what: string, condition: () => boolean, timeoutMs = 3_000) =>
  Effect.promise(() =>
    new Promise<void>((resolve, reject) => {
      const start = Date.now()
      const tick = () => {
        if (condition()) resolve()
        else if (Date.now() - start > timeoutMs) reject(new Error(`timed out waiting for ${what}`))
        else setTimeout(tick, 5)
      }
      tick()
    })
  )

/** A port that was just bound and released: nothing listens there. */
export const closedPort = Effect.promise(() =>
  new Promise<number>((resolve) => {
    const server = Net.createServer()
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as Net.AddressInfo).port
      server.close(() => resolve(port))
    })
  })
)

/** Answers every request with `chunk-0\n`, `chunk-1\n`, … every 5 ms, never ending; stops when the client goes. */
export const endless: Handler = (_, res) => {
  res.writeHead(200, { "content-type": "text/plain" })
  let i = 0
  const timer = setInterval(() => res.write(`chunk-${i++}\n`), 5)
  res.on("close", () => clearInterval(timer))
}

/** Sends the headers (announcing 100 bytes) and `partial`, then holds the response open. */
export const holdAfter = (partial: string): Handler => (_, res) => {
  res.writeHead(200, { "content-type": "text/plain", "content-length": "100" })
  res.write(partial)
}

export const decoder = new TextDecoder()
export const text = (chunks: Iterable<Uint8Array>) => [...chunks].map((c) => decoder.decode(c)).join("")

export type Client = HttpClient.HttpClient.With<HttpClientError.HttpClientError, Scope.Scope>

/** The client's own untraced send (what the router calls when no tracer is installed), as a client. */
export const direct = (client: HttpClient.HttpClient): Client => {
  const execute = UntracedClient.untracedExecute(client)
  if (execute === undefined) throw new Error("the client offers no untraced send")
  return HttpClient.makeWith(
    (request: Effect.Effect<HttpClientRequest.HttpClientRequest>) => Effect.flatMap(request, execute),
    Effect.succeed
  )
}

// The router sends untraced requests through the client's own untraced send ("direct"), and through `execute` when
// a tracer is installed or the caller wrapped the client; everything through `execute` goes through `HttpClient.make`.
// Every behaviour below holds in all four.
export const modes: ReadonlyArray<readonly [string, (client: HttpClient.HttpClient) => Client]> = [
  ["direct", direct],
  ["untraced", (client) => HttpClient.withTracerDisabledWhen(client, () => true)],
  ["untraced + withScope", (client) => HttpClient.withScope(HttpClient.withTracerDisabledWhen(client, () => true))],
  ["traced", (client) => client]
]
