/**
 * The native protocols (Anthropic Messages, Gemini) over a real loopback socket, on both HttpClient layers: every
 * error status the protocol sends mapped to its failure mode (calls and streams), streams end to end (tool calls,
 * split reads, CRLF, in-band errors before and after content, cuts, truncation), and the key never leaving the
 * request header. Each test starts its own server on 127.0.0.1:0 and closes it when its scope ends.
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import type * as HttpClient from "@effect/platform/HttpClient"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Anthropic from "../src/Anthropic.js"
import * as Attempt from "../src/Attempt.js"
import * as FetchRouterHttpClient from "../src/FetchRouterHttpClient.js"
import * as Gemini from "../src/Gemini.js"
import * as Model from "../src/Model.js"
import type * as Provider from "../src/Provider.js"
import * as Router from "../src/Router.js"
import type * as RouterError from "../src/RouterError.js"
import * as RouterHttpClient from "../src/RouterHttpClient.js"
import * as SimulatedUpstream from "../src/testing/SimulatedUpstream.js"
import * as S from "../src/testing/UpstreamScript.js"
import { runWith } from "./support/live.js"

const KEY = "wire-native-key-0123456789"
const hi = { messages: [{ role: "user" as const, content: "hi" }] }
const once = { retry: { maxAttempts: 1 }, health: false } as const

interface Case {
  readonly label: string
  readonly step: S.Step
  readonly tag: RouterError.AttemptErrorTag
  /** The status on the error (none for a failure inside a 200). */
  readonly status: number | undefined
  readonly retryAfterMillis?: number
  /** Which kind of call the step answers (both by default). */
  readonly only?: "call" | "stream"
}

interface Native {
  readonly name: S.Protocol
  readonly endpoint: (upstream: SimulatedUpstream.SimulatedUpstream, key: string) => Provider.Endpoint
  /** The header that carries the key. */
  readonly keyHeader: string
  readonly cases: ReadonlyArray<Case>
}

const anthropic: Native = {
  name: "anthropic",
  endpoint: (upstream, key) => Anthropic.endpoint({ baseUrl: upstream.anthropicBaseUrl, apiKey: Redacted.make(key) }),
  keyHeader: "x-api-key",
  cases: [
    {
      label: "429 rate_limit_error with retry-after",
      step: S.rateLimited({ retryAfter: 2 }),
      tag: "RateLimited",
      status: 429,
      retryAfterMillis: 2000
    },
    { label: "429 spend limit reached", step: S.quotaExhausted(), tag: "QuotaExhausted", status: 429 },
    {
      label: "400 credit balance too low",
      step: S.fail(400, { code: "insufficient_quota" }),
      tag: "QuotaExhausted",
      status: 400
    },
    { label: "400 prompt is too long", step: S.contextLengthExceeded(), tag: "ContextLengthExceeded", status: 400 },
    { label: "400 invalid_request_error", step: S.fail(400), tag: "BadRequest", status: 400 },
    { label: "401 authentication_error", step: S.unauthorized(), tag: "AuthenticationFailed", status: 401 },
    { label: "402 billing_error", step: S.fail(402), tag: "QuotaExhausted", status: 402 },
    { label: "403 permission_error", step: S.forbidden(), tag: "PermissionDenied", status: 403 },
    { label: "404 not_found_error", step: S.notFound(), tag: "ModelNotFound", status: 404 },
    { label: "413 request_too_large", step: S.fail(413), tag: "ContextLengthExceeded", status: 413 },
    { label: "500 api_error", step: S.serverError(500), tag: "ServerError", status: 500 },
    { label: "504 timeout_error", step: S.serverError(504), tag: "Timeout", status: 504 },
    { label: "529 overloaded_error", step: S.serverError(529), tag: "ServiceUnavailable", status: 529 },
    { label: "503", step: S.unavailable(), tag: "ServiceUnavailable", status: 503 },
    {
      label: "529 from a proxy, not JSON",
      step: S.fail(529, { body: "<html>overloaded</html>" }),
      tag: "ServiceUnavailable",
      status: 529
    }
  ]
}

const geminiError = (code: number, status: string, message: string, details?: ReadonlyArray<unknown>) => ({
  error: { code, message, status, ...(details === undefined ? {} : { details }) }
})
const blockedPrompt = { promptFeedback: { blockReason: "SAFETY" }, usageMetadata: { promptTokenCount: 4 } }

