/**
 * `npm start`: one streaming call routed over a priority list that crosses all four wire protocols.
 *
 * With no flags it runs against a simulated upstream started in-process (no network, no keys), scripted so that
 * every kind of recovery shows: model 1 (OpenAI-compatible) is rate limited with `Retry-After` (one honoured wait,
 * then fallback), model 2 (Anthropic Messages) is overloaded twice (529) and then goes silent after its headers (a
 * first-token timeout cuts it off), and model 3 (Gemini) streams the answer live; model 4 (GPTRouter) is not reached.
 * Then it prints the attempt timeline.
 *
 * A second act, on the simulated upstream only, shows deployment health across calls: 12 calls in a row on a list
 * whose first model answers 503 every time. The first three calls pay for it until its circuit breaker opens; the
 * rest skip it and go straight to the healthy model. Then the timeline of a call that skipped it, the health
 * snapshot (`router.health`), and, once the model recovers and its 2 s cooldown ends, the half-open probe that
 * closes its breaker again.
 *
 * A third act, also simulated: a group of two deployments of one model (`Model.group`, round robin) with hedged requests
 * (`hedge: { delay: "150 millis" }`). One answer in four takes 1.5 s; its call is hedged to the other deployment after
 * 150 ms and served from there, and the slow request is cancelled (its socket closed): the timeline shows both.
 *
 * Real endpoints instead:
 *   npm start -- --models openai:gpt-4o-mini,anthropic:claude-sonnet-4-5,gemini:gemini-2.5-flash --prompt "Hi"
 * with OPENAI_API_KEY / ANTHROPIC_API_KEY / GEMINI_API_KEY / GPT_ROUTER_API_KEY set, and optionally
 * --openai-base-url (OPENAI_BASE_URL), --gptrouter-base-url (GPT_ROUTER_API_BASE). A base URL (flag or variable) or
 * --models switches to real endpoints; a key alone does not.
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import { parseArgs } from "node:util"
import { formatHealth, modelsFor, parseModelSpec, terminalLogger } from "../src/cli/cli.js"
import type { ModelSpec } from "../src/cli/cli.js"
import { Anthropic, Attempt, Gemini, GptRouter, Model, OpenAiCompatible, RetryPolicy, Router } from "../src/index.js"
import * as SimulatedUpstream from "../src/testing/SimulatedUpstream.js"
import * as Script from "../src/testing/UpstreamScript.js"

const out = (text: string) => process.stdout.write(text)

const usage =
  `Usage: npm start [-- --models via:name,via:name,... --prompt TEXT --openai-base-url URL --gptrouter-base-url URL]
  via is openai (OpenAI-compatible), anthropic, gemini or gptrouter; keys come from OPENAI_API_KEY,
  ANTHROPIC_API_KEY, GEMINI_API_KEY (or GOOGLE_API_KEY) and GPT_ROUTER_API_KEY.
  With no models and no base URL, the demo runs against a simulated upstream.
`

const defaultPrompt = "In a few sentences: why should an LLM app route over several models?"

const simulatedAnswer = "Because any single model will fail you sooner or later. " +
  "The first one here was rate limited, so the router honoured its Retry-After once and then moved on; " +
  "the second one was overloaded twice and then went silent, until the first-token timeout cut it off. " +
  "I am the third model, on a third protocol, and since nothing had been streamed before me, " +
  "you are reading one clean answer rather than a spliced one."

// Two attempts per model, short exponential waits without jitter so the timeline reads cleanly.
const retry = {
  maxAttempts: 2,
  initialDelay: Duration.millis(250),
  minDelay: Duration.millis(250),
  maxDelay: Duration.seconds(2),
  jitter: 0
}

interface Setup {
  readonly where: string
  readonly models: ReadonlyArray<Model.Model>
  /** One line per model: how it is reached and, when simulated, what it will do. */
  readonly roles: ReadonlyArray<string>
  readonly firstToken: Duration.DurationInput
  /** The second act's upstream and models: simulated only. */
  readonly healthAct?: HealthActSetup | undefined
}

