/**
 * The `node:http` client of `RouterHttpClient` (see that module). It never imports a Node module: the runtime hands
 * over `node:http` and `node:https` (`process.getBuiltinModule`), so the main entry still loads in browsers and edge
 * runtimes, where the layer falls back to fetch.
 *
 * @internal
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import type * as Http from "node:http"
import type * as Https from "node:https"
import * as ReadableResponse from "./readableResponse.js"
import * as UntracedClient from "./untracedClient.js"
import * as UrlCache from "./urlCache.js"

/** @internal */
export interface Modules {
  readonly http: typeof Http
  readonly https: typeof Https
}

interface Runtime {
  readonly versions?: Record<string, string | undefined>
  readonly getBuiltinModule?: (id: string) => unknown
}

/** Runtimes with a Node compatibility layer, whose `node:http` is their own (often over their fetch). */
const otherRuntime = (): boolean => {
  const global = globalThis as { readonly Deno?: unknown; readonly EdgeRuntime?: unknown; readonly navigator?: unknown }
  return global.Deno !== undefined || global.EdgeRuntime !== undefined ||
    (global.navigator as { readonly userAgent?: unknown } | undefined)?.userAgent === "Cloudflare-Workers"
}

/**
 * `node:http` and `node:https` when the runtime is Node and can hand them over without an import (Node ≥ 20.16, 22.3);
 * `undefined` elsewhere (browsers, Deno, Bun, Cloudflare Workers, Vercel's edge runtime: they get fetch, their own fast
 * path).
 *
 * @internal
 */
export const modules = (
  runtime: Runtime | undefined = (globalThis as { readonly process?: Runtime }).process
): Modules | undefined => {
  const versions = runtime?.versions
  if (versions?.node === undefined || versions.bun !== undefined || versions.deno !== undefined) return undefined
  if (typeof runtime?.getBuiltinModule !== "function" || otherRuntime()) return undefined
  const http = runtime.getBuiltinModule("node:http") as typeof Http | undefined
  const https = runtime.getBuiltinModule("node:https") as typeof Https | undefined
  return typeof http?.request === "function" && typeof https?.request === "function" ? { http, https } : undefined
}

/**
 * The connection pools of one layer: keep-alive (a router sends to a handful of origins, again and again), no limit
 * on connections per origin (as fetch). Idle connections do not keep the process alive.
 *
 * An idle connection is closed after `idleMillis`, or a second before the server's own `Keep-Alive: timeout=…` when
 * that is sooner, as fetch (undici) does: a request sent on a connection the server is closing fails, and a POST is
 * not sent again. (The agent's `timeout` is what enables both; on a connection in use it only emits an event nobody
 * listens to, so a long answer is never cut.)
 *
 * @internal
 */
export interface Agents {
  readonly http: Http.Agent
  readonly https: Https.Agent
}

/** @internal */
export const makeAgents = (modules: Modules, idle: number = idleMillis): Agents => ({
  http: new modules.http.Agent({ keepAlive: true, timeout: idle }),
  https: new modules.https.Agent({ keepAlive: true, timeout: idle })
})

/**
 * How long an idle kept-alive connection stays open: undici's default, under the 5 s of Node's own servers.
 *
 * @internal
 */
export const idleMillis = 4_000

/** @internal */
export const destroyAgents = (agents: Agents): void => {
  agents.http.destroy()
  agents.https.destroy()
}

/** Where a request goes: the module's `request`, its pool, and the parts of the URL `node:http` takes. */
interface Target {
  readonly request: typeof Http.request
  readonly agent: Http.Agent
  readonly protocol: string
  readonly hostname: string
  readonly port: string
  readonly path: string
}

const makeTarget = (modules: Modules, agents: Agents, url: URL): Target | Error => {
  const secure = url.protocol === "https:"
  if (!secure && url.protocol !== "http:") return new Error(`unsupported protocol ${url.protocol}`)
  return {
    request: secure ? modules.https.request : modules.http.request,
    agent: secure ? agents.https : agents.http,
    protocol: url.protocol,
    // `node:http` takes an IPv6 address without its brackets.
    hostname: url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname,
    port: url.port,
    path: url.pathname + url.search
  }
}

const invalidUrl = (request: HttpClientRequest.HttpClientRequest, cause: unknown) =>
  new HttpClientError.RequestError({ request, reason: "InvalidUrl", cause })

const transportError = (request: HttpClientRequest.HttpClientRequest, cause: unknown) =>
  new HttpClientError.RequestError({ request, reason: "Transport", cause })

