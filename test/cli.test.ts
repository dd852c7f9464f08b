/**
 * The `llm-router` command, run in-process against the simulated upstream on 127.0.0.1 (real sockets, real clock),
 * and the `npm start` demo run as a child process.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { Attempt, formatAttempt } from "../src/Attempt.js"
import * as Cli from "../src/cli/cli.js"
import * as RouterError from "../src/RouterError.js"
import * as SimulatedUpstream from "../src/testing/SimulatedUpstream.js"
import * as S from "../src/testing/UpstreamScript.js"

const KEY = "sk-cli-test-key"

interface Ran {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
  /** Each stdout write, with the time it happened. */
  readonly writes: ReadonlyArray<{ readonly text: string; readonly at: number }>
}

const noStdin = {
  isTTY: true,
  read: () => Promise.reject(new Error("stdin must not be read"))
}

const cli = (
  args: ReadonlyArray<string>,
  options: { readonly env?: Record<string, string>; readonly stdin?: Cli.Io["stdin"] } = {}
) =>
  Effect.promise(async (): Promise<Ran> => {
    const writes: Array<{ text: string; at: number }> = []
    const errors: Array<string> = []
    const code = await Cli.run(args, {
      stdout: (text) => writes.push({ text, at: Date.now() }),
      stderr: (text) => errors.push(text),
      env: options.env ?? {},
      stdin: options.stdin ?? noStdin
    })
    return { code, stdout: writes.map((w) => w.text).join(""), stderr: errors.join(""), writes }
  })

// Points both protocols at the upstream, with the right keys, through the environment.
const envFor = (upstream: SimulatedUpstream.SimulatedUpstream): Record<string, string> => ({
  OPENAI_BASE_URL: upstream.openAiBaseUrl,
  OPENAI_API_KEY: KEY,
  GPT_ROUTER_API_BASE: upstream.gptRouterBaseUrl,
  GPT_ROUTER_API_KEY: KEY
})

/** The single stderr line, without the prefix; fails unless stderr is exactly one line with no stack frames. */
const oneErrorLine = (stderr: string): string => {
  expect(stderr).not.toMatch(/^\s+at /m)
  expect(stderr.endsWith("\n")).toBe(true)
  const lines = stderr.slice(0, -1).split("\n")
  expect(lines).toHaveLength(1)
  expect(lines[0]!.startsWith("llm-router: ")).toBe(true)
  return lines[0]!.slice("llm-router: ".length)
}

const upstreamWith = (script: S.Script) => SimulatedUpstream.make({ script, apiKey: KEY })

describe("llm-router CLI: native protocols", () => {
  it.live("-m anthropic:… and -m gemini:… route natively, falling back across protocols", () =>
    Effect.gen(function*() {
      const upstream = yield* upstreamWith({
        "claude-x": [S.serverError(529)],
        "gemini-x": [S.succeed({ text: "from gemini", usage: { promptTokens: 3, completionTokens: 2 } })]
      })
      const ran = yield* cli(
        [
          "-m",
          "anthropic:claude-x",
          "-m",
          "gemini:gemini-x",
          "--gemini-base-url",
          upstream.geminiBaseUrl,
          "--json",
          "--max-attempts",
          "1",
          "hi"
        ],
        {
          env: {
            ANTHROPIC_BASE_URL: upstream.anthropicBaseUrl,
            ANTHROPIC_API_KEY: KEY,
            GOOGLE_API_KEY: KEY
          }
        }
      )
      expect(ran.stderr).toBe("")
      expect(ran.code).toBe(0)
      const out = JSON.parse(ran.stdout)
      expect(out).toMatchObject({ ok: true, text: "from gemini", model: "gemini-x", provider: "google" })
      expect(out.trail.map((a: { provider: string; outcome: string }) => `${a.provider}:${a.outcome}`)).toEqual([
        "anthropic:fallback",
        "google:success"
      ])
      expect(upstream.requests.map((r) => [r.protocol, r.headers["x-api-key"], r.headers["x-goog-api-key"]])).toEqual([
        ["anthropic", KEY, undefined],
        ["gemini", undefined, KEY]
      ])
    }).pipe(Effect.scoped))
})