interface HealthActSetup {
  readonly upstream: SimulatedUpstream.SimulatedUpstream
  /** Scripted to answer 503 every time, until it recovers. */
  readonly dead: Model.Model
  readonly healthy: Model.Model
}

const simulated = Effect.gen(function*() {
  const apiKey = "sk-demo-not-a-real-key"
  const chunks = simulatedAnswer.match(/\S+\s*/g) ?? [simulatedAnswer]
  const upstream = yield* SimulatedUpstream.make({
    apiKey,
    script: {
      "gpt-4o": [Script.rateLimited({ retryAfter: "1" })],
      // Anthropic's "overloaded" status.
      "claude-sonnet-4-5": [
        Script.serverError(529),
        Script.serverError(529),
        // Keep-alive comments arrive, but they are not tokens: the first-token timeout still fires.
        Script.hang({ stage: "first-token", wire: { keepAliveEveryMs: 300 } })
      ],
      "gemini-2.5-flash": [
        Script.succeed({ chunks, chunkDelayMs: 40, usage: { promptTokens: 31, completionTokens: chunks.length } })
      ],
      "claude-3-haiku-20240307": [Script.succeed()]
    }
  })
  const openai = OpenAiCompatible.endpoint({ baseUrl: upstream.openAiBaseUrl, apiKey: Redacted.make(apiKey) })
  const anthropic = Anthropic.endpoint({ baseUrl: upstream.anthropicBaseUrl, apiKey: Redacted.make(apiKey) })
  const gemini = Gemini.endpoint({ baseUrl: upstream.geminiBaseUrl, apiKey: Redacted.make(apiKey) })
  const gptRouter = GptRouter.endpoint({ baseUrl: upstream.gptRouterBaseUrl, apiKey: Redacted.make(apiKey) })
  return {
    where: `a simulated upstream at ${upstream.url} (in-process: no network, no keys)`,
    models: [
      Model.make({ name: "gpt-4o", endpoint: openai }),
      Model.make({
        name: "claude-sonnet-4-5",
        endpoint: anthropic,
        retry: RetryPolicy.exponential({ ...retry, maxAttempts: 3 })
      }),
      Model.make({ name: "gemini-2.5-flash", endpoint: gemini }),
      Model.make({ name: "claude-3-haiku-20240307", provider: "anthropic", endpoint: gptRouter })
    ],
    roles: [
      "scripted: 429 with Retry-After: 1, every time (2 attempts)",
      "scripted: 529 overloaded, 529, then silence after the headers (3 attempts)",
      "scripted: answers, streamed word by word",
      "scripted: answers (not reached: the first answer ends the list)"
    ],
    firstToken: "1.5 seconds",
    healthAct: {
      upstream,
      dead: Model.make({ name: "gpt-4o", endpoint: openai }),
      healthy: Model.make({ name: "gpt-4o-mini", endpoint: openai })
    }
  } satisfies Setup
})

const real = (specs: ReadonlyArray<ModelSpec>, flags: { openAiBaseUrl?: string; gptRouterBaseUrl?: string }) =>
  Effect.map(modelsFor(specs, flags, process.env), (models): Setup => ({
    where: "real endpoints",
    models,
    roles: models.map((m) => `${m.endpoint.baseUrl}`),
    firstToken: "10 seconds"
  }))

const protocolNames: Readonly<Record<string, string>> = {
  gptrouter: "GPTRouter",
  anthropic: "Anthropic",
  gemini: "Gemini"
}
const protocolName = (model: Model.Model) => protocolNames[model.endpoint.protocol] ?? "OpenAI-compatible"

const seconds = (millis: number) => `${(millis / 1000).toFixed(2)}s`

// The second act: a burst of calls while the first model of the list is down.
const burst = 12
const cooldown = "2 seconds"
const answersInMs = 40