const gemini: Native = {
  name: "gemini",
  endpoint: (upstream, key) => Gemini.endpoint({ baseUrl: upstream.geminiBaseUrl, apiKey: Redacted.make(key) }),
  keyHeader: "x-goog-api-key",
  cases: [
    {
      label: "429 RESOURCE_EXHAUSTED per minute, Retry-After",
      step: S.rateLimited({ retryAfter: 2 }),
      tag: "RateLimited",
      status: 429,
      retryAfterMillis: 2000
    },
    {
      label: "429 RESOURCE_EXHAUSTED with RetryInfo",
      step: S.fail(429, {
        body: geminiError(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).", [
          { "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: "36s" }
        ])
      }),
      tag: "RateLimited",
      status: 429,
      retryAfterMillis: 36000
    },
    { label: "429 RESOURCE_EXHAUSTED per day", step: S.quotaExhausted(), tag: "QuotaExhausted", status: 429 },
    {
      label: "400 INVALID_ARGUMENT token limit",
      step: S.contextLengthExceeded(),
      tag: "ContextLengthExceeded",
      status: 400
    },
    { label: "400 INVALID_ARGUMENT", step: S.fail(400), tag: "BadRequest", status: 400 },
    {
      label: "400 API_KEY_INVALID",
      step: S.fail(400, { code: "invalid_api_key" }),
      tag: "AuthenticationFailed",
      status: 400
    },
    {
      label: "400 FAILED_PRECONDITION (billing, region)",
      step: S.fail(400, {
        body: geminiError(
          400,
          "FAILED_PRECONDITION",
          "Gemini API free tier is not available in your country. Please enable billing on your project in Google AI Studio."
        )
      }),
      tag: "PermissionDenied",
      status: 400
    },
    { label: "401 UNAUTHENTICATED", step: S.unauthorized(), tag: "AuthenticationFailed", status: 401 },
    { label: "403 PERMISSION_DENIED", step: S.forbidden(), tag: "PermissionDenied", status: 403 },
    { label: "404 NOT_FOUND", step: S.notFound(), tag: "ModelNotFound", status: 404 },
    { label: "409 ABORTED", step: S.fail(409), tag: "ServiceUnavailable", status: 409 },
    { label: "500 INTERNAL", step: S.serverError(500), tag: "ServerError", status: 500 },
    { label: "503 UNAVAILABLE", step: S.unavailable(), tag: "ServiceUnavailable", status: 503 },
    { label: "504 DEADLINE_EXCEEDED", step: S.serverError(504), tag: "Timeout", status: 504 },
    {
      label: "502 from a proxy, not JSON",
      step: S.fail(502, { body: "<html>bad gateway</html>" }),
      tag: "ServerError",
      status: 502
    },
    {
      label: "a prompt blocked by promptFeedback.blockReason (call)",
      step: S.fail(200, { body: blockedPrompt }),
      tag: "ContentFiltered",
      status: undefined,
      only: "call"
    },
    {
      label: "a prompt blocked by promptFeedback.blockReason (stream)",
      step: S.fail(200, {
        body: `data: ${JSON.stringify(blockedPrompt)}\r\n\r\n`,
        headers: { "content-type": "text/event-stream" }
      }),
      tag: "ContentFiltered",
      status: undefined,
      only: "stream"
    }
  ]
}

const protocols: ReadonlyArray<Native> = [anthropic, gemini]

const leaks = (key: string, error: RouterError.AnyError) => {
  const trail = "trail" in error ? error.trail ?? [] : []
  return [
    error.message,
    String(error),
    JSON.stringify(error),
    Attempt.formatTimeline(trail),
    JSON.stringify(trail),
    ...trail.map((a) => a.error?.message ?? "")
  ].filter((t) => t.includes(key))
}