/**
 * The platform's abort (interruption, `HttpClient.withScope`'s scope closing, an unread response collected) destroys
 * the request until its response has arrived whole; a response read to its end is left alone, so its connection goes
 * back to the pool (as fetch does). Node's own `signal` option would destroy it until the request closes, a moment
 * after the end.
 */
const abortOn = (signal: AbortSignal, sent: Http.ClientRequest, complete: () => boolean): void => {
  const onAbort = () => {
    if (!complete()) sent.destroy()
  }
  signal.addEventListener("abort", onAbort, { once: true })
  sent.once("close", () => signal.removeEventListener("abort", onAbort))
}

/** The largest body read before its response is handed over (see {@link prefetchable}). */
const prefetchMaxBytes = 1024 * 1024

/**
 * Whether a response is read whole before it is handed over: a JSON body (a completion, an error) of a known length,
 * at most `prefetchMaxBytes`, which the router reads whole anyway. A stream's body (`text/event-stream`, no length)
 * never is.
 */
const prefetchable = (response: Http.IncomingMessage): boolean => {
  const length = response.headers["content-length"]
  if (length === undefined || !(Number(length) <= prefetchMaxBytes)) return false
  const type = response.headers["content-type"]
  return type !== undefined && type.includes("json")
}

const idempotent: ReadonlySet<string> = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE"])

const isReset = (cause: unknown): boolean => (cause as { readonly code?: unknown } | null)?.code === "ECONNRESET"

/**
 * Sends `request` and resumes with its response once the headers arrive.
 *
 * - `bytes`: the whole body (`undefined` for none), or `write` for a body streamed by the caller.
 * - An idempotent request (GET, HEAD, OPTIONS, PUT, DELETE) whose kept-alive connection turns out to have been closed
 *   by the server (`ECONNRESET` on a reused socket, before any response) is sent once more on a new connection, as
 *   Node's documentation advises and as fetch does. A POST is not: the server may have seen it, and sending it again
 *   is the router's decision (a `Transport` failure it may retry, visible in the trail). A streamed body never is.
 * - Interrupting before the headers arrive destroys the request (closing its socket).
 */
const dispatch = (
  request: HttpClientRequest.HttpClientRequest,
  target: Target,
  headers: Record<string, string>,
  signal: AbortSignal | undefined,
  collectable: boolean,
  bytes: Uint8Array | string | undefined,
  write?: (sent: Http.ClientRequest, fail: (error: HttpClientError.RequestError) => void) => void
): Effect.Effect<HttpClientResponse.HttpClientResponse, HttpClientError.RequestError> =>
  Effect.async((resume) => {
    let settled = false
    let current: Http.ClientRequest | undefined = undefined
    let arrived: Http.IncomingMessage | undefined = undefined
    const start = (mayResend: boolean): void => {
      let sent: Http.ClientRequest
      try {
        sent = target.request({
          protocol: target.protocol,
          hostname: target.hostname,
          port: target.port,
          path: target.path,
          method: request.method,
          headers,
          agent: target.agent
        })
      } catch (cause) {
        settled = true
        return resume(Effect.fail(transportError(request, cause)))
      }
      current = sent
      if (signal !== undefined) abortOn(signal, sent, () => arrived?.complete === true)
      sent.on("response", (response) => {
        if (settled) return
        settled = true
        arrived = response
        const respond = (prefetched: Buffer | undefined) =>
          resume(Effect.succeed(
            new ReadableResponse.ReadableResponse(
              request,
              response.statusCode!,
              response.headers,
              response,
              collectable,
              prefetched
            )
          ))
        if (!prefetchable(response)) return respond(undefined)
        // A JSON body of known length (a completion, an error): read before resuming. Its connection then goes back to
        // the pool even if the body is never read, and the router's read of it is synchronous.
        ReadableResponse.readAll(response).then(respond, () => respond(undefined))
      })
      // Stays attached after the response: a socket failure then reaches the body's reader (as an 'aborted' body) and
      // must not become an unhandled 'error' event here.
      sent.on("error", (cause) => {
        if (settled) return
        if (mayResend && sent.reusedSocket && isReset(cause)) return start(false)
        settled = true
        resume(Effect.fail(transportError(request, cause)))
      })
      if (write !== undefined) {
        return write(sent, (error) => {
          if (settled) return
          settled = true
          sent.destroy()
          resume(Effect.fail(error))
        })
      }
      try {
        sent.end(bytes)
      } catch (cause) {
        settled = true
        sent.destroy()
        resume(Effect.fail(new HttpClientError.RequestError({ request, reason: "Encode", cause })))
      }
    }
    if (signal?.aborted) return resume(Effect.fail(transportError(request, signal.reason)))
    start(write === undefined && idempotent.has(request.method))
    return Effect.sync(() => {
      settled = true
      current?.destroy()
    })
  })