const healthAct = ({ dead, healthy, upstream }: HealthActSetup) =>
  Effect.gen(function*() {
    const deadName = `${dead.provider}/${dead.name}`
    upstream.reset({
      [dead.name]: [Script.unavailable({ headersDelayMs: 20 })],
      [healthy.name]: [Script.succeed({ text: "Fine.", headersDelayMs: answersInMs })]
    })
    const router = yield* Router.make({
      models: [dead, healthy],
      retry,
      timeout: { deadline: "12 seconds" },
      // Only the cooldown is shortened so the act stays short; the rest are the defaults (5 failures in a row).
      health: { cooldown }
    })
    out(
      `\n\nDeployment health across calls: ${burst} calls in a row while ${deadName} is down\n\nPriority list\n` +
        `  1. ${deadName.padEnd(18)}  scripted: 503 every time (2 attempts per call)\n` +
        `  2. ${`${healthy.provider}/${healthy.name}`.padEnd(18)}  scripted: answers in ${answersInMs}ms\n` +
        `  A model's circuit breaker opens after 5 failures in a row, for ${cooldown} (health: { cooldown: "${cooldown}" })\n\n`
    )

    const request = { messages: [{ role: "user" as const, content: "Are you up?" }] }
    const rows: Array<ReadonlyArray<string>> = []
    // Printed as the calls end, so the widths are fixed up front.
    const columns = ["call", "served by", "requests", "time", `on ${deadName}`, "its breaker after"]
    const widths = columns.map((title, i) =>
      Math.max(
        title.length,
        i === 1 ? Math.max(deadName.length, `${healthy.provider}/${healthy.name}`.length) : i === 3 ? "0.00s".length : 0
      )
    )
    const numeric = new Set([0, 2, 3])
    const row = (cells: ReadonlyArray<string>) =>
      out(`  ${
        cells.map((cell, i) =>
          i === cells.length - 1 ? cell : numeric.has(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)
        ).join("  ")
      }\n`)
    const call = (n: number) =>
      Effect.gen(function*() {
        const startedAt = Date.now()
        const response = yield* router.generate(request)
        const took = Date.now() - startedAt
        const [health] = yield* router.health
        const onDead = response.trail.filter((a) =>
          a.model === dead.name
        ).map((a) =>
          a.outcome === "skipped"
            ? "skipped"
            : a.error === undefined
            ? "ok"
            : String(a.error.status ?? a.error._tag)
        )
        const breaker = health!.state === "closed"
          ? `closed, ${health!.consecutiveFailures} failure${health!.consecutiveFailures === 1 ? "" : "s"} in a row`
          : `${health!.state}${
            health!.reopensAt === undefined ? "" : `, reopens in ${seconds(health!.reopensAt - Date.now())}`
          }`
        const cells = [
          String(n),
          `${response.provider}/${response.model}`,
          String(response.trail.filter((a) => a.outcome !== "skipped").length),
          seconds(took),
          onDead.join(", "),
          breaker
        ]
        rows.push(cells)
        row(cells)
        return response
      })

    row(columns)
    let lateCall: { n: number; trail: ReadonlyArray<Attempt.Attempt> } | undefined
    for (let n = 1; n <= burst; n++) {
      const response = yield* call(n)
      if (response.trail.some((a) => a.outcome === "skipped")) lateCall = { n, trail: response.trail }
    }
    const sent = rows.reduce((sum, cells) => sum + cells[4]!.split(", ").filter((x) => x !== "skipped").length, 0)
    const skipped = rows.filter((cells) => cells[4] === "skipped").length
    out(`\n${deadName} got ${sent} requests in ${burst} calls; ${skipped} calls skipped it without sending anything.\n`)

    if (lateCall !== undefined) {
      out(`\nTimeline of call ${lateCall.n}\n${Attempt.formatTimeline(lateCall.trail).replace(/^/gm, "  ")}\n`)
    }
    const [snapshot, now] = yield* Effect.zip(router.health, Clock.currentTimeMillis)
    out(`\nHealth (router.health)\n${formatHealth(snapshot, now).replace(/^/gm, "  ")}\n`)

    // The model comes back; once its cooldown ends, the next call probes it and the probe closes the breaker.
    upstream.reset({
      [dead.name]: [Script.succeed({ text: "Back.", headersDelayMs: answersInMs })],
      [healthy.name]: [Script.succeed({ text: "Fine.", headersDelayMs: answersInMs })]
    })
    const reopensAt = snapshot[0]!.reopensAt ?? now
    out(
      `\n${deadName} recovers. After its cooldown (${seconds(reopensAt - now)} more) it is half-open, ` +
        `and the next call probes it:\n\n`
    )
    yield* Effect.sleep(Duration.millis(Math.max(0, reopensAt - Date.now()) + 20))
    const [before] = yield* router.health
    row(columns)
    yield* call(burst + 1)
    const [after] = yield* router.health
    out(`\n${deadName}: ${before!.state} before the probe, ${after!.state} after it.\n`)
  })

