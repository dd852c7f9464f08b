/**
 * A real HTTP server on 127.0.0.1 that plays scripted LLM upstream behaviour
 * (OpenAI-compatible Chat Completions and GPTRouter), so code can be tested
 * against rate limits, outages, hangs, stalls and broken streams over a real
 * socket.
 *
 * Node-only. It uses `node:http` directly rather than `@effect/platform-node`
 * because importing the latter replaces the process-wide fetch dispatcher,
 * which would change the very client behaviour under test.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import * as Dispatch from "./internal/dispatch.js"
import type * as Render from "./internal/render.js"
import type * as UpstreamScript from "./UpstreamScript.js"

/**
 * Configuration of a simulated upstream.
 *
 * @since 0.1.0
 * @category models
 */
export interface SimulatedUpstreamOptions {
  /** Model name to steps; see `UpstreamScript`. */
  readonly script: UpstreamScript.Script
  /**
   * When set, OpenAI requests must carry `authorization: Bearer <apiKey>`,
   * GPTRouter requests `ws-secret: <apiKey>`, Anthropic requests
   * `x-api-key: <apiKey>` and Gemini requests `x-goog-api-key: <apiKey>`, or
   * they get the protocol's wrong-key answer (a 401; Gemini's is a 400
   * `API_KEY_INVALID`).
   */
  readonly apiKey?: string
  /** Server-wide wire options; a step's own `wire` overrides them. */
  readonly wire?: UpstreamScript.WireOptions
  /**
   * The server closes itself after this long, so a forgotten server cannot
   * keep a test process alive. Defaults to 5 minutes.
   */
  readonly maxLifetimeMs?: number
}

/**
 * A running simulated upstream.
 *
 * @since 0.1.0
 * @category models
 */
export interface SimulatedUpstream {
  /** `http://127.0.0.1:<port>` */
  readonly url: string
  /** `url + "/v1"`: base URL for OpenAI-compatible clients. */
  readonly openAiBaseUrl: string
  /** `url`: base URL for GPTRouter clients (they add `/api/v1/generate`). */
  readonly gptRouterBaseUrl: string
  /** `url`: base URL for Anthropic clients (they add `/v1/messages`). */
  readonly anthropicBaseUrl: string
  /** `url`: base URL for Gemini clients (they add `/v1beta/models/…`). */
  readonly geminiBaseUrl: string
  /** Every request that reached a protocol endpoint, in arrival order. */
  readonly requests: ReadonlyArray<UpstreamScript.RecordedRequest>
  /** How many script steps `model` has consumed. */
  readonly attempts: (model: string) => number
  /**
   * Responses whose connection the client closed before the response
   * finished (aborted fetches, cancelled bodies). Connections closed by the
   * script (`cut`) or by `close()` do not count.
   */
  readonly closedConnections: () => number
  /** Resolves once `closedConnections()` reaches `count`. Rejects after `timeoutMs` (default 5 s) or on close. */
  readonly waitForClosedConnections: (count: number, timeoutMs?: number) => Promise<void>
  /** Resolves at the next client-side close after this call. Rejects after `timeoutMs` (default 5 s) or on close. */
  readonly waitForClose: (timeoutMs?: number) => Promise<void>
  /** Resolves once `requests.length` reaches `count`. Rejects after `timeoutMs` (default 5 s) or on close. */
  readonly waitForRequests: (count: number, timeoutMs?: number) => Promise<void>
  /** Forgets recorded requests, attempt counters and closed connections; optionally swaps the script. */
  readonly reset: (script?: UpstreamScript.Script) => void
  /** Whether the server has been closed (explicitly or by `maxLifetimeMs`). */
  readonly isClosed: () => boolean
  /** Stops the server and drops every open connection. Idempotent. */
  readonly close: () => Promise<void>
}

const DEFAULT_MAX_LIFETIME_MS = 5 * 60 * 1000
const DEFAULT_WAIT_TIMEOUT_MS = 5_000
const MAX_BODY_BYTES = 16 * 1024 * 1024

const normalizeHeaders = (headers: Http.IncomingHttpHeaders): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) {
      out[name.toLowerCase()] = Array.isArray(value) ? value.join(", ") : value
    }
  }
  return out
}

