/**
 * The routed call (`generate`) over a real loopback socket: both wire protocols end to end, every status mapped to its
 * typed error, transport failures, interruption, secret redaction, request validation and configuration errors.
 * Each test starts its own servers on 127.0.0.1:0 and closes them when its scope ends.
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Http from "node:http"
import * as Net from "node:net"
import * as Attempt from "../src/Attempt.js"
import type * as ChatRequest from "../src/ChatRequest.js"
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

const KEY = "sk-wire-test-0123456789abcdef"
const fast = { minDelay: "1 millis", maxDelay: "5 millis", initialDelay: "1 millis" } as const
const hi: ChatRequest.ChatRequest["messages"] = [{ role: "user", content: "hi" }]

type Upstream = SimulatedUpstream.SimulatedUpstream

const openAi = (upstream: Upstream, provider?: string) =>
  OpenAiCompatible.endpoint({ baseUrl: upstream.openAiBaseUrl, apiKey: Redacted.make(KEY), provider })

const gptRouter = (upstream: Upstream, key = KEY) =>
  GptRouter.endpoint({ baseUrl: upstream.gptRouterBaseUrl, apiKey: Redacted.make(key) })

/** A server on 127.0.0.1:0 that is closed (with its connections) when the scope ends. */
const listen = <S extends Net.Server>(server: S): Effect.Effect<{ server: S; port: number }, never, Scope.Scope> =>
  Effect.acquireRelease(
    promise(() =>
      new Promise<{ server: S; port: number }>((resolve) => {
        server.listen(0, "127.0.0.1", () => resolve({ server, port: (server.address() as Net.AddressInfo).port }))
      })
    ),
    ({ server }) =>
      promise(() =>
        new Promise<void>((resolve) => {
          if (server instanceof Http.Server) server.closeAllConnections()
          server.close(() => resolve())
        })
      )
  )

/** A port that was just bound and released: nothing listens there. */
const closedPort = promise(() =>
  new Promise<number>((resolve) => {
    const server = Net.createServer()
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as Net.AddressInfo).port
      server.close(() => resolve(port))
    })
  })
)

const outcomes = (trail: ReadonlyArray<Attempt.Attempt>) =>
  trail.map((a) => `${a.index}:${a.provider}/${a.model}#${a.attempt}:${a.outcome}${a.error ? `:${a.error._tag}` : ""}`)

const gptData = (body: unknown) =>
  (body as { data: ReadonlyArray<{ modelName: string; providerName: string; order: number }> }).data.map((d) => ({
    modelName: d.modelName,
    providerName: d.providerName,
    order: d.order
  }))

// ---------------------------------------------------------------------------------------------------------------------
// End to end, once per HttpClient layer
// ---------------------------------------------------------------------------------------------------------------------