// The third act: a group of two deployments, one answer in four slow, hedged after 150 ms.
const hedgeDelay = "150 millis"
const slowMs = 1500

const hedgeAct = ({ healthy, upstream }: HealthActSetup) =>
  Effect.gen(function*() {
    const east = Model.make({ name: "gpt-4o-mini-east", provider: healthy.provider, endpoint: healthy.endpoint })
    const west = Model.make({ name: "gpt-4o-mini-west", provider: healthy.provider, endpoint: healthy.endpoint })
    const fast = Script.succeed({ text: "Fast.", headersDelayMs: answersInMs })
    const slow = Script.succeed({ text: "Slow.", headersDelayMs: slowMs })
    upstream.reset({ [east.name]: [fast, slow, fast, fast], [west.name]: [fast, fast, fast, fast] })
    const router = yield* Router.make({
      models: [Model.group({ name: "gpt-4o-mini", strategy: "round-robin", deployments: [east, west] })],
      retry,
      hedge: { delay: hedgeDelay }
    })
    out(
      `\n\nGroups and hedged requests: a group of two deployments, one answer in four slow\n\n` +
        `  group gpt-4o-mini, round robin: ${east.name} (its 2nd answer takes ${seconds(slowMs)}), ${west.name}\n` +
        `  hedge: { delay: "${hedgeDelay}" }: a call not answered by then is also sent to the other deployment\n\n`
    )
    const request = { messages: [{ role: "user" as const, content: "Quick?" }] }
    let hedged: ReadonlyArray<Attempt.Attempt> | undefined
    for (let n = 1; n <= 4; n++) {
      const startedAt = Date.now()
      const response = yield* router.generate(request)
      const took = Date.now() - startedAt
      const cancelled = response.trail.some((a) => a.outcome === "cancelled")
      if (cancelled) hedged = response.trail
      out(
        `  call ${n}  served by ${response.model.padEnd(16)}  ${seconds(took)}${
          cancelled ? "  (hedged: the slow request was cancelled)" : ""
        }\n`
      )
    }
    if (hedged !== undefined) {
      out(`\nTimeline of the hedged call\n${Attempt.formatTimeline(hedged).replace(/^/gm, "  ")}\n`)
    }
  })