const whenAborted = (signal: AbortSignal, f: () => void): () => void => {
  if (signal.aborted) {
    f()
    return () => {}
  }
  signal.addEventListener("abort", f, { once: true })
  return () => signal.removeEventListener("abort", f)
}

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    let timer: ReturnType<typeof setTimeout> | undefined = undefined
    const remove = whenAborted(signal, () => {
      if (timer !== undefined) {
        clearTimeout(timer)
      }
      resolve()
    })
    if (signal.aborted) {
      return
    }
    timer = setTimeout(() => {
      remove()
      resolve()
    }, ms)
    timer.unref()
  })

const writeBytes = (res: Http.ServerResponse, bytes: Uint8Array, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    // Waiting for the write callback keeps each piece a separate socket write,
    // which is what `splitEvery` is for.
    const remove = whenAborted(signal, resolve)
    res.write(bytes, () => {
      remove()
      resolve()
    })
  })

const hangUntilAborted = (
  res: Http.ServerResponse,
  signal: AbortSignal,
  keepAlive: Render.KeepAlive | null
): Promise<void> =>
  new Promise((resolve) => {
    let interval: ReturnType<typeof setInterval> | undefined = undefined
    whenAborted(signal, () => {
      if (interval !== undefined) {
        clearInterval(interval)
      }
      resolve()
    })
    if (signal.aborted || keepAlive === null) {
      return
    }
    interval = setInterval(() => {
      res.write(keepAlive.bytes)
    }, keepAlive.everyMs)
    interval.unref()
  })

const execute = async (
  plan: Render.WirePlan,
  res: Http.ServerResponse,
  signal: AbortSignal,
  markCut: () => void
): Promise<void> => {
  if (plan._tag === "HangBeforeHeaders") {
    return hangUntilAborted(res, signal, null)
  }
  if (plan.headersDelayMs > 0) {
    await sleep(plan.headersDelayMs, signal)
  }
  if (signal.aborted) {
    return
  }
  res.writeHead(plan.status, plan.headers)
  // Clients time "headers" separately from "first token", so the status line
  // must leave now rather than with the first body write.
  res.flushHeaders()
  for (const action of plan.actions) {
    if (signal.aborted) {
      return
    }
    switch (action._tag) {
      case "Write": {
        await writeBytes(res, action.bytes, signal)
        break
      }
      case "Wait": {
        await sleep(action.ms, signal)
        break
      }
      case "Cut": {
        markCut()
        const socket = res.socket
        if (socket !== null) {
          socket.resetAndDestroy()
        } else {
          res.destroy()
        }
        return
      }
      case "Hang": {
        return hangUntilAborted(res, signal, plan.keepAlive)
      }
      case "End": {
        res.end()
        return
      }
    }
  }
}

interface Waiter {
  readonly done: () => boolean
  readonly resolve: () => void
  readonly reject: (error: Error) => void
  readonly timer: ReturnType<typeof setTimeout>
}