const endToEnd = (clientName: string, client: Layer.Layer<HttpClient.HttpClient>) => {
  const runIt = runWith(client)

  describe(`generate end to end over ${clientName}`, () => {
    it.live("OpenAI-compatible: text, usage, finish reason, served model/provider, id, trail, bearer key, body", () =>
      runIt(Effect.gen(function*() {
        const upstream = yield* SimulatedUpstream.make({
          apiKey: KEY,
          script: {
            "gpt-4o": [
              S.succeed({
                text: "Bonjour, ça va?",
                usage: { promptTokens: 11, completionTokens: 4 },
                finishReason: "length"
              })
            ]
          }
        })
        const router = yield* Router.make({
          models: [Model.make({ name: "gpt-4o", endpoint: openAi(upstream, "acme") })],
          retry: fast
        })
        const before = Date.now()
        const response = yield* router.generate({ messages: hi, temperature: 0.5, max_tokens: 20 })
        const after = Date.now()

        expect(response.text).toBe("Bonjour, ça va?")
        expect(response.id).toBe("chatcmpl-1")
        expect(response.model).toBe("gpt-4o")
        expect(response.provider).toBe("acme")
        expect(response.choices.map((c) => [c.index, c.role, c.finishReason])).toEqual([[0, "assistant", "length"]])
        expect(response.usage).toEqual({ promptTokens: 11, completionTokens: 4, totalTokens: 15 })
        expect(response.trail).toHaveLength(1)
        const [attempt] = response.trail
        expect(outcomes(response.trail)).toEqual(["1:acme/gpt-4o#1:success"])
        expect(attempt!.error).toBeUndefined()
        expect(attempt!.startedAt).toBeGreaterThanOrEqual(before)
        expect(attempt!.endedAt).toBeLessThanOrEqual(after)
        expect(attempt!.endedAt).toBeGreaterThanOrEqual(attempt!.startedAt)

        expect(upstream.requests).toHaveLength(1)
        const request = upstream.requests[0]!
        expect(request.protocol).toBe("openai")
        expect(request.path).toBe("/v1/chat/completions")
        expect(request.headers["authorization"]).toBe(`Bearer ${KEY}`)
        expect(request.headers["ws-secret"]).toBeUndefined()
        expect(request.body).toEqual({ model: "gpt-4o", messages: hi, temperature: 0.5, max_tokens: 20 })
      })))

    it.live("the caller's own HttpClient combinators are kept, for calls and streams", () =>
      runIt(Effect.gen(function*() {
        const upstream = yield* SimulatedUpstream.make({
          apiKey: KEY,
          script: { "m": [S.succeed({ text: "one" }), S.succeed({ text: "two" })] }
        })
        // A client wrapped by the caller: the router must send through the wrapper, never around it (our undici
        // layer has a shorter untraced path, which a wrapped client does not offer).
        const router = yield* Router.make({ models: [Model.make({ name: "m", endpoint: openAi(upstream) })] }).pipe(
          Effect.provideServiceEffect(
            HttpClient.HttpClient,
            Effect.map(HttpClient.HttpClient, HttpClient.mapRequest(HttpClientRequest.setHeader("x-caller", "kept")))
          )
        )
        expect((yield* router.generate({ messages: hi })).text).toBe("one")
        expect((yield* Router.collect(router.stream({ messages: hi }))).text).toBe("two")
        expect(upstream.requests.map((r) => r.headers["x-caller"])).toEqual(["kept", "kept"])
      })))

    it.live("GPTRouter: retries, then falls back; `data` puts the model tried at order 1 followed by the rest", () =>
      runIt(Effect.gen(function*() {
        const upstream = yield* SimulatedUpstream.make({
          apiKey: KEY,
          script: {
            "claude-3": [S.unavailable()],
            "gpt-4o": [S.succeed({ text: "served by gpt-4o", usage: { promptTokens: 9, completionTokens: 2 } })],
            "mistral": [S.succeed()]
          }
        })
        const endpoint = gptRouter(upstream)
        const router = yield* Router.make({
          models: [
            Model.make({ name: "claude-3", endpoint, provider: "anthropic" }),
            Model.make({ name: "gpt-4o", endpoint, provider: "azure" }),
            Model.make({ name: "mistral", endpoint, provider: "mistral" })
          ],
          retry: { ...fast, maxAttempts: 2 }
        })
        const response = yield* router.generate({ messages: hi, temperature: 0 })

        expect(response.text).toBe("served by gpt-4o")
        expect(response.model).toBe("gpt-4o")
        expect(response.provider).toBe("azure")
        expect(response.id).toBe("gen-3")
        expect(response.choices[0]!.finishReason).toBe("stop")
        expect(response.usage).toEqual({ promptTokens: 9, completionTokens: 2, totalTokens: 11 })
        expect(outcomes(response.trail)).toEqual([
          "1:anthropic/claude-3#1:retry:ServiceUnavailable",
          "2:anthropic/claude-3#2:fallback:ServiceUnavailable",
          "3:azure/gpt-4o#1:success"
        ])
        expect(response.trail[0]!.waitMillis).toBeGreaterThanOrEqual(1)
        expect(response.trail[0]!.waitMillis).toBeLessThanOrEqual(5)
        expect(response.trail[1]!.error!.status).toBe(503)

        const requests = upstream.requests
        expect(requests.map((r) => r.path)).toEqual(["/api/v1/generate", "/api/v1/generate", "/api/v1/generate"])
        const all = [
          { modelName: "claude-3", providerName: "anthropic", order: 1 },
          { modelName: "gpt-4o", providerName: "azure", order: 2 },
          { modelName: "mistral", providerName: "mistral", order: 3 }
        ]
        expect(gptData(requests[0]!.body)).toEqual(all)
        expect(gptData(requests[1]!.body)).toEqual(all)
        expect(gptData(requests[2]!.body)).toEqual([
          { modelName: "gpt-4o", providerName: "azure", order: 1 },
          { modelName: "mistral", providerName: "mistral", order: 2 }
        ])
        for (const r of requests) {
          expect(r.headers["ws-secret"]).toBe(KEY)
          expect(r.headers["authorization"]).toBeUndefined()
          const body = r.body as { stream: boolean; data: ReadonlyArray<{ promptParams: unknown }> }
          expect(body.stream).toBe(false)
          for (const d of body.data) expect(d.promptParams).toEqual({ messages: hi, temperature: 0 })
        }
      })))

    it.live("a priority list mixing both protocols: GPTRouter data lists only the remaining GPTRouter models", () =>
      runIt(Effect.gen(function*() {
        const upstream = yield* SimulatedUpstream.make({
          apiKey: KEY,
          script: {
            "g1": [S.fail(406)],
            "o1": [S.forbidden()],
            "g2": [S.succeed({ text: "g2 answers" })],
            "o2": [S.succeed()]
          }
        })
        const gpt = gptRouter(upstream)
        const oai = openAi(upstream)
        const router = yield* Router.make({
          models: [
            Model.make({ name: "g1", endpoint: gpt, provider: "cohere" }),
            Model.make({ name: "o1", endpoint: oai }),
            Model.make({ name: "g2", endpoint: gpt, provider: "google" }),
            Model.make({ name: "o2", endpoint: oai })
          ],
          retry: { ...fast, maxAttempts: 1 }
        })
        const response = yield* router.generate({ messages: hi })
        expect(response.text).toBe("g2 answers")
        expect([response.model, response.provider]).toEqual(["g2", "google"])
        expect(outcomes(response.trail)).toEqual([
          "1:cohere/g1#1:fallback:ServiceUnavailable",
          "2:openai/o1#1:fallback:PermissionDenied",
          "3:google/g2#1:success"
        ])
        const requests = upstream.requests
        expect(requests.map((r) => `${r.protocol}:${r.model}`)).toEqual(["gptrouter:g1", "openai:o1", "gptrouter:g2"])
        expect(gptData(requests[0]!.body)).toEqual([
          { modelName: "g1", providerName: "cohere", order: 1 },
          { modelName: "g2", providerName: "google", order: 2 }
        ])
        expect((requests[1]!.body as { model: string }).model).toBe("o1")
        expect(requests[1]!.headers["authorization"]).toBe(`Bearer ${KEY}`)
        expect(gptData(requests[2]!.body)).toEqual([{ modelName: "g2", providerName: "google", order: 1 }])
      })))

    it.live("connection refused and connection reset are NetworkError, retried, and then the call fails", () =>
      runIt(Effect.gen(function*() {
        const port = yield* closedPort
        const refused = yield* Router.make({
          models: [
            Model.make({ name: "m", endpoint: OpenAiCompatible.endpoint({ baseUrl: `http://127.0.0.1:${port}/v1` }) })
          ],
          retry: { ...fast, maxAttempts: 2 }
        })
        const e1 = yield* Effect.flip(refused.generate({ messages: hi }))
        expect(e1._tag).toBe("NetworkError")
        if (e1._tag !== "NetworkError") return
        expect(e1.reason).toMatch(/ECONNREFUSED/)
        expect([e1.provider, e1.model, e1.attempt, e1.status]).toEqual(["openai", "m", 2, undefined])
        expect(outcomes(e1.trail ?? [])).toEqual([
          "1:openai/m#1:retry:NetworkError",
          "2:openai/m#2:failed:NetworkError"
        ])

        let connections = 0
        const { port: resetPort } = yield* listen(Net.createServer((socket) => {
          connections++
          socket.on("data", () => socket.resetAndDestroy())
        }))
        const reset = yield* Router.make({
          models: [
            Model.make({
              name: "m",
              endpoint: OpenAiCompatible.endpoint({ baseUrl: `http://127.0.0.1:${resetPort}/v1` })
            })
          ],
          retry: { ...fast, maxAttempts: 2 }
        })
        const e2 = yield* Effect.flip(reset.generate({ messages: hi }))
        expect(e2._tag).toBe("NetworkError")
        if (e2._tag !== "NetworkError") return
        expect(e2.reason).toMatch(/ECONNRESET|UND_ERR_SOCKET|other side closed/)
        expect(e2.attempt).toBe(2)
        expect(connections).toBe(2)
      })))

    it.live("a 200 whose body is cut mid-way is a NetworkError; a body that ends early is MalformedResponse", () =>
      runIt(Effect.gen(function*() {
        const upstream = yield* SimulatedUpstream.make({
          script: { cut: [S.cut(), S.succeed({ text: "second try" })], short: [S.endWithoutFinish()] }
        })
        const endpoint = openAi(upstream)
        const cut = yield* Router.make({
          models: [Model.make({ name: "cut", endpoint })],
          retry: { ...fast, maxAttempts: 2 }
        })
        const response = yield* cut.generate({ messages: hi })
        expect(response.text).toBe("second try")
        expect(outcomes(response.trail)).toEqual(["1:openai/cut#1:retry:NetworkError", "2:openai/cut#2:success"])

        const short = yield* Router.make({
          models: [Model.make({ name: "short", endpoint })],
          retry: { ...fast, maxAttempts: 2 }
        })
        const error = yield* Effect.flip(short.generate({ messages: hi }))
        expect(error._tag).toBe("MalformedResponse")
        expect((error as RouterError.MalformedResponse).reason).toBe("body is not JSON")
        expect(upstream.attempts("short")).toBe(1)
      })))

    it.live("the caller's timeout while the server hangs aborts the request: the server sees the socket close", () =>
      runIt(Effect.gen(function*() {
        const upstream = yield* SimulatedUpstream.make({ script: { m: [S.hang()] } })
        const router = yield* Router.make({
          models: [Model.make({ name: "m", endpoint: openAi(upstream) })],
          retry: fast
        })
        const exit = yield* Effect.exit(Effect.timeout(router.generate({ messages: hi }), "150 millis"))
        expect(Exit.isFailure(exit)).toBe(true)
        yield* promise(() => upstream.waitForClosedConnections(1, 2_000))
        expect(upstream.closedConnections()).toBe(1)
        expect(upstream.requests).toHaveLength(1)
      })))

    it.live("Fiber.interrupt of a call whose server hangs (GPTRouter) closes the socket", () =>
      runIt(Effect.gen(function*() {
        const upstream = yield* SimulatedUpstream.make({ script: { g: [S.hang()] } })
        const router = yield* Router.make({
          models: [Model.make({ name: "g", endpoint: gptRouter(upstream) })],
          retry: fast
        })
        const fiber = yield* Effect.fork(router.generate({ messages: hi }))
        yield* promise(() => upstream.waitForRequests(1, 2_000))
        const exit = yield* Fiber.interrupt(fiber)
        expect(Exit.isInterrupted(exit)).toBe(true)
        yield* promise(() => upstream.waitForClosedConnections(1, 2_000))
        expect(upstream.closedConnections()).toBe(1)
      })))
  })
}