/**
 * Writes a streamed body in its own fiber, waiting for the socket when it is full. A failing stream fails the request
 * ("Encode", destroying it); the request's end (response, failure, interruption) interrupts the writer.
 */
const writeStream =
  (request: HttpClientRequest.HttpClientRequest, stream: Stream.Stream<Uint8Array, unknown>) =>
  (sent: Http.ClientRequest, fail: (error: HttpClientError.RequestError) => void): void => {
    const program = Stream.runForEach(stream, (chunk) =>
      Effect.async<void>((resume) => {
        if (sent.write(chunk)) return resume(Effect.void)
        const onDrain = () => resume(Effect.void)
        sent.once("drain", onDrain)
        return Effect.sync(() => sent.off("drain", onDrain))
      })).pipe(
        Effect.matchEffect({
          onFailure: (cause) =>
            Effect.sync(() => fail(new HttpClientError.RequestError({ request, reason: "Encode", cause }))),
          onSuccess: () => Effect.sync(() => sent.end())
        })
      )
    const fiber = Effect.runFork(program)
    sent.once("close", () => fiber.unsafeInterruptAsFork(fiber.id()))
  }

const send = (
  request: HttpClientRequest.HttpClientRequest,
  target: Target,
  signal: AbortSignal | undefined,
  collectable: boolean
): Effect.Effect<HttpClientResponse.HttpClientResponse, HttpClientError.RequestError> => {
  const body = request.body
  switch (body._tag) {
    case "Empty":
      return dispatch(request, target, request.headers, signal, collectable, undefined)
    case "Uint8Array":
      return dispatch(request, target, request.headers, signal, collectable, body.body)
    case "Raw": {
      const raw = body.body
      return typeof raw === "string" || raw instanceof Uint8Array
        ? dispatch(request, target, request.headers, signal, collectable, raw)
        : Effect.fail(
          new HttpClientError.RequestError({
            request,
            reason: "Encode",
            cause: new TypeError("a raw body for node:http must be a string or a Uint8Array")
          })
        )
    }
    case "FormData":
      // `node:http` cannot encode form data; the WHATWG `Response` can (the multipart bytes and their boundary).
      return Effect.flatMap(
        Effect.tryPromise({
          try: async () => {
            const encoded = new Response(body.formData)
            return {
              type: encoded.headers.get("content-type") ?? "multipart/form-data",
              bytes: new Uint8Array(await encoded.arrayBuffer())
            }
          },
          catch: (cause) => new HttpClientError.RequestError({ request, reason: "Encode", cause })
        }),
        ({ bytes, type }) =>
          dispatch(
            request,
            target,
            {
              ...request.headers,
              "content-type": type,
              "content-length": String(bytes.length)
            },
            signal,
            collectable,
            bytes
          )
      )
    case "Stream":
      return dispatch(
        request,
        target,
        request.headers,
        signal,
        collectable,
        undefined,
        writeStream(request, body.stream)
      )
  }
}

/** @internal */
export const make = (modules: Modules, agents: Agents): HttpClient.HttpClient => {
  // Everything sent through `execute` goes through `HttpClient.make`: its spans, its abort on interruption (of the
  // request and of a body read: the signal destroys the request until its response ends), its clean-up of unread
  // responses, and `HttpClient.withScope`.
  const client = HttpClient.make((request, url, signal) => {
    const target = makeTarget(modules, agents, url)
    if (target instanceof Error) return Effect.fail(invalidUrl(request, target))
    return send(request, target, signal, false)
  })
  // The router's untraced requests come here directly (see internal/untracedClient.ts): no span, no `URL` per call, no
  // `AbortController`, and a response that offers its body as a `ByteSource`. A client wrapped by the caller's own
  // combinators is a new object without it, so their wrapping is never bypassed.
  const resolveTarget = UrlCache.make((url) => makeTarget(modules, agents, url))
  const direct: UntracedClient.Execute = (request) =>
    Effect.suspend(() => {
      const target = resolveTarget(request)
      if (target instanceof HttpClientError.RequestError) return Effect.fail(target)
      if (target instanceof Error) return Effect.fail(invalidUrl(request, target))
      return send(request, target, undefined, true)
    })
  return Object.assign(client, { [UntracedClient.TypeId]: direct })
}