const suite = (clientName: string, client: Layer.Layer<HttpClient.HttpClient>) => {
  const run = runWith(client)
  for (const p of protocols) {
    describe(`${p.name} over ${clientName}`, () => {
      it.live("every error status maps to its failure mode, for a call and for a stream", () =>
        run(Effect.gen(function*() {
          const script: Record<string, ReadonlyArray<S.Step>> = {}
          p.cases.forEach((c, i) => script[`m${i}`] = [c.step])
          const upstream = yield* SimulatedUpstream.make({ apiKey: KEY, script })
          const endpoint = p.endpoint(upstream, KEY)
          const seen: Array<unknown> = []
          for (let i = 0; i < p.cases.length; i++) {
            const router = yield* Router.make({ models: [Model.make({ name: `m${i}`, endpoint })], ...once })
            const only = p.cases[i]!.only
            const errors = [
              ...(only === "stream" ? [] : [yield* Effect.flip(router.generate(hi))]),
              ...(only === "call" ? [] : [yield* Effect.flip(Router.collect(router.stream(hi)))])
            ]
            for (const error of errors) {
              const e = error as RouterError.AttemptError
              seen.push([p.cases[i]!.label, e._tag, e.status, e.retryAfterMillis])
            }
          }
          expect(seen).toEqual(
            p.cases.flatMap((c) => {
              const row = [c.label, c.tag, c.status, c.retryAfterMillis]
              return c.only === undefined ? [row, row] : [row]
            })
          )
        })))

      it.live("a stream end to end: text and tool calls, split in 3-byte reads with CRLF, usage, the served model", () =>
        run(Effect.gen(function*() {
          const upstream = yield* SimulatedUpstream.make({
            apiKey: KEY,
            wire: { splitEvery: 3, lineEnding: "\r\n" },
            script: {
              "m/1": [S.succeed({
                text: "Grüße 🌍 from the wire",
                toolCalls: [{ id: "call_1", name: "lookup", arguments: { q: "a b" } }],
                usage: { promptTokens: 9, completionTokens: 6 }
              })]
            }
          })
          const router = yield* Router.make({
            models: [Model.make({ name: "m/1", endpoint: p.endpoint(upstream, KEY) })],
            ...once
          })
          const response = yield* Router.collect(router.stream(hi))
          expect(response.text).toBe("Grüße 🌍 from the wire")
          expect(response.choices[0]!.toolCalls.map((t) => [t.id, t.name, JSON.parse(t.arguments)])).toEqual([
            ["call_1", "lookup", { q: "a b" }]
          ])
          expect(response.choices[0]!.finishReason).toBe("tool_calls")
          expect(response.usage).toEqual({ promptTokens: 9, completionTokens: 6, totalTokens: 15 })
          expect(response.model).toBe("m/1")
          const call = yield* router.generate(hi)
          expect([call.text, call.choices[0]!.finishReason, call.usage?.totalTokens]).toEqual([
            "Grüße 🌍 from the wire",
            "tool_calls",
            15
          ])
          expect(upstream.requests.map((r) => [r.protocol, r.model, r.stream])).toEqual([
            [p.name, "m/1", true],
            [p.name, "m/1", false]
          ])
        })))

      it.live("stream failures: in-band error before content falls back, after content interrupts; cut; truncated", () =>
        run(Effect.gen(function*() {
          const upstream = yield* SimulatedUpstream.make({
            apiKey: KEY,
            script: {
              early: [S.inBandError({ afterChunks: 0, type: "overloaded", message: "Overloaded" })],
              late: [S.inBandError({ afterChunks: 2, message: "boom" })],
              cut: [S.cut({ afterChunks: 1 })],
              short: [S.endWithoutFinish({ afterChunks: 1 })],
              ok: [S.succeed({ text: "fine" })]
            }
          })
          const endpoint = p.endpoint(upstream, KEY)
          const chain = (...names: ReadonlyArray<string>) =>
            Router.make({ models: names.map((name) => Model.make({ name, endpoint })), ...once })
          const fell = yield* Router.collect((yield* chain("early", "ok")).stream(hi))
          expect(fell.text).toBe("fine")
          expect(fell.trail.map((a) => `${a.model}:${a.outcome}:${a.error?._tag ?? ""}`)).toEqual([
            "early:fallback:ServiceUnavailable",
            "ok:success:"
          ])
          for (
            const [name, reason, cause] of [
              ["late", "in-band-error", "ServerError"],
              ["cut", "cut", "NetworkError"],
              ["short", "truncated", "MalformedResponse"]
            ] as const
          ) {
            const error = yield* Effect.flip(Router.collect((yield* chain(name, "ok")).stream(hi)))
            expect(error._tag).toBe("StreamInterrupted")
            const interrupted = error as RouterError.StreamInterrupted
            expect([name, interrupted.reason, interrupted.cause?._tag, interrupted.text.length > 0]).toEqual([
              name,
              reason,
              cause,
              true
            ])
          }
        })))

      it.live("the key goes only in its header and never into an error, even when the server echoes it", () =>
        run(Effect.gen(function*() {
          const key = "plain-native-secret-42"
          const upstream = yield* SimulatedUpstream.make({
            script: {
              a: [S.unauthorized({ message: `key ${key} is not valid`, code: null })],
              b: [S.inBandError({ afterChunks: 0, message: `upstream says ${key}` })],
              c: [S.fail(400, { body: `plain text page mentioning ${key}` })]
            }
          })
          const endpoint = p.endpoint(upstream, key)
          const router = yield* Router.make({
            models: ["a", "b", "c"].map((name) => Model.make({ name, endpoint })),
            ...once
          })
          for (
            const error of [
              yield* Effect.flip(router.generate(hi)),
              yield* Effect.flip(Router.collect(router.stream(hi)))
            ]
          ) {
            expect(error._tag).toBe("BadRequest")
            const trail = "trail" in error ? error.trail ?? [] : []
            expect(trail.map((a) => a.error?._tag)).toEqual(["AuthenticationFailed", "ServerError", "BadRequest"])
            expect(trail.map((a) => a.error?.body ?? "").join(" ")).toContain("<redacted>")
            expect(leaks(key, error)).toEqual([])
          }
          for (const request of upstream.requests) {
            expect(request.headers[p.keyHeader]).toBe(key)
            expect(request.query).not.toContain(key)
            expect(request.headers["authorization"]).toBeUndefined()
          }
        })))
    })
  }
}

suite("FetchHttpClient", FetchHttpClient.layer)
suite("FetchRouterHttpClient", FetchRouterHttpClient.layer)
suite("RouterHttpClient (node:http)", Layer.orDie(RouterHttpClient.layerNodeHttp))

// Last: importing @effect/platform-node installs undici as the process-wide fetch dispatcher.
suite(
  "NodeRouterHttpClient.layerUndici",
  Layer.unwrapEffect(
    Effect.map(Effect.promise(() => import("../src/node/NodeRouterHttpClient.js")), (m) => m.layerUndici)
  )
)