/**
 * Starts a simulated upstream on `127.0.0.1` with an ephemeral port.
 *
 * @example
 * ```ts
 * import { SimulatedUpstream, UpstreamScript } from "effect-llm-router/testing/node"
 *
 * const upstream = await SimulatedUpstream.start({
 *   script: { "gpt-4o": [UpstreamScript.rateLimited({ retryAfter: "1" }), UpstreamScript.succeed()] }
 * })
 * try {
 *   // point the client at upstream.openAiBaseUrl
 * } finally {
 *   await upstream.close()
 * }
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const start = (options: SimulatedUpstreamOptions): Promise<SimulatedUpstream> => {
  const dispatcher = Dispatch.makeDispatcher({
    script: options.script,
    apiKey: options.apiKey,
    wire: options.wire
  })
  const inflight = new Set<AbortController>()
  let closedCount = 0
  let closing = false
  let closePromise: Promise<void> | undefined = undefined
  let waiters: Array<Waiter> = []

  const settleWaiters = () => {
    waiters = waiters.filter((waiter) => {
      if (waiter.done()) {
        clearTimeout(waiter.timer)
        waiter.resolve()
        return false
      }
      return true
    })
  }

  const waitUntil = (done: () => boolean, what: string, timeoutMs: number): Promise<void> => {
    if (done()) {
      return Promise.resolve()
    }
    if (closing) {
      return Promise.reject(new Error(`SimulatedUpstream is closed; still waiting for ${what}`))
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        waiters = waiters.filter((waiter) => waiter.timer !== timer)
        reject(new Error(`SimulatedUpstream: timed out after ${timeoutMs}ms waiting for ${what}`))
      }, timeoutMs)
      timer.unref()
      waiters.push({ done, resolve, reject, timer })
    })
  }

  const onRequest = (req: Http.IncomingMessage, res: Http.ServerResponse) => {
    const controller = new AbortController()
    inflight.add(controller)
    let cutByScript = false
    res.on("close", () => {
      inflight.delete(controller)
      if (!res.writableFinished && !cutByScript && !closing) {
        closedCount += 1
        settleWaiters()
      }
      controller.abort()
    })
    const chunks: Array<Buffer> = []
    let size = 0
    let tooLarge = false
    req.on("data", (chunk: Buffer) => {
      size += chunk.length
      if (size > MAX_BODY_BYTES) {
        tooLarge = true
        return
      }
      chunks.push(chunk)
    })
    req.on("end", () => {
      if (controller.signal.aborted) {
        return
      }
      if (tooLarge) {
        res.writeHead(413, { "content-type": "application/json" })
        res.end(JSON.stringify({
          error: { message: "Request body too large", type: "invalid_request_error", code: null }
        }))
        return
      }
      const plan = dispatcher.dispatch({
        method: req.method ?? "GET",
        path: req.url ?? "/",
        headers: normalizeHeaders(req.headers),
        body: Buffer.concat(chunks).toString("utf8")
      })
      settleWaiters()
      execute(plan, res, controller.signal, () => {
        cutByScript = true
      }).catch(() => {
        res.destroy()
      })
    })
  }

  const server = Http.createServer({ noDelay: true }, onRequest)
  let lifetimeTimer: ReturnType<typeof setTimeout> | undefined = undefined

  const close = (): Promise<void> => {
    if (closePromise !== undefined) {
      return closePromise
    }
    closing = true
    if (lifetimeTimer !== undefined) {
      clearTimeout(lifetimeTimer)
    }
    for (const controller of inflight) {
      controller.abort()
    }
    inflight.clear()
    closePromise = new Promise((resolve) => {
      server.close(() => resolve())
    })
    server.closeAllConnections()
    const pending = waiters
    waiters = []
    for (const waiter of pending) {
      clearTimeout(waiter.timer)
      waiter.reject(new Error("SimulatedUpstream closed while waiting"))
    }
    return closePromise
  }

  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(error)
    server.once("error", onError)
    server.listen(0, "127.0.0.1", () => {
      server.off("error", onError)
      lifetimeTimer = setTimeout(() => {
        void close()
      }, options.maxLifetimeMs ?? DEFAULT_MAX_LIFETIME_MS)
      lifetimeTimer.unref()
      const { port } = server.address() as AddressInfo
      const url = `http://127.0.0.1:${port}`
      resolve({
        url,
        openAiBaseUrl: `${url}/v1`,
        gptRouterBaseUrl: url,
        anthropicBaseUrl: url,
        geminiBaseUrl: url,
        get requests() {
          return dispatcher.requests()
        },
        attempts: dispatcher.attempts,
        closedConnections: () => closedCount,
        waitForClosedConnections: (count, timeoutMs = DEFAULT_WAIT_TIMEOUT_MS) =>
          waitUntil(() => closedCount >= count, `${count} closed connection(s)`, timeoutMs),
        waitForClose: (timeoutMs = DEFAULT_WAIT_TIMEOUT_MS) => {
          const target = closedCount + 1
          return waitUntil(() => closedCount >= target, "a client-side close", timeoutMs)
        },
        waitForRequests: (count, timeoutMs = DEFAULT_WAIT_TIMEOUT_MS) =>
          waitUntil(() => dispatcher.requests().length >= count, `${count} request(s)`, timeoutMs),
        reset: (script) => {
          dispatcher.reset(script)
          closedCount = 0
        },
        isClosed: () => closing,
        close
      })
    })
  })
}

/**
 * Starts a simulated upstream for the lifetime of the enclosing scope.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { SimulatedUpstream, UpstreamScript } from "effect-llm-router/testing/node"
 *
 * export const program = Effect.gen(function*() {
 *   const upstream = yield* SimulatedUpstream.make({ script: { "gpt-4o": [UpstreamScript.unavailable()] } })
 *   // ...
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: SimulatedUpstreamOptions): Effect.Effect<SimulatedUpstream, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() => start(options)),
    (upstream) => Effect.promise(() => upstream.close())
  )