endToEnd("FetchHttpClient", FetchHttpClient.layer)
endToEnd("FetchRouterHttpClient", FetchRouterHttpClient.layer)
endToEnd("RouterHttpClient (node:http)", Layer.orDie(RouterHttpClient.layerNodeHttp))

// ---------------------------------------------------------------------------------------------------------------------
// Status → tag
// ---------------------------------------------------------------------------------------------------------------------

const openAiErrorBody = (message: string, type: string, code: string | null) =>
  JSON.stringify({ error: { message, type, code } })

interface StatusCase {
  readonly name: string
  readonly step: S.Fail
  readonly tag: RouterError.AttemptErrorTag
  readonly retried: boolean
  readonly body: string
  readonly retryAfterMillis?: number
}

const statusCases: ReadonlyArray<StatusCase> = [
  {
    name: "400",
    step: S.fail(400),
    tag: "BadRequest",
    retried: false,
    body: openAiErrorBody("Invalid request.", "invalid_request_error", null)
  },
  {
    name: "400 context_length_exceeded",
    step: S.contextLengthExceeded({ message: "maximum context length is 8192 tokens" }),
    tag: "ContextLengthExceeded",
    retried: false,
    body: openAiErrorBody("maximum context length is 8192 tokens", "invalid_request_error", "context_length_exceeded")
  },
  {
    name: "400 content_policy_violation",
    step: S.contentFiltered({ message: "rejected by the safety system" }),
    tag: "ContentFiltered",
    retried: false,
    body: openAiErrorBody("rejected by the safety system", "invalid_request_error", "content_policy_violation")
  },
  {
    name: "401",
    step: S.unauthorized(),
    tag: "AuthenticationFailed",
    retried: false,
    body: openAiErrorBody("Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
  },
  {
    name: "402",
    step: S.fail(402, { message: "Payment required", type: "billing", code: null }),
    tag: "QuotaExhausted",
    retried: false,
    body: openAiErrorBody("Payment required", "billing", null)
  },
  {
    name: "403",
    step: S.forbidden(),
    tag: "PermissionDenied",
    retried: false,
    body: openAiErrorBody("You are not allowed to use the model `m`.", "invalid_request_error", "permission_denied")
  },
  {
    name: "404",
    step: S.notFound(),
    tag: "ModelNotFound",
    retried: false,
    body: openAiErrorBody("The model `m` does not exist", "invalid_request_error", "model_not_found")
  },
  {
    name: "408",
    step: S.fail(408),
    tag: "Timeout",
    retried: true,
    body: openAiErrorBody("Request timed out.", "timeout", null)
  },
  {
    name: "429 with retry-after-ms",
    step: S.rateLimited({ retryAfterMs: 3 }),
    tag: "RateLimited",
    retried: true,
    body: openAiErrorBody(
      "Rate limit reached for requests. Please try again later.",
      "rate_limit_exceeded",
      "rate_limit_exceeded"
    ),
    retryAfterMillis: 3
  },
  {
    name: "429 insufficient_quota",
    step: S.quotaExhausted(),
    tag: "QuotaExhausted",
    retried: false,
    body: openAiErrorBody(
      "You exceeded your current quota, please check your plan and billing details.",
      "insufficient_quota",
      "insufficient_quota"
    )
  },
  {
    name: "500",
    step: S.serverError(500),
    tag: "ServerError",
    retried: true,
    body: openAiErrorBody(
      "The server had an error while processing your request. Sorry about that!",
      "server_error",
      null
    )
  },
  {
    name: "502",
    step: S.serverError(502),
    tag: "ServerError",
    retried: true,
    body: openAiErrorBody("Bad gateway.", "server_error", null)
  },
  {
    name: "504",
    step: S.serverError(504),
    tag: "ServerError",
    retried: true,
    body: openAiErrorBody("Gateway timeout.", "server_error", null)
  },
  {
    name: "503",
    step: S.unavailable(),
    tag: "ServiceUnavailable",
    retried: true,
    body: openAiErrorBody("The engine is currently overloaded, please try again later.", "server_error", null)
  },
  {
    name: "529",
    step: S.fail(529, { message: "Overloaded", type: "overloaded_error", code: null }),
    tag: "ServiceUnavailable",
    retried: true,
    body: openAiErrorBody("Overloaded", "overloaded_error", null)
  }
]

describe("generate: every error status is its typed error", () => {
  for (const c of statusCases) {
    it.live(`OpenAI ${c.name} → ${c.tag}${c.retried ? " (retried)" : " (not retried)"}`, () =>
      run(Effect.gen(function*() {
        const upstream = yield* SimulatedUpstream.make({ apiKey: KEY, script: { m: [c.step] } })
        const router = yield* Router.make({
          models: [Model.make({ name: "m", endpoint: openAi(upstream, "acme") })],
          retry: { ...fast, maxAttempts: 3 }
        })
        const error = yield* Effect.flip(router.generate({ messages: hi }))
        const attempts = c.retried ? 3 : 1
        expect(error._tag).toBe(c.tag)
        const e = error as RouterError.AttemptError
        expect({
          status: e.status,
          provider: e.provider,
          model: e.model,
          attempt: e.attempt,
          body: e.body,
          retryAfterMillis: e.retryAfterMillis
        }).toEqual({
          status: c.step.status,
          provider: "acme",
          model: "m",
          attempt: attempts,
          body: c.body,
          retryAfterMillis: c.retryAfterMillis
        })
        if (e._tag === "Timeout") expect(e.phase).toBe("server")
        expect(e.message).toContain(`acme/m (attempt ${attempts})`)
        expect(e.message).toContain(`(HTTP ${c.step.status})`)
        expect(upstream.requests).toHaveLength(attempts)
        // The error that ends the call carries every attempt, the failing one last.
        expect(outcomes(e.trail ?? [])).toEqual([
          ...Array.from({ length: attempts - 1 }, (_, i) => `${i + 1}:acme/m#${i + 1}:retry:${c.tag}`),
          `${attempts}:acme/m#${attempts}:failed:${c.tag}`
        ])
        if (c.retryAfterMillis !== undefined) {
          for (const a of (e.trail ?? []).slice(0, -1)) expect(a.waitMillis).toBeGreaterThanOrEqual(c.retryAfterMillis)
        }
      })))
  }

  it.live("429 with Retry-After in seconds is retryAfterMillis 1000; insufficient_quota is never retried", () =>
    run(Effect.gen(function*() {
      const upstream = yield* SimulatedUpstream.make({
        script: { limited: [S.rateLimited({ retryAfter: "1" })], broke: [S.quotaExhausted()] }
      })
      const limited = yield* Router.make({
        models: [Model.make({ name: "limited", endpoint: openAi(upstream) })],
        retry: { ...fast, maxAttempts: 1 }
      })
      const e1 = yield* Effect.flip(limited.generate({ messages: hi }))
      expect(e1._tag).toBe("RateLimited")
      expect((e1 as RouterError.RateLimited).retryAfterMillis).toBe(1000)
      expect((e1 as RouterError.RateLimited).message).toContain("server asked to wait 1s")

      const broke = yield* Router.make({
        models: [Model.make({ name: "broke", endpoint: openAi(upstream) })],
        retry: { ...fast, maxAttempts: 4 }
      })
      const e2 = yield* Effect.flip(broke.generate({ messages: hi }))
      expect(e2._tag).toBe("QuotaExhausted")
      expect(upstream.attempts("broke")).toBe(1)
    })))

  it.live("GPTRouter 406 → ServiceUnavailable (retried); GPTRouter error bodies are kept as the excerpt", () =>
    run(Effect.gen(function*() {
      const upstream = yield* SimulatedUpstream.make({
        apiKey: KEY,
        script: { g: [S.fail(406)], h: [S.serverError(500, { message: "boom" })], i: [S.rateLimited()] }
      })
      const endpoint = gptRouter(upstream)
      const routerFor = (name: string) =>
        Router.make({
          models: [Model.make({ name, endpoint, provider: "anthropic" })],
          retry: { ...fast, maxAttempts: 2 }
        })

      const e1 = yield* Effect.flip((yield* routerFor("g")).generate({ messages: hi }))
      expect(e1._tag).toBe("ServiceUnavailable")
      const u = e1 as RouterError.ServiceUnavailable
      expect([u.status, u.provider, u.model, u.attempt, u.body]).toEqual([
        406,
        "anthropic",
        "g",
        2,
        JSON.stringify({ message: "Model g is not available" })
      ])
      expect(upstream.attempts("g")).toBe(2)

      const e2 = (yield* Effect.flip((yield* routerFor("h")).generate({ messages: hi }))) as RouterError.AttemptError
      expect([e2._tag, e2.status, e2.attempt, e2.body]).toEqual(["ServerError", 500, 2, "{\"message\":\"boom\"}"])

      const e3 = (yield* Effect.flip((yield* routerFor("i")).generate({ messages: hi }))) as RouterError.AttemptError
      expect([e3._tag, e3.status, e3.attempt]).toEqual(["RateLimited", 429, 2])
    })))

  it.live("a long error body is cut to an excerpt; a non-JSON error page is mapped by its status alone", () =>
    run(Effect.gen(function*() {
      const upstream = yield* SimulatedUpstream.make({
        script: {
          long: [S.fail(400, { message: "x".repeat(2_000) })],
          html: [S.fail(502, { body: "<html>\n  <body>Bad   Gateway</body>\n</html>" })]
        }
      })
      const routerFor = (name: string) =>
        Router.make({ models: [Model.make({ name, endpoint: openAi(upstream) })], retry: { ...fast, maxAttempts: 1 } })
      const e1 = (yield* Effect.flip((yield* routerFor("long")).generate({ messages: hi }))) as RouterError.AttemptError
      expect(e1._tag).toBe("BadRequest")
      const prefix = "{\"error\":{\"message\":\""
      expect(e1.body).toBe(`${prefix}${"x".repeat(400 - prefix.length)}…`)
      const e2 = (yield* Effect.flip((yield* routerFor("html")).generate({ messages: hi }))) as RouterError.AttemptError
      expect([e2._tag, e2.status, e2.body]).toEqual(["ServerError", 502, "<html> <body>Bad Gateway</body> </html>"])
    })))
})

// ---------------------------------------------------------------------------------------------------------------------
// Malformed 2xx
// ---------------------------------------------------------------------------------------------------------------------

describe("generate: a 200 that is not a response is MalformedResponse", () => {
  it.live("non-JSON body (not retried, falls back to the next model)", () =>
    run(Effect.gen(function*() {
      const upstream = yield* SimulatedUpstream.make({
        script: { bad: [S.malformed({ kind: "not-json" })], good: [S.succeed({ text: "fine" })] }
      })
      const endpoint = openAi(upstream)
      const single = yield* Router.make({
        models: [Model.make({ name: "bad", endpoint })],
        retry: { ...fast, maxAttempts: 3 }
      })
      const error = yield* Effect.flip(single.generate({ messages: hi }))
      expect(error._tag).toBe("MalformedResponse")
      const e = error as RouterError.MalformedResponse
      expect([e.status, e.provider, e.model, e.attempt, e.reason, e.body]).toEqual([
        200,
        "openai",
        "bad",
        1,
        "body is not JSON",
        "upstream says: this is not json"
      ])
      expect(upstream.attempts("bad")).toBe(1)

      const pair = yield* Router.make({
        models: [Model.make({ name: "bad", endpoint }), Model.make({ name: "good", endpoint })],
        retry: { ...fast, maxAttempts: 3 }
      })
      const response = yield* pair.generate({ messages: hi })
      expect(response.text).toBe("fine")
      expect(outcomes(response.trail)).toEqual(["1:openai/bad#1:fallback:MalformedResponse", "2:openai/good#1:success"])
    })))

  it.live("JSON that does not match the response schema, on both protocols", () =>
    run(Effect.gen(function*() {
      const upstream = yield* SimulatedUpstream.make({ script: { m: [S.malformed({ kind: "wrong-schema" })] } })
      for (const endpoint of [openAi(upstream), gptRouter(upstream)]) {
        const router = yield* Router.make({ models: [Model.make({ name: "m", endpoint })], retry: fast })
        const error = yield* Effect.flip(router.generate({ messages: hi }))
        expect(error._tag).toBe("MalformedResponse")
        const e = error as RouterError.MalformedResponse
        expect(e.status).toBe(200)
        expect(e.reason).toMatch(/^body does not match the response schema: /)
        expect(e.body).toContain("\"choices\":\"not-a-list\"")
      }
      expect(upstream.requests).toHaveLength(2)
    })))
})

// ---------------------------------------------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------------------------------------------

describe("generate: the api key never appears in errors or the trail", () => {
  const leaks = (key: string, error: RouterError.RouterError) => {
    const trail = "trail" in error ? error.trail ?? [] : []
    const texts = [
      error.message,
      String(error),
      JSON.stringify(error),
      Attempt.formatTimeline(trail),
      JSON.stringify(trail),
      ...trail.map((a) => a.error?.message ?? "")
    ]
    return texts.filter((t) => t.includes(key))
  }

  for (
    const [label, key] of [
      ["an sk- shaped key", KEY],
      ["a key of no known shape", "plain-secret-value-42"]
    ] as const
  ) {
    it.live(`${label}: echoed back in 401/500 bodies on both protocols, over a fallback chain`, () =>
      run(Effect.gen(function*() {
        const upstream = yield* SimulatedUpstream.make({
          script: {
            o1: [S.unauthorized({ message: `Incorrect API key provided: ${key}. Bearer ${key}` })],
            g1: [S.serverError(500, { body: { message: `upstream rejected ws-secret=${key}`, secret: key } })],
            o2: [S.fail(400, { body: `plain text page mentioning ${key} twice: ${key}` })]
          }
        })
        const oai = OpenAiCompatible.endpoint({ baseUrl: upstream.openAiBaseUrl, apiKey: Redacted.make(key) })
        const gpt = gptRouter(upstream, key)
        const router = yield* Router.make({
          models: [
            Model.make({ name: "o1", endpoint: oai }),
            Model.make({ name: "g1", endpoint: gpt }),
            Model.make({ name: "o2", endpoint: oai })
          ],
          retry: { ...fast, maxAttempts: 2 }
        })
        const error = yield* Effect.flip(router.generate({ messages: hi }))
        expect(error._tag).toBe("BadRequest")
        // The key really was sent and really was echoed.
        expect(upstream.requests[0]!.headers["authorization"]).toBe(`Bearer ${key}`)
        expect(upstream.requests[1]!.headers["ws-secret"]).toBe(key)
        const trail = (error as RouterError.BadRequest).trail ?? []
        expect(outcomes(trail)).toEqual([
          "1:openai/o1#1:fallback:AuthenticationFailed",
          "2:openai/g1#1:retry:ServerError",
          "3:openai/g1#2:fallback:ServerError",
          "4:openai/o2#1:failed:BadRequest"
        ])
        expect(trail[0]!.error!.body).toContain("Incorrect API key provided: <redacted>")
        expect(trail[1]!.error!.body).toContain("upstream rejected ws-secret=<redacted>")
        expect((error as RouterError.BadRequest).body).toBe("plain text page mentioning <redacted> twice: <redacted>")
        expect(leaks(key, error)).toEqual([])
      })))
  }

  it.live("a key rejected by the server (the server's own 401) is not echoed into the error", () =>
    run(Effect.gen(function*() {
      const upstream = yield* SimulatedUpstream.make({ apiKey: "the-right-key", script: { m: [S.succeed()] } })
      const wrong = "wrong-key-do-not-leak-123"
      const router = yield* Router.make({
        models: [
          Model.make({
            name: "m",
            endpoint: OpenAiCompatible.endpoint({ baseUrl: upstream.openAiBaseUrl, apiKey: Redacted.make(wrong) })
          })
        ],
        retry: fast
      })
      const error = yield* Effect.flip(router.generate({ messages: hi }))
      expect(error._tag).toBe("AuthenticationFailed")
      expect(leaks(wrong, error)).toEqual([])
    })))
})

// ---------------------------------------------------------------------------------------------------------------------
// Request validation
// ---------------------------------------------------------------------------------------------------------------------

describe("generate: request validation happens before anything is sent", () => {
  const invalid: ReadonlyArray<readonly [string, unknown, string, RegExp]> = [
    ["no messages", { messages: [] }, "messages", /at least one message/],
    ["an unknown role", { messages: [{ role: "robot", content: "x" }] }, "messages[0].role", /"robot"/],
    ["temperature 3", { messages: hi, temperature: 3 }, "temperature", /between 0 and 2/],
    ["n 0", { messages: hi, n: 0 }, "n", /greater than or equal to 1/],
    ["stop given twice", { messages: hi, stop: "END", model_kwargs: { stop: ["###"] } }, "model_kwargs.stop", /twice/]
  ]
  for (const [name, request, field, reason] of invalid) {
    it.live(`${name} → InvalidRequest on ${field}, zero requests`, () =>
      run(Effect.gen(function*() {
        const upstream = yield* SimulatedUpstream.make({ script: { "*": [S.succeed()] } })
        const router = yield* Router.make({
          models: [
            Model.make({ name: "o", endpoint: openAi(upstream) }),
            Model.make({ name: "g", endpoint: gptRouter(upstream) })
          ],
          retry: fast
        })
        const error = yield* Effect.flip(router.generate(request as ChatRequest.ChatRequest))
        expect(error._tag).toBe("InvalidRequest")
        const e = error as RouterError.InvalidRequest
        expect(e.field).toBe(field)
        expect(e.reason).toMatch(reason)
        expect(e.message).toBe(`invalid request: ${field}: ${e.reason}`)
        // Give a stray request time to arrive before counting.
        yield* Effect.sleep("20 millis")
        expect(upstream.requests).toHaveLength(0)
      })))
  }

  it.live("an unknown extra field and model_kwargs are passed through to the wire body of both protocols", () =>
    run(Effect.gen(function*() {
      const upstream = yield* SimulatedUpstream.make({ script: { "*": [S.succeed()] } })
      const request = {
        messages: hi,
        temperature: 0.2,
        logit_bias: { "50256": -100 },
        reasoning_effort: "low",
        model_kwargs: { top_k: 40 }
      } as unknown as ChatRequest.ChatRequest
      const expected = {
        messages: hi,
        temperature: 0.2,
        logit_bias: { "50256": -100 },
        reasoning_effort: "low",
        top_k: 40
      }
      for (const endpoint of [openAi(upstream), gptRouter(upstream)]) {
        const router = yield* Router.make({ models: [Model.make({ name: "m", endpoint })], retry: fast })
        yield* router.generate(request)
      }
      const [oai, gpt] = upstream.requests
      expect(oai!.body).toEqual({ model: "m", ...expected })
      expect((gpt!.body as { data: ReadonlyArray<{ promptParams: unknown }> }).data[0]!.promptParams).toEqual(expected)
    })))
})

// ---------------------------------------------------------------------------------------------------------------------
// Configuration errors
// ---------------------------------------------------------------------------------------------------------------------

describe("Router.layer: configuration errors at construction", () => {
  // A live server is there to prove nothing reaches it.
  const configError = (options: (baseUrl: string) => Router.Options) =>
    run(Effect.gen(function*() {
      let requests = 0
      const { port } = yield* listen(Http.createServer((_, res) => {
        requests++
        res.end()
      }))
      const exit = yield* Effect.exit(
        Effect.provide(Router.generate({ messages: hi }), Router.layer(options(`http://127.0.0.1:${port}/v1`)))
      )
      expect(requests).toBe(0)
      if (Exit.isSuccess(exit)) throw new Error("expected the layer to fail")
      const failure = exit.cause._tag === "Fail" ? exit.cause.error : undefined
      expect(failure?._tag).toBe("RouterConfigError")
      return failure as RouterError.RouterConfigError
    }))

  const model = (name: string, baseUrl: string) =>
    Model.make({ name, endpoint: OpenAiCompatible.endpoint({ baseUrl }) })

  it.live("empty models", () =>
    Effect.map(configError(() => ({ models: [] })), (e) => {
      expect(e.option).toBe("models")
      expect(e.message).toBe("invalid router configuration: models: the priority list needs at least one model")
    }))

  it.live("retry: { maxAttempts: -1 }", () =>
    Effect.map(configError((url) => ({ models: [model("m", url)], retry: { maxAttempts: -1 } })), (e) => {
      expect(e.option).toBe("retry.maxAttempts")
      expect(e.reason).toBe("must be an integer ≥ 1 (got -1)")
    }))

  it.live("an unparseable baseUrl names the model's endpoint", () =>
    Effect.map(configError((url) => ({ models: [model("ok", url), model("bad", "http//no colon")] })), (e) => {
      expect(e.option).toBe("models[1].endpoint.baseUrl")
      expect(e.reason).toBe("not an http(s) URL: \"http//no colon\"")
    }))
})

// Last: importing @effect/platform-node installs undici as the process-wide fetch dispatcher, so the FetchHttpClient
// tests above run before it is loaded.
endToEnd(
  "NodeRouterHttpClient.layerUndici",
  Layer.unwrapEffect(
    Effect.map(Effect.promise(() => import("../src/node/NodeRouterHttpClient.js")), (m) => m.layerUndici)
  )
)