describe("llm-router CLI", () => {
  it.live("--json: one object with the text, the served model, usage and the trail", () =>
    Effect.gen(function*() {
      const upstream = yield* upstreamWith({
        "gpt-4o": [S.succeed({ text: "Hello there", usage: { promptTokens: 7, completionTokens: 2 } })]
      })
      // Base URL from the flag, key from the environment.
      const ran = yield* cli(["-m", "openai:gpt-4o", "--json", "--openai-base-url", upstream.openAiBaseUrl, "Say hi"], {
        env: { OPENAI_API_KEY: KEY }
      })
      expect(ran.code).toBe(0)
      expect(ran.stderr).toBe("")
      expect(ran.stdout.split("\n")).toHaveLength(2)
      const out = JSON.parse(ran.stdout)
      expect(out).toMatchObject({
        ok: true,
        text: "Hello there",
        model: "gpt-4o",
        provider: "openai",
        usage: { promptTokens: 7, completionTokens: 2, totalTokens: 9 },
        finishReason: "stop"
      })
      expect(out.trail).toHaveLength(1)
      expect(out.trail[0]).toMatchObject({
        index: 1,
        attempt: 1,
        model: "gpt-4o",
        provider: "openai",
        outcome: "success"
      })
      expect(out.trail[0].error).toBeUndefined()
      expect(upstream.requests).toHaveLength(1)
      expect(upstream.requests[0]!.stream).toBe(false)
      expect((upstream.requests[0]!.body as any).messages).toEqual([{ role: "user", content: "Say hi" }])
    }).pipe(Effect.scoped))

  it.live("plain text: the answer and one newline on stdout, nothing on stderr", () =>
    Effect.gen(function*() {
      const upstream = yield* upstreamWith({ "gpt-4o": [S.succeed({ text: "Hello there" })] })
      const ran = yield* cli(["-m", "openai:gpt-4o", "-p", "Say hi"], { env: envFor(upstream) })
      expect(ran).toMatchObject({ code: 0, stdout: "Hello there\n", stderr: "" })
    }).pipe(Effect.scoped))

  it.live("--stream prints each token as it arrives, then one newline", () =>
    Effect.gen(function*() {
      const upstream = yield* upstreamWith({
        "gpt-4o": [S.succeed({ chunks: ["Hel", "lo ", "wor", "ld"], chunkDelayMs: 150 })]
      })
      const ran = yield* cli(["-m", "openai:gpt-4o", "--stream", "Say hi"], { env: envFor(upstream) })
      expect(ran.code).toBe(0)
      expect(ran.stderr).toBe("")
      expect(ran.stdout).toBe("Hello world\n")
      expect(ran.writes.map((w) => w.text)).toEqual(["Hel", "lo ", "wor", "ld", "\n"])
      // Live, not buffered: the server sends them 3 × 150 ms apart, and buffered output would come out all at once.
      expect(ran.writes[3]!.at - ran.writes[0]!.at).toBeGreaterThanOrEqual(250)
      expect(upstream.requests[0]!.stream).toBe(true)
    }).pipe(Effect.scoped))

  it.live("fallback from OpenAI-compatible to GPTRouter is in the JSON trail", () =>
    Effect.gen(function*() {
      const upstream = yield* upstreamWith({
        "gpt-4o": [S.unavailable()],
        "claude-3-haiku": [S.succeed({ text: "From Claude" })]
      })
      const ran = yield* cli(
        ["-m", "openai:gpt-4o", "-m", "gptrouter:anthropic/claude-3-haiku", "--max-attempts", "1", "--json", "hi"],
        { env: envFor(upstream) }
      )
      expect(ran.code).toBe(0)
      expect(ran.stderr).toBe("")
      const out = JSON.parse(ran.stdout)
      expect(out).toMatchObject({ ok: true, text: "From Claude", model: "claude-3-haiku", provider: "anthropic" })
      expect(out.trail.map((a: any) => [a.index, a.model, a.provider, a.outcome, a.error?.tag, a.error?.status]))
        .toEqual([
          [1, "gpt-4o", "openai", "fallback", "ServiceUnavailable", 503],
          [2, "claude-3-haiku", "anthropic", "success", undefined, undefined]
        ])
      expect(upstream.requests.map((r) => [r.protocol, r.model])).toEqual([
        ["openai", "gpt-4o"],
        ["gptrouter", "claude-3-haiku"]
      ])
      expect((upstream.requests[1]!.body as any).data[0]).toMatchObject({
        modelName: "claude-3-haiku",
        providerName: "anthropic",
        order: 1
      })
    }).pipe(Effect.scoped))

  it.live("--verbose prints each attempt on stderr as it ends; stdout keeps only the answer", () =>
    Effect.gen(function*() {
      const upstream = yield* upstreamWith({
        "gpt-4o": [S.unavailable()],
        "claude-3-haiku": [S.succeed({ chunks: ["From ", "Claude"] })]
      })
      const ran = yield* cli(
        [
          "-m",
          "openai:gpt-4o",
          "-m",
          "gptrouter:anthropic/claude-3-haiku",
          "--max-attempts",
          "1",
          "--stream",
          // Short flags grouped: -v and -p with its value.
          "-vp",
          "hi"
        ],
        { env: envFor(upstream) }
      )
      expect(ran.code).toBe(0)
      expect(ran.stdout).toBe("From Claude\n")
      expect((upstream.requests[0]!.body as any).messages).toEqual([{ role: "user", content: "hi" }])
      expect((upstream.requests[1]!.body as any).data[0].promptParams.messages).toEqual([
        { role: "user", content: "hi" }
      ])
      const lines = ran.stderr.trimEnd().split("\n")
      expect(lines).toHaveLength(2)
      expect(lines[0]).toMatch(/^llm-router: \+\d+\.\d\ds openai\/gpt-4o #1: 503 service unavailable → next model$/)
      expect(lines[1]).toMatch(/^llm-router: \+\d+\.\d\ds anthropic\/claude-3-haiku #1: ok after \d+ms → served$/)
    }).pipe(Effect.scoped))

  describe("--health and --no-health", () => {
    // A 404 opens a model's breaker at once (no retry fixes it), so one call is enough to see a breaker open.
    const script = { a: [S.notFound()], b: [S.succeed({ text: "From b" })] }
    const args = ["-m", "openai:a", "-m", "openai:b", "--max-attempts", "1"]

    it.live("--health prints each model's health on stderr after the answer; without it, nothing", () =>
      Effect.gen(function*() {
        const upstream = yield* upstreamWith(script)
        const ran = yield* cli([...args, "--health", "hi"], { env: envFor(upstream) })
        expect(ran.code).toBe(0)
        expect(ran.stdout).toBe("From b\n")
        const lines = ran.stderr.trimEnd().split("\n")
        expect(lines).toHaveLength(4)
        expect(lines[0]).toBe("llm-router: health after the call")
        expect(lines[1]).toMatch(/^llm-router: {3}model +state +failures in a row +trips +in flight +reopens in +why$/)
        // a: opened by the 404 for the fatal cooldown (10 minutes); b: closed, nothing against it.
        expect(lines[2]).toMatch(/^llm-router: {3}openai\/a +open +0 +1 +0 +(10m|9m 59s) +ModelNotFound$/)
        expect(lines[3]).toMatch(/^llm-router: {3}openai\/b +closed +0 +0 +0 +- +-$/)

        upstream.reset(script)
        expect(yield* cli([...args, "hi"], { env: envFor(upstream) })).toMatchObject({
          code: 0,
          stdout: "From b\n",
          stderr: ""
        })
      }).pipe(Effect.scoped))

    it.live("--health --json: a health field, one entry per model of the list, on success and on failure", () =>
      Effect.gen(function*() {
        const upstream = yield* upstreamWith({ ...script, c: [S.unavailable()] })
        const before = Date.now()
        const ran = yield* cli([...args, "--health", "--json", "hi"], { env: envFor(upstream) })
        expect(ran.code).toBe(0)
        expect(ran.stderr).toBe("")
        const out = JSON.parse(ran.stdout)
        expect(out).toMatchObject({ ok: true, text: "From b", model: "b" })
        expect(out.health).toHaveLength(2)
        expect(out.health[0]).toMatchObject({
          model: "a",
          provider: "openai",
          state: "open",
          consecutiveFailures: 0,
          trips: 1,
          reason: "ModelNotFound",
          inFlight: 0,
          probing: false
        })
        // The fatal cooldown: 10 minutes from the 404.
        expect(out.health[0].reopensAt).toBeGreaterThanOrEqual(before + 599_000)
        expect(out.health[0].reopensAt).toBeLessThanOrEqual(Date.now() + 600_000)
        expect(out.health[1]).toMatchObject({
          model: "b",
          state: "closed",
          consecutiveFailures: 0,
          recentRequests: 1,
          recentFailures: 0,
          trips: 0,
          reopensAt: null,
          reason: null
        })
        // The key never appears, not even in the deployment's id.
        expect(ran.stdout).not.toContain(KEY)

        // A failed call: still there, after the error, with the failure counted against the model.
        const failed = yield* cli(["-m", "openai:c", "--max-attempts", "1", "--health", "--json", "hi"], {
          env: envFor(upstream)
        })
        expect(failed.code).toBe(Cli.exitCodes.ServiceUnavailable.code)
        const failedOut = JSON.parse(failed.stdout)
        expect(failedOut).toMatchObject({ ok: false, error: { tag: "ServiceUnavailable" } })
        expect(failedOut.health).toEqual([
          expect.objectContaining({ model: "c", state: "closed", consecutiveFailures: 1, recentFailures: 1, trips: 0 })
        ])
        const text = yield* cli(["-m", "openai:c", "--max-attempts", "1", "--health", "hi"], { env: envFor(upstream) })
        const lines = text.stderr.trimEnd().split("\n")
        expect(lines[0]).toMatch(/^llm-router: openai\/c \(attempt 1\): service unavailable \(HTTP 503\)/)
        expect(lines[1]).toBe("llm-router: health after the call")
        expect(lines[3]).toMatch(/^llm-router: {3}openai\/c +closed +1 +0 +0 +- +-$/)
        expect(lines).toHaveLength(4)

        // Without --health the objects have no health field.
        upstream.reset(script)
        expect(JSON.parse((yield* cli([...args, "--json", "hi"], { env: envFor(upstream) })).stdout).health)
          .toBeUndefined()
      }).pipe(Effect.scoped))

    it.live("--no-health turns the breakers off: a model whose breaker opened is tried again later in the list", () =>
      Effect.gen(function*() {
        // The same model twice: its breaker opens on the 404, so by default its second entry is skipped.
        const twice = { a: [S.notFound(), S.succeed({ text: "From a" })], b: [S.succeed({ text: "From b" })] }
        const upstream = yield* upstreamWith(twice)
        const list = ["-m", "openai:a", "-m", "openai:a", "-m", "openai:b", "--max-attempts", "1", "--json", "hi"]
        const on = JSON.parse((yield* cli(list, { env: envFor(upstream) })).stdout)
        expect(on.trail.map((a: any) => `${a.model}:${a.outcome}`)).toEqual(["a:fallback", "a:skipped", "b:success"])
        expect(on.trail[1].note).toMatch(/^circuit open: ModelNotFound; reopens in /)
        expect(on.trail[1].reopensAt).toBeGreaterThan(Date.now())
        expect(upstream.requests.map((r) => r.model)).toEqual(["a", "b"])

        upstream.reset(twice)
        const off = JSON.parse((yield* cli([...list, "--no-health"], { env: envFor(upstream) })).stdout)
        expect(off).toMatchObject({ ok: true, text: "From a" })
        expect(off.trail.map((a: any) => `${a.model}:${a.outcome}`)).toEqual(["a:fallback", "a:success"])
        expect(upstream.requests.map((r) => r.model)).toEqual(["a", "a"])
      }).pipe(Effect.scoped))
  })

  describe("each failure mode: its exit code, one line on stderr, its tag in --json", () => {
    interface FailureCase {
      readonly tag: Cli.ExitCodeName
      readonly step?: S.Step
      readonly args?: ReadonlyArray<string>
      /** Replaces the environment's entries. */
      readonly env?: Record<string, string>
      /** The stderr line (after `llm-router: `): exact, or its start. */
      readonly line: string | { readonly startsWith: string }
      readonly stdout?: string
      /** Outcomes of the JSON trail. */
      readonly trail: ReadonlyArray<string>
    }
    const cases: ReadonlyArray<FailureCase> = [
      {
        tag: "InvalidRequest",
        args: ["--temperature", "5"],
        line: "invalid request: temperature: Expected a number between 0 and 2, actual 5",
        trail: []
      },
      {
        tag: "RateLimited",
        step: S.rateLimited({ retryAfter: "1" }),
        line: { startsWith: "openai/m (attempt 1): rate limited (HTTP 429); server asked to wait 1s: " },
        trail: ["failed"]
      },
      {
        tag: "QuotaExhausted",
        step: S.quotaExhausted(),
        line: { startsWith: "openai/m (attempt 1): quota exhausted (HTTP 429): " },
        trail: ["failed"]
      },
      {
        tag: "AuthenticationFailed",
        step: S.succeed(),
        env: { OPENAI_API_KEY: "sk-wrong" },
        line: { startsWith: "openai/m (attempt 1): authentication failed (HTTP 401)" },
        trail: ["failed"]
      },
      {
        tag: "PermissionDenied",
        step: S.forbidden(),
        line: { startsWith: "openai/m (attempt 1): permission denied (HTTP 403)" },
        trail: ["failed"]
      },
      {
        tag: "BadRequest",
        step: S.fail(422),
        line: { startsWith: "openai/m (attempt 1): bad request (HTTP 422)" },
        trail: ["failed"]
      },
      {
        tag: "ContextLengthExceeded",
        step: S.contextLengthExceeded(),
        line: { startsWith: "openai/m (attempt 1): context length exceeded (HTTP 400)" },
        trail: ["failed"]
      },
      {
        tag: "ContentFiltered",
        step: S.contentFiltered(),
        line: { startsWith: "openai/m (attempt 1): content filtered (HTTP 400)" },
        trail: ["failed"]
      },
      {
        tag: "ModelNotFound",
        step: S.notFound(),
        line: { startsWith: "openai/m (attempt 1): model not found (HTTP 404)" },
        trail: ["failed"]
      },
      {
        tag: "ServerError",
        step: S.serverError(502),
        line: { startsWith: "openai/m (attempt 1): server error (HTTP 502)" },
        trail: ["failed"]
      },
      {
        tag: "ServiceUnavailable",
        step: S.unavailable(),
        line: { startsWith: "openai/m (attempt 1): service unavailable (HTTP 503)" },
        trail: ["failed"]
      },
      {
        tag: "Timeout",
        step: S.hang(),
        args: ["--timeout", "200ms"],
        line: "openai/m (attempt 1): timed out (attempt) after 200ms",
        trail: ["failed"]
      },
      {
        tag: "MalformedResponse",
        step: S.malformed({ kind: "not-json" }),
        line: { startsWith: "openai/m (attempt 1): malformed response: " },
        trail: ["failed"]
      },
      {
        tag: "DeadlineExceeded",
        step: S.hang(),
        // The long form, as Effect's Duration reads it.
        args: ["--deadline", "300 millis"],
        line: "deadline of 300ms exceeded during openai/m after 1 attempt(s)",
        trail: ["failed"]
      },
      {
        tag: "StreamInterrupted",
        step: S.cut({ chunks: ["one ", "two ", "three"], afterChunks: 2 }),
        args: ["--stream"],
        line: { startsWith: "openai/m: stream interrupted (cut) after " },
        // The tokens that arrived stay printed; the line is ended before the error.
        stdout: "one two \n",
        trail: ["success"]
      }
    ]

    for (const c of cases) {
      it.live(`${c.tag} → exit ${Cli.exitCodes[c.tag].code}`, () =>
        Effect.gen(function*() {
          const upstream = yield* upstreamWith({ m: c.step === undefined ? [] : [c.step] })
          const env = { ...envFor(upstream), ...c.env }
          const args = ["-m", "openai:m", "--max-attempts", "1", ...(c.args ?? []), "hi"]

          const text = yield* cli(args, { env })
          expect(text.code).toBe(Cli.exitCodes[c.tag].code)
          expect(text.stdout).toBe(c.stdout ?? "")
          const line = oneErrorLine(text.stderr)
          if (typeof c.line === "string") expect(line).toBe(c.line)
          else expect(line.startsWith(c.line.startsWith)).toBe(true)

          const json = yield* cli([...args, "--json"], { env })
          expect(json.code).toBe(Cli.exitCodes[c.tag].code)
          expect(oneErrorLine(json.stderr)).toBe(line)
          const out = JSON.parse(json.stdout)
          expect(out.ok).toBe(false)
          expect(out.error.tag).toBe(c.tag)
          expect(out.error.message).toBe(line)
          expect(out.trail.map((a: any) => a.outcome)).toEqual(c.trail)
          if (c.tag === "StreamInterrupted") expect(out.error).toMatchObject({ reason: "cut", text: "one two " })
          expect(upstream.requests).toHaveLength(c.tag === "InvalidRequest" ? 0 : 2)
        }).pipe(Effect.scoped))
    }

    it.live(`NetworkError → exit ${Cli.exitCodes.NetworkError.code}`, () =>
      Effect.gen(function*() {
        // A port that was just listening and is now closed: the connection is refused.
        const closed = yield* Effect.promise(() => SimulatedUpstream.start({ script: {} }))
        yield* Effect.promise(() => closed.close())
        const args = ["-m", "openai:m", "--max-attempts", "1", "--openai-base-url", closed.openAiBaseUrl, "hi"]
        const text = yield* cli(args)
        expect(text.code).toBe(15)
        expect(oneErrorLine(text.stderr).startsWith("openai/m (attempt 1): network failure: ")).toBe(true)
        const json = yield* cli([...args, "--json"])
        expect(json.code).toBe(15)
        expect(JSON.parse(json.stdout).error.tag).toBe("NetworkError")
      }))

    it.live("every model failing: the exit code of the last failure, the whole trail in --json", () =>
      Effect.gen(function*() {
        const upstream = yield* upstreamWith({ a: [S.unavailable()], b: [S.notFound()] })
        const ran = yield* cli(["-m", "openai:a", "-m", "gptrouter:b", "--max-attempts", "1", "--json", "hi"], {
          env: envFor(upstream)
        })
        expect(ran.code).toBe(Cli.exitCodes.ModelNotFound.code)
        const out = JSON.parse(ran.stdout)
        expect(out.error.tag).toBe("ModelNotFound")
        expect(out.trail.map((a: any) => [a.model, a.outcome, a.error.tag])).toEqual([
          ["a", "fallback", "ServiceUnavailable"],
          ["b", "failed", "ModelNotFound"]
        ])
      }).pipe(Effect.scoped))
  })

  it.live("aborting the signal (Ctrl-C) mid-stream: exit 130, the line ended, the connection closed", () =>
    Effect.gen(function*() {
      const upstream = yield* upstreamWith({ "gpt-4o": [S.stall({ chunks: ["one ", "two"], afterChunks: 1 })] })
      const controller = new AbortController()
      const writes: Array<string> = []
      const errors: Array<string> = []
      const running = Cli.run(["-m", "openai:gpt-4o", "--stream", "hi"], {
        stdout: (text) => {
          writes.push(text)
          // The first token is out: the user presses Ctrl-C.
          if (text === "one ") controller.abort()
        },
        stderr: (text) => errors.push(text),
        env: envFor(upstream),
        signal: controller.signal
      })
      const code = yield* Effect.promise(() => running)
      expect(code).toBe(130)
      expect(writes).toEqual(["one ", "\n"])
      expect(errors).toEqual(["llm-router: interrupted\n"])
      yield* Effect.promise(() => upstream.waitForClosedConnections(1, 2_000))
    }).pipe(Effect.scoped))

  it("the exit-code table: distinct codes, one per error tag", () => {
    const codes = Object.values(Cli.exitCodes).map((e) => e.code)
    expect(new Set(codes).size).toBe(codes.length)
    expect(Cli.exitCodes.Ok.code).toBe(0)
    expect(Cli.exitCodes.Usage.code).toBe(2)
    expect(Cli.exitCodes.InvalidRequest.code).toBe(3)
    const tags = [
      ...RouterError.attemptErrorTagList,
      "NoModelAvailable",
      "DeadlineExceeded",
      "StreamInterrupted",
      "BudgetExceeded"
    ] as const
    expect(tags.map((tag) => Cli.exitCodes[tag].code)).toEqual(
      [4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 21, 17, 18, 19, 20]
    )
    expect(Cli.exitCodeOf(new RouterError.RouterConfigError({ option: "models", reason: "x" }))).toBe(2)
    expect(Cli.exitCodeOf(new RouterError.NoModelAvailable({ reason: "x" }))).toBe(17)
  })

  it.live("--help explains every flag and lists every exit code", () =>
    Effect.gen(function*() {
      const ran = yield* cli(["--help"])
      expect(ran.code).toBe(0)
      expect(ran.stderr).toBe("")
      const flags = [
        "-m, --model",
        "-p, --prompt",
        "--system",
        "--stream",
        "--json",
        "-v, --verbose",
        "--temperature",
        "--max-tokens",
        "--max-attempts",
        "--timeout",
        "--deadline",
        "--first-token-timeout",
        "--stall-timeout",
        "--openai-base-url",
        "--gptrouter-base-url",
        "--anthropic-base-url",
        "--gemini-base-url",
        "--health",
        "--no-health",
        "-h, --help"
      ]
      for (const flag of flags) expect(ran.stdout).toContain(flag)
      for (
        const name of [
          "OPENAI_API_KEY",
          "GPT_ROUTER_API_KEY",
          "OPENAI_BASE_URL",
          "GPT_ROUTER_API_BASE",
          "ANTHROPIC_API_KEY",
          "ANTHROPIC_BASE_URL",
          "GEMINI_API_KEY",
          "GOOGLE_API_KEY",
          "GEMINI_BASE_URL"
        ]
      ) {
        expect(ran.stdout).toContain(name)
      }
      for (const [name, { code, meaning }] of Object.entries(Cli.exitCodes)) {
        expect(ran.stdout).toMatch(
          new RegExp(`^ +${code} +${name} +${meaning.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`, "m")
        )
      }
      // What the timeouts bound, in the flags' own entries: the flag's line and the indented lines continuing it.
      const entry = (flag: string) => {
        const lines = ran.stdout.split("\n")
        const start = lines.findIndex((line) => new RegExp(`^ +(-\\w, )?${flag} `).test(line))
        expect(start).toBeGreaterThanOrEqual(0)
        const end = lines.findIndex((line, i) => i > start && !/^ {33}\S/.test(line))
        return lines.slice(start, end).join(" ").replace(/\s+/g, " ")
      }
      expect(entry("--timeout")).toMatch(
        /bounds each attempt\. For a stream it bounds the wait for the response headers/
      )
      expect(entry("--first-token-timeout")).toMatch(/bounds the wait for the first content of the stream/)
      expect(entry("--health")).toMatch(
        /print each model's health on stderr.*With --json it is the object's "health" field/
      )
      expect(entry("--no-health")).toMatch(/^ +--no-health +Turn the circuit breakers off\./)
      expect((yield* cli(["-h"])).stdout).toBe(ran.stdout)
      // Help wins over the rest of a valid command line, and does not run it.
      expect(yield* cli(["-m", "openai:x", "hi", "--help"])).toMatchObject({ code: 0, stdout: ran.stdout, stderr: "" })
    }))

  it.live("words after a flag stay the prompt, and after -- even words that look like flags", () =>
    Effect.gen(function*() {
      const upstream = yield* upstreamWith({ "gpt-4o": [S.succeed({ text: "A" }), S.succeed({ text: "B" })] })
      // A boolean flag takes no value: `no` is the prompt's first word.
      const afterFlag = yield* cli(["-m", "openai:gpt-4o", "--json", "no", "way"], { env: envFor(upstream) })
      expect(afterFlag.code).toBe(0)
      expect(JSON.parse(afterFlag.stdout)).toMatchObject({ ok: true, text: "A" })
      const forced = yield* cli(["-m", "openai:gpt-4o", "--", "-5", "--json"], { env: envFor(upstream) })
      expect(forced).toMatchObject({ code: 0, stdout: "B\n", stderr: "" })
      expect(upstream.requests.map((r) => (r.body as any).messages[0].content)).toEqual(["no way", "-5 --json"])
    }).pipe(Effect.scoped))

  it.live("bad flags and configuration: exit 2 with one line, nothing sent", () =>
    Effect.gen(function*() {
      const upstream = yield* upstreamWith({ "*": [S.succeed()] })
      const env = envFor(upstream)
      const bad: ReadonlyArray<[ReadonlyArray<string>, string, Record<string, string>?]> = [
        [["-m", "openai:x", "--bogus", "hi"], "unknown option --bogus (see llm-router --help)"],
        [
          ["-m", "openai:x", "--api-key", "sk-1", "hi"],
          "unknown option --api-key (keys are read only from OPENAI_API_KEY, GPT_ROUTER_API_KEY, ANTHROPIC_API_KEY " +
          "and GEMINI_API_KEY or GOOGLE_API_KEY) (see llm-router --help)"
        ],
        [["hi"], "at least one --model is needed, e.g. -m openai:gpt-4o-mini (see llm-router --help)"],
        [
          ["-m", "gpt-4o", "hi"],
          "--model \"gpt-4o\": expected via:name with via \"openai\", \"anthropic\", \"gemini\" or \"gptrouter\" " +
          "(e.g. openai:gpt-4o-mini, anthropic:claude-sonnet-4-5, gemini:gemini-2.5-flash, " +
          "gptrouter:anthropic/claude-3-haiku-20240307) (see llm-router --help)"
        ],
        [
          ["-m", "gptrouter:anthropic/", "hi"],
          "--model \"gptrouter:anthropic/\": expected gptrouter:name or gptrouter:provider/name (see llm-router --help)"
        ],
        [
          ["-m", "openai:x", "--timeout", "soon", "hi"],
          "--timeout: expected a positive duration such as 500ms, 2s, 1m or \"30 seconds\" (got \"soon\") " +
          "(see llm-router --help)"
        ],
        [
          ["-m", "openai:x", "--deadline", "0s", "hi"],
          "--deadline: expected a positive duration such as 500ms, 2s, 1m or \"30 seconds\" (got \"0s\") " +
          "(see llm-router --help)"
        ],
        [
          // A value that starts with - goes after =.
          ["-m", "openai:x", "--stream", "--stall-timeout=-1 seconds", "hi"],
          "--stall-timeout: expected a positive duration such as 500ms, 2s, 1m or \"30 seconds\" (got \"-1 seconds\") " +
          "(see llm-router --help)"
        ],
        [
          ["-m", "openai:x", "--temperature", "warm", "hi"],
          "--temperature: expected a number (got \"warm\") (see llm-router --help)"
        ],
        [
          ["-m", "openai:x", "--max-tokens", "1.5", "hi"],
          "--max-tokens: expected an integer (got \"1.5\") (see llm-router --help)"
        ],
        [
          ["-m", "openai:x", "--first-token-timeout", "1s", "hi"],
          "--first-token-timeout applies to streams only: add --stream (see llm-router --help)"
        ],
        [
          ["-m", "openai:x", "-p", "a", "b"],
          "give the prompt either with --prompt or as text, not both (extra: b) (see llm-router --help)"
        ],
        [["-m", "openai:x", "--prompt"], "--prompt needs a value (see llm-router --help)"],
        [["-m", "openai:x", "-m"], "--model needs a value (see llm-router --help)"],
        // The next word is a flag: the value was forgotten, rather than a prompt that starts with -.
        [
          ["-m", "openai:x", "-p", "--json"],
          "--prompt needs a value (a value that starts with - is written --prompt=-…) (see llm-router --help)"
        ],
        [
          ["-m", "-v", "hi"],
          "--model needs a value (a value that starts with - is written --model=-…) (see llm-router --help)"
        ],
        [["-m", "openai:x", "--json=yes", "hi"], "--json takes no value (see llm-router --help)"],
        [
          ["-m", "openai:x", "--promt", "hi"],
          "unknown option --promt (did you mean --prompt?) (see llm-router --help)"
        ],
        [["-m", "openai:x", "-p", "a", "-p", "b"], "--prompt is given more than once (see llm-router --help)"],
        [
          ["-m", "openai:x", "--timeout", "1s", "--timeout=2s", "hi"],
          "--timeout is given more than once (see llm-router --help)"
        ],
        [["-m", "openai:x", "--version", "hi"], "unknown option --version (see llm-router --help)"],
        [
          ["-m", "openai:x", "--health", "--no-health", "hi"],
          "--health shows the circuit breakers that --no-health turns off: give one or the other (see llm-router --help)"
        ],
        [
          ["-m", "openai:x", "--helth", "hi"],
          "unknown option --helth (did you mean --health?) (see llm-router --help)"
        ],
        [["-m", "openai:x", "hi", "-x"], "unknown option -x (see llm-router --help)"],
        [
          ["-m", "openai:x"],
          "no prompt: pass --prompt, text after the flags, or pipe it on stdin (see llm-router --help)"
        ],
        [
          ["-m", "openai:x", "--max-attempts", "0", "hi"],
          "invalid router configuration: retry.maxAttempts: must be an integer ≥ 1 (got 0)"
        ],
        [
          ["-m", "openai:x", "--openai-base-url", "ftp://example.com", "hi"],
          "invalid router configuration: models[0].endpoint.baseUrl: not an http(s) URL: \"ftp://example.com\""
        ],
        [
          ["-m", "gptrouter:x", "hi"],
          "invalid router configuration: GPT_ROUTER_API_KEY: is not set (needed by models[0] x)",
          { GPT_ROUTER_API_KEY: "" }
        ],
        [
          ["-m", "openai:x", "-m", "anthropic:claude-x", "hi"],
          "invalid router configuration: ANTHROPIC_API_KEY: is not set (needed by models[1] claude-x)"
        ],
        [
          ["-m", "gemini:gemini-x", "hi"],
          "invalid router configuration: GEMINI_API_KEY or GOOGLE_API_KEY: is not set (needed by models[0] gemini-x)",
          { GEMINI_API_KEY: "" }
        ],
        [["-m", "anthropic:", "hi"], "--model \"anthropic:\": the model name is empty (see llm-router --help)"]
      ]
      for (const [args, line, extraEnv] of bad) {
        const ran = yield* cli(args, { env: { ...env, ...extraEnv } })
        expect({ args, code: ran.code, stdout: ran.stdout }).toEqual({ args, code: 2, stdout: "" })
        expect(oneErrorLine(ran.stderr)).toBe(line)
      }
      expect(upstream.requests).toHaveLength(0)
    }).pipe(Effect.scoped))

  it.live("the prompt from stdin when it is piped, with --system, --temperature and --max-tokens", () =>
    Effect.gen(function*() {
      const upstream = yield* upstreamWith({ "gpt-4o": [S.succeed({ text: "Short." })] })
      const ran = yield* cli(
        ["-m", "openai:gpt-4o", "--system", "Be brief", "--temperature", "0.2", "--max-tokens", "64"],
        { env: envFor(upstream), stdin: { isTTY: false, read: () => Promise.resolve("Summarize this\nplease\n") } }
      )
      expect(ran).toMatchObject({ code: 0, stdout: "Short.\n", stderr: "" })
      expect(upstream.requests[0]!.body).toMatchObject({
        model: "gpt-4o",
        messages: [{ role: "system", content: "Be brief" }, { role: "user", content: "Summarize this\nplease" }],
        temperature: 0.2,
        max_tokens: 64
      })

      // Positional words are the prompt; stdin is then not read even though it is piped.
      const positional = yield* cli(["-m", "openai:gpt-4o", "Say", "hi"], {
        env: envFor(upstream),
        stdin: { isTTY: false, read: () => Promise.reject(new Error("stdin must not be read")) }
      })
      expect(positional.code).toBe(0)
      expect((upstream.requests[1]!.body as any).messages).toEqual([{ role: "user", content: "Say hi" }])

      const empty = yield* cli(["-m", "openai:gpt-4o"], {
        env: envFor(upstream),
        stdin: { isTTY: false, read: () => Promise.resolve("\n") }
      })
      expect(empty.code).toBe(2)
      expect(oneErrorLine(empty.stderr)).toBe("the prompt on stdin is empty (see llm-router --help)")
      expect(upstream.requests).toHaveLength(2)
    }).pipe(Effect.scoped))

  it("parseModelSpec and parseDuration", () => {
    expect(Cli.parseModelSpec("openai:gpt-4o-mini")).toEqual({ via: "openai", name: "gpt-4o-mini" })
    // OpenAI-compatible servers such as OpenRouter use slashes in model names.
    expect(Cli.parseModelSpec("openai:meta-llama/llama-3-8b")).toEqual({ via: "openai", name: "meta-llama/llama-3-8b" })
    expect(Cli.parseModelSpec("gptrouter:anthropic/claude-3-haiku")).toEqual({
      via: "gptrouter",
      provider: "anthropic",
      name: "claude-3-haiku"
    })
    expect(Cli.parseModelSpec("gptrouter:gpt-4o")).toEqual({ via: "gptrouter", name: "gpt-4o" })
    // Native protocols: the whole rest is the model name.
    expect(Cli.parseModelSpec("anthropic:claude-sonnet-4-5")).toEqual({ via: "anthropic", name: "claude-sonnet-4-5" })
    expect(Cli.parseModelSpec("gemini:tunedModels/x")).toEqual({ via: "gemini", name: "tunedModels/x" })
    expect(typeof Cli.parseModelSpec("bedrock:claude")).toBe("string")
    expect(typeof Cli.parseModelSpec("openai:")).toBe("string")
    const millis = (text: string) => Option.getOrUndefined(Option.map(Cli.parseDuration(text), Duration.toMillis))
    // The short forms users already write, a bare number of seconds, and what Effect's Duration reads.
    expect(["500ms", "2s", "1.5s", ".5s", " 1m ", "1h", "3", "500 millis", "30 seconds", "1.5 minutes", "2 weeks"].map(
      millis
    )).toEqual([500, 2000, 1500, 500, 60_000, 3_600_000, 3000, 500, 30_000, 90_000, 1_209_600_000])
    // Not positive, not finite or not a duration.
    expect(["0", "0s", "0 seconds", "-1s", "-1 seconds", "soon", "2 fortnights", "1e3s", "", "Infinity seconds"].map(
      millis
    )).toEqual(Array(10).fill(undefined))
  })

  it("Attempt.formatAttempt: one line with status, reason, server wait and next step", () => {
    const base = { index: 1, attempt: 1, model: "gpt-4o", provider: "openai", startedAt: 1000, endedAt: 1040 }
    const limited = new RouterError.RateLimited({
      provider: "openai",
      model: "gpt-4o",
      attempt: 1,
      status: 429,
      retryAfterMillis: 1000
    })
    const timeout = new RouterError.Timeout({
      provider: "openai",
      model: "gpt-4o",
      attempt: 3,
      phase: "first-token",
      afterMillis: 1500
    })
    expect([
      new Attempt({ ...base, outcome: "retry", error: limited, waitMillis: 1000 }),
      new Attempt({ ...base, attempt: 3, outcome: "fallback", error: timeout, note: "retries spent after 3 attempts" }),
      new Attempt({ ...base, outcome: "success" })
    ].map(formatAttempt)).toEqual([
      "openai/gpt-4o #1: 429 rate limited, server asked to wait 1s → retry in 1s",
      "openai/gpt-4o #3: no first token within 1.5s → next model (retries spent after 3 attempts)",
      "openai/gpt-4o #1: ok after 40ms → served"
    ])
  })
})

const simulatedAnswer = "Because any single model will fail you sooner or later. " +
  "The first one here was rate limited, so the router honoured its Retry-After once and then moved on; " +
  "the second one was overloaded twice and then went silent, until the first-token timeout cut it off. " +
  "I am the third model, on a third protocol, and since nothing had been streamed before me, " +
  "you are reading one clean answer rather than a spliced one."

describe("npm start (scratchpad/demo.ts)", () => {
  it("runs offline: the call's live attempts, answer and timeline, then the health act; exits 0", async () => {
    const root = fileURLToPath(new URL("..", import.meta.url))
    const env: Record<string, string | undefined> = { ...process.env }
    // No real endpoint may be configured, so the demo runs against its simulated upstream.
    for (const name of ["OPENAI_BASE_URL", "OPENAI_API_KEY", "GPT_ROUTER_API_BASE", "GPT_ROUTER_API_KEY"]) {
      delete env[name]
    }
    const result = await new Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }>(
      (resolve, reject) => {
        const child = spawn("npx", ["tsx", "scratchpad/demo.ts"], {
          cwd: root,
          env,
          stdio: ["ignore", "pipe", "pipe"],
          timeout: 40_000
        })
        let stdout = ""
        let stderr = ""
        child.stdout.on("data", (d) => stdout += d)
        child.stderr.on("data", (d) => stderr += d)
        child.on("error", reject)
        child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }))
      }
    )
    expect(result.stderr).not.toMatch(/level=|timestamp=|^\s+at /m)
    expect({ code: result.code, signal: result.signal }).toEqual({ code: 0, signal: null })
    const out = result.stdout
    expect(out).toContain(`\n${simulatedAnswer}\n`)
    // Live attempt lines, in order.
    // The priority list crosses the four wire protocols.
    const list = out.slice(out.indexOf("\nPriority list\n"), out.indexOf("\nPrompt: ")).split("\n").slice(2, 6)
    expect(list.map((line) => /^ {2}\d\. \S+ +(OpenAI-compatible|Anthropic|Gemini|GPTRouter) /.exec(line)?.[1]))
      .toEqual([
        "OpenAI-compatible",
        "Anthropic",
        "Gemini",
        "GPTRouter"
      ])
    const live = out.split("\n").filter((l) => /^ {2}\+\d+\.\d\ds {2}/.test(l)).map((l) =>
      l.replace(/^ {2}\+\S+ {2}/, "")
    )
    expect(live).toEqual([
      "openai/gpt-4o #1: 429 rate limited, server asked to wait 1s → retry in 1s",
      "openai/gpt-4o #2: 429 rate limited, server asked to wait 1s → next model (retries spent after 2 attempts)",
      "anthropic/claude-sonnet-4-5 #1: 529 service unavailable → retry in 250ms",
      "anthropic/claude-sonnet-4-5 #2: 529 service unavailable → retry in 500ms",
      "anthropic/claude-sonnet-4-5 #3: no first token within 1.5s → next model (retries spent after 3 attempts)",
      expect.stringMatching(/^google\/gemini-2\.5-flash #1: ok after \d+ms → served$/)
    ])
    // The timeline (Attempt.formatTimeline, whose exact layout is its own business): one line per attempt naming
    // the model, the attempt and what happened: the rate limit, the 529s, the timeout, the serving model.
    const timeline = out.slice(out.indexOf("\nTimeline\n") + "\nTimeline\n".length).split("\n\n")[0]!.split("\n")
    const expected = [
      ["openai/gpt-4o ", "#1", "RateLimited", "429", "retry in 1s"],
      ["openai/gpt-4o ", "#2", "RateLimited", "429", "next model"],
      ["anthropic/claude-sonnet-4-5", "#1", "ServiceUnavailable", "529", "retry in 250ms"],
      ["anthropic/claude-sonnet-4-5", "#2", "ServiceUnavailable", "529", "retry in 500ms"],
      ["anthropic/claude-sonnet-4-5", "#3", "Timeout", "next model"],
      ["google/gemini-2.5-flash", "#1", "served"]
    ]
    expect(timeline).toHaveLength(expected.length)
    timeline.forEach((line, i) => {
      for (const part of expected[i]!) expect(line).toContain(part)
    })
    expect(out).toMatch(
      /^Served by google\/gemini-2\.5-flash via Gemini on attempt 6 · 104 tokens \(31 prompt \+ 73 completion\) · first token after \d+\.\d\ds · \d+\.\d\ds in all$/m
    )

    // The second act: 12 calls while openai/gpt-4o answers 503, then a 13th once it recovers and its cooldown ends.
    const act2 = out.slice(out.indexOf("\nDeployment health across calls: 12 calls"))
    expect(act2.length).toBeLessThan(out.length)
    const calls = act2.split("\n").flatMap((line) => {
      const m = /^ +(\d+) {2}(\S+) +(\d+) +\d+\.\d\ds {2}(.+?) {2,}(closed|open|half-open)\b/.exec(line)
      return m === null
        ? []
        : [{ n: Number(m[1]), servedBy: m[2], requests: Number(m[3]), onDead: m[4], breaker: m[5] }]
    })
    expect(calls.map((c) => c.n)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13])
    // Two attempts per call, 5 failures in a row open the breaker: calls 1 to 3 pay for the dead model.
    expect(calls.slice(0, 4)).toEqual([
      { n: 1, servedBy: "openai/gpt-4o-mini", requests: 3, onDead: "503, 503", breaker: "closed" },
      { n: 2, servedBy: "openai/gpt-4o-mini", requests: 3, onDead: "503, 503", breaker: "closed" },
      { n: 3, servedBy: "openai/gpt-4o-mini", requests: 2, onDead: "503", breaker: "open" },
      { n: 4, servedBy: "openai/gpt-4o-mini", requests: 1, onDead: "skipped", breaker: "open" }
    ])
    // The rest go straight to the healthy model. (A burst slower than the 2 s cooldown would see one failed probe
    // reopen the breaker, which is still open after it.)
    for (const c of calls.slice(4, 12)) expect(c).toMatchObject({ servedBy: "openai/gpt-4o-mini", breaker: "open" })
    expect(calls[11]).toMatchObject({ requests: 1, onDead: "skipped" })
    // After the cooldown the 13th call probes the recovered model, and the probe closes its breaker.
    expect(calls[12]).toEqual({ n: 13, servedBy: "openai/gpt-4o", requests: 1, onDead: "ok", breaker: "closed" })
    expect(act2).toContain("\nopenai/gpt-4o: half-open before the probe, closed after it.\n")
    // The third act: a group with hedging; the slow call is hedged and served by the other deployment.
    const act3 = out.slice(out.indexOf("\nGroups and hedged requests:"))
    expect(act3.length).toBeLessThan(out.length)
    expect(act3).toMatch(
      /\n {2}call 3 {2}served by gpt-4o-mini-west +0\.\d\ds {2}\(hedged: the slow request was cancelled\)\n/
    )
    expect(act3).toMatch(/\nTimeline of the hedged call\n +\+0ms {2}openai\/gpt-4o-mini-east .*→ cancelled/)

    // The timeline of a late call: the skipped record, then the healthy model serving.
    const lateTimeline = /\nTimeline of call (\d+)\n((?:.+\n)+)/.exec(act2)
    expect(lateTimeline).not.toBeNull()
    expect(Number(lateTimeline![1])).toBeGreaterThanOrEqual(4)
    const lateLines = lateTimeline![2]!.trimEnd().split("\n")
    expect(lateLines).toHaveLength(2)
    expect(lateLines[0]).toMatch(/openai\/gpt-4o +#1 +skipped → next model \(circuit open: .*; reopens in /)
    expect(lateLines[1]).toMatch(/openai\/gpt-4o-mini +#1 +ok after \d+ms → served$/)

    // The health snapshot: the dead model open, with its trip and when it reopens; the healthy one closed.
    const snapshot = /\nHealth \(router\.health\)\n((?:.+\n)+)/.exec(act2)
    expect(snapshot).not.toBeNull()
    const snapshotLines = snapshot![1]!.trimEnd().split("\n")
    expect(snapshotLines).toHaveLength(3)
    expect(snapshotLines[0]).toMatch(/^ {2}model +state +failures in a row +trips +in flight +reopens in +why$/)
    expect(snapshotLines[1]).toMatch(/^ {2}openai\/gpt-4o +open +0 +\d +0 +\d+(\.\d)?(ms|s) +.*ServiceUnavailable$/)
    expect(snapshotLines[2]).toMatch(/^ {2}openai\/gpt-4o-mini +closed +0 +0 +0 +- +-$/)
  }, 60_000)
})