const demo = (setup: Setup, prompt: string) =>
  Effect.gen(function*() {
    out(`effect-llm-router demo: one streaming call over a priority list, against ${setup.where}\n\nPriority list\n`)
    const width = Math.max(...setup.models.map((m) => `${m.provider}/${m.name}`.length))
    setup.models.forEach((m, i) => {
      out(`  ${i + 1}. ${`${m.provider}/${m.name}`.padEnd(width)}  ${protocolName(m).padEnd(17)}  ${setup.roles[i]}\n`)
    })
    out(`\nPrompt: ${prompt}\n\nAttempts (as they end)\n`)

    let startedAt = 0
    const router = yield* Router.make({
      models: setup.models,
      retry,
      timeout: { firstToken: setup.firstToken, deadline: "12 seconds" },
      onAttempt: (attempt) => {
        out(`  +${seconds(attempt.endedAt - startedAt)}  ${Attempt.formatAttempt(attempt)}\n`)
      }
    })

    startedAt = Date.now()
    let firstTokenAt: number | undefined
    let served: { model: string; provider: string; trail: ReadonlyArray<Attempt.Attempt> } | undefined
    let usage: { promptTokens: number; completionTokens: number; totalTokens: number } | undefined
    let text = ""
    const request = { messages: [{ role: "user" as const, content: prompt }], max_tokens: 300 }
    yield* Stream.runForEach(router.stream(request), (chunk) =>
      Effect.sync(() => {
        switch (chunk._tag) {
          case "Started":
            served = chunk
            out(`\nAnswer from ${chunk.provider}/${chunk.model}\n\n`)
            return
          case "TextDelta":
            firstTokenAt ??= Date.now()
            text += chunk.text
            out(chunk.text)
            return
          case "Usage":
            usage = chunk
            return
        }
      }))
    const endedAt = Date.now()
    if (!text.endsWith("\n")) out("\n")

    const trail = served?.trail ?? []
    const servedBy = setup.models.find((m) => m.name === trail.at(-1)?.model)
    out(`\nTimeline\n${Attempt.formatTimeline(trail).replace(/^/gm, "  ")}\n\n`)
    const tokens = usage === undefined
      ? "tokens not reported"
      : `${usage.totalTokens} tokens (${usage.promptTokens} prompt + ${usage.completionTokens} completion)`
    out(
      `Served by ${served?.provider}/${served?.model}${
        servedBy === undefined ? "" : ` via ${protocolName(servedBy)}`
      }` +
        ` on attempt ${trail.length} · ${tokens} · first token after ${
          seconds((firstTokenAt ?? endedAt) - startedAt)
        }` +
        ` · ${seconds(endedAt - startedAt)} in all\n`
    )

    if (setup.healthAct !== undefined) {
      yield* healthAct(setup.healthAct)
      yield* hedgeAct(setup.healthAct)
    } else {
      out(`\n(The second and third acts, deployment health and hedged requests, run on the simulated upstream only.)\n`)
    }
  })

const main = Effect.gen(function*() {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      models: { type: "string" },
      prompt: { type: "string" },
      "openai-base-url": { type: "string" },
      "gptrouter-base-url": { type: "string" },
      help: { type: "boolean", short: "h" }
    },
    strict: true
  })
  if (values.help === true) return out(usage)
  const env = process.env
  const openAiBaseUrl = values["openai-base-url"] ?? (env.OPENAI_BASE_URL || undefined)
  const gptRouterBaseUrl = values["gptrouter-base-url"] ?? (env.GPT_ROUTER_API_BASE || undefined)
  const prompt = values.prompt ?? defaultPrompt
  if (values.models === undefined && openAiBaseUrl === undefined && gptRouterBaseUrl === undefined) {
    return yield* Effect.scoped(Effect.flatMap(simulated, (setup) => demo(setup, prompt)))
  }
  // Without --models, one well-known model per configured endpoint.
  const texts = values.models?.split(",").map((s) => s.trim()).filter((s) => s.length > 0) ?? [
    ...(openAiBaseUrl === undefined ? [] : ["openai:gpt-4o-mini"]),
    ...(gptRouterBaseUrl === undefined ? [] : ["gptrouter:anthropic/claude-3-haiku-20240307"])
  ]
  const specs: Array<ModelSpec> = []
  for (const text of texts) {
    const spec = parseModelSpec(text)
    if (typeof spec === "string") return yield* Effect.fail(new Error(spec))
    specs.push(spec)
  }
  const setup = yield* real(specs, {
    ...(openAiBaseUrl === undefined ? {} : { openAiBaseUrl }),
    ...(gptRouterBaseUrl === undefined ? {} : { gptRouterBaseUrl })
  })
  return yield* demo(setup, prompt)
})

const exit = await Effect.runPromiseExit(
  main.pipe(
    Effect.provide(FetchHttpClient.layer),
    Effect.provide(terminalLogger((line) => process.stderr.write(`  ${line}\n`)))
  )
)
if (Exit.isFailure(exit)) {
  const failure = Cause.failureOption(exit.cause)
  const message = failure._tag === "Some"
    ? failure.value.message
    : Cause.pretty(exit.cause).split("\n")[0]
  process.stderr.write(`\ndemo failed: ${message}\n`)
  process.exitCode = 1
}