describe("formatHealth", () => {
  const deployment = {
    id: "x",
    provider: "openai",
    state: "closed",
    consecutiveFailures: 0,
    recentRequests: 0,
    recentFailures: 0,
    trips: 0,
    reopensAt: undefined,
    inFlight: 0,
    probing: false,
    reason: undefined,
    limits: {},
    remainingRequests: undefined,
    remainingTokens: undefined
  } as const

  it("shows requests in flight against maxConcurrent, and what is left of per-minute limits when a model has them", () => {
    const table = Cli.formatHealth([
      {
        ...deployment,
        model: "limited",
        inFlight: 2,
        limits: { maxConcurrent: 4, requestsPerMinute: 60, tokensPerMinute: 1000 },
        remainingRequests: 3,
        remainingTokens: -20,
        reopensAt: 1500
      },
      { ...deployment, model: "free", inFlight: 1 }
    ], 1000).split("\n")
    expect(table[0]).toMatch(/^model +state +failures in a row +trips +in flight +left this minute +reopens in +why$/)
    expect(table[1]).toMatch(/^openai\/limited +closed +0 +0 +2 of 4 +3\/60 requests, -20\/1000 tokens +500ms +/)
    expect(table[2]).toMatch(/^openai\/free +closed +0 +0 +1 +- +- +-$/)
    // Without per-minute limits the column is left out.
    expect(Cli.formatHealth([{ ...deployment, model: "free" }], 0).split("\n")[0]).not.toContain("left this minute")
  })
})
