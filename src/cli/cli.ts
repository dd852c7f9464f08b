/**
 * The `llm-router` command's logic: one chat prompt routed over an ordered list of models, from the command line.
 * Parsing and running are plain functions over an {@link Io} (no `process` access, no `process.exit`), so the command
 * can be tested in-process; `main.ts` wires them to the real process.
 *
 * @since 0.1.0
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as HashMap from "effect/HashMap"
import type * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { parseArgs } from "node:util"
import * as Anthropic from "../Anthropic.js"
import * as Attempt from "../Attempt.js"
import type { ChatChunk } from "../ChatChunk.js"
import type * as ChatRequest from "../ChatRequest.js"
import * as Compat from "../Compat.js"
import * as Gemini from "../Gemini.js"
import * as GptRouter from "../GptRouter.js"
import type * as Health from "../Health.js"
import type * as Model from "../Model.js"
import * as Router from "../Router.js"
import * as RouterError from "../RouterError.js"

/**
 * The exit codes, one per failure mode. When every model fails, the code is that of the last model's failure.
 *
 * @since 0.1.0
 * @category constants
 */
export const exitCodes = {
  Ok: { code: 0, meaning: "the call was served" },
  Internal: { code: 1, meaning: "unexpected internal error (a bug: please report it)" },
  Usage: { code: 2, meaning: "usage or configuration error: bad flag or value, missing model, prompt or key" },
  InvalidRequest: { code: 3, meaning: "request rejected before sending (e.g. --temperature out of 0..2)" },
  RateLimited: { code: 4, meaning: "rate limited (HTTP 429)" },
  QuotaExhausted: { code: 5, meaning: "out of credit (HTTP 402, insufficient_quota)" },
  AuthenticationFailed: { code: 6, meaning: "key rejected (HTTP 401)" },
  PermissionDenied: { code: 7, meaning: "key may not use the model (HTTP 403)" },
  BadRequest: { code: 8, meaning: "the provider rejected the request (HTTP 400, 422, …)" },
  ContextLengthExceeded: { code: 9, meaning: "the prompt does not fit the model's context" },
  ContentFiltered: { code: 10, meaning: "refused by the provider's content policy" },
  ModelNotFound: { code: 11, meaning: "unknown model (HTTP 404)" },
  ServerError: { code: 12, meaning: "provider error (HTTP 500, 502, 504, …)" },
  ServiceUnavailable: { code: 13, meaning: "provider overloaded or down (HTTP 503, 529)" },
  Timeout: { code: 14, meaning: "an attempt timed out (--timeout, --first-token-timeout, HTTP 408)" },
  NetworkError: { code: 15, meaning: "connection failed (refused, reset, DNS)" },
  MalformedResponse: { code: 16, meaning: "the provider's answer was not valid" },
  NoModelAvailable: { code: 17, meaning: "no model could serve the call" },
  DeadlineExceeded: { code: 18, meaning: "--deadline passed" },
  StreamInterrupted: { code: 19, meaning: "the stream broke after output began (what was printed is partial)" },
  BudgetExceeded: { code: 20, meaning: "the router's budget for this period is spent" },
  ResponseRejected: { code: 21, meaning: "every answer was rejected by the router's answer check" },
  Interrupted: { code: 130, meaning: "interrupted (Ctrl-C)" }
} as const

/**
 * @since 0.1.0
 * @category models
 */
export type ExitCodeName = keyof typeof exitCodes

/**
 * The exit code of an error that ends a run.
 *
 * @since 0.1.0
 * @category constants
 */
export const exitCodeOf = (error: RouterError.RouterStreamError | RouterError.RouterConfigError): number =>
  error._tag === "RouterConfigError" ? exitCodes.Usage.code : exitCodes[error._tag].code

/**
 * Where a model is served: `openai` (any OpenAI-compatible server), `gptrouter`, or natively `anthropic` or `gemini`
 * (since 0.3.0).
 *
 * @since 0.1.0
 * @category models
 */
export type Via = Compat.Via

/**
 * One `--model` value, parsed.
 *
 * @since 0.1.0
 * @category models
 */
export interface ModelSpec {
  readonly via: Via
  /** The model name sent to the server. */
  readonly name: string
  /** GPTRouter's `providerName` (from `gptrouter:provider/name`). */
  readonly provider?: string | undefined
}

/**
 * Parses `via:name` or `gptrouter:provider/name`. For `openai:`, `anthropic:` and `gemini:` the whole rest is the
 * model name, because OpenAI-compatible servers such as OpenRouter put slashes in their model names
 * (`openai:meta-llama/llama-3-8b`). Returns the reason when the value is not valid.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseModelSpec = (text: string): ModelSpec | string => {
  const colon = text.indexOf(":")
  const via = colon < 0 ? "" : text.slice(0, colon)
  const rest = colon < 0 ? "" : text.slice(colon + 1).trim()
  if (via !== "openai" && via !== "gptrouter" && via !== "anthropic" && via !== "gemini") {
    return `--model ${JSON.stringify(text)}: expected via:name with via "openai", "anthropic", "gemini" or ` +
      `"gptrouter" (e.g. openai:gpt-4o-mini, anthropic:claude-sonnet-4-5, gemini:gemini-2.5-flash, ` +
      `gptrouter:anthropic/claude-3-haiku-20240307)`
  }
  if (via !== "gptrouter") {
    return rest.length === 0 ? `--model ${JSON.stringify(text)}: the model name is empty` : { via, name: rest }
  }
  const slash = rest.indexOf("/")
  const provider = slash < 0 ? undefined : rest.slice(0, slash)
  const name = slash < 0 ? rest : rest.slice(slash + 1)
  if (name.length === 0 || provider === "") {
    return `--model ${JSON.stringify(text)}: expected gptrouter:name or gptrouter:provider/name`
  }
  return { via, name, ...(provider === undefined ? {} : { provider }) }
}

/**
 * Base URLs given on the command line; they win over the environment.
 *
 * @since 0.1.0
 * @category models
 */
export interface EndpointFlags {
  readonly openAiBaseUrl?: string | undefined
  readonly gptRouterBaseUrl?: string | undefined
  /** @since 0.3.0 */
  readonly anthropicBaseUrl?: string | undefined
  /** @since 0.3.0 */
  readonly geminiBaseUrl?: string | undefined
}

// The variables that can hold the key a model needs (any one of them); OpenAI-compatible servers may need none.
const keyVariables: Readonly<Record<Via, ReadonlyArray<string>>> = {
  openai: [],
  gptrouter: ["GPT_ROUTER_API_KEY"],
  anthropic: ["ANTHROPIC_API_KEY"],
  gemini: ["GEMINI_API_KEY", "GOOGLE_API_KEY"]
}

/**
 * Builds the models of a priority list on endpoints from the flags and the environment (`OPENAI_BASE_URL`,
 * `OPENAI_API_KEY`, `GPT_ROUTER_API_BASE`, `GPT_ROUTER_API_KEY`, `ANTHROPIC_BASE_URL`, `ANTHROPIC_API_KEY`,
 * `GEMINI_BASE_URL`, `GEMINI_API_KEY` or `GOOGLE_API_KEY`; see `Compat.modelsConfig`). Keys come only from the
 * environment. Fails when a GPTRouter, Anthropic or Gemini model has no key.
 *
 * @since 0.1.0
 * @category configuration
 */
export const modelsFor = (
  specs: ReadonlyArray<ModelSpec>,
  flags: EndpointFlags,
  env: Readonly<Record<string, string | undefined>>
): Effect.Effect<ReadonlyArray<Model.Model>, RouterError.RouterConfigError> => {
  const entries = new Map<string, string>()
  for (const [key, value] of Object.entries(env)) {
    // An exported-but-empty variable means "not set", as shells commonly leave them.
    if (value !== undefined && value !== "") entries.set(key, value)
  }
  if (flags.openAiBaseUrl !== undefined) entries.set("OPENAI_BASE_URL", flags.openAiBaseUrl)
  if (flags.gptRouterBaseUrl !== undefined) entries.set("GPT_ROUTER_API_BASE", flags.gptRouterBaseUrl)
  if (flags.anthropicBaseUrl !== undefined) entries.set("ANTHROPIC_BASE_URL", flags.anthropicBaseUrl)
  if (flags.geminiBaseUrl !== undefined) entries.set("GEMINI_BASE_URL", flags.geminiBaseUrl)
  // The one setting that can be missing: say which model needs it.
  const keyless = specs.findIndex((spec) => {
    const names = keyVariables[spec.via]
    return names.length > 0 && !names.some((name) => entries.has(name))
  })
  if (keyless >= 0) {
    const names = keyVariables[specs[keyless]!.via]
    return Effect.fail(
      new RouterError.RouterConfigError({
        option: names.join(" or "),
        reason: `is not set (needed by models[${keyless}] ${specs[keyless]!.name})`
      })
    )
  }
  return Compat.modelsConfig(specs.map((spec) => ({ name: spec.name, via: spec.via, provider: spec.provider }))).pipe(
    Effect.withConfigProvider(ConfigProvider.fromMap(entries)),
    Effect.mapError((error) =>
      new RouterError.RouterConfigError({ option: "environment", reason: oneLine(String(error)) })
    )
  )
}

/**
 * The options of a run, from the command line.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options extends EndpointFlags {
  readonly models: ReadonlyArray<ModelSpec>
  /** From `--prompt` or the positional arguments; `undefined` means read stdin. */
  readonly prompt?: string | undefined
  readonly system?: string | undefined
  readonly stream: boolean
  readonly json: boolean
  readonly verbose: boolean
  readonly temperature?: number | undefined
  readonly maxTokens?: number | undefined
  readonly maxAttempts?: number | undefined
  readonly timeout?: Duration.Duration | undefined
  readonly firstTokenTimeout?: Duration.Duration | undefined
  readonly stallTimeout?: Duration.Duration | undefined
  readonly deadline?: Duration.Duration | undefined
  /**
   * Deployment health (the models' circuit breakers): `"show"` prints each model's health after the call
   * (`--health`), `"off"` turns the breakers off (`--no-health`, the router's `health: false`); on and not shown by
   * default.
   *
   * @since 0.2.0
   */
  readonly health?: "show" | "off" | undefined
}

/**
 * What the command line asks for.
 *
 * @since 0.1.0
 * @category models
 */
export type Parsed =
  | { readonly _tag: "Help" }
  | { readonly _tag: "Run"; readonly options: Options }
  | { readonly _tag: "UsageError"; readonly message: string }

const flagSpec = {
  model: { type: "string", short: "m", multiple: true },
  prompt: { type: "string", short: "p" },
  system: { type: "string" },
  stream: { type: "boolean" },
  json: { type: "boolean" },
  verbose: { type: "boolean", short: "v" },
  temperature: { type: "string" },
  "max-tokens": { type: "string" },
  "max-attempts": { type: "string" },
  timeout: { type: "string" },
  deadline: { type: "string" },
  "first-token-timeout": { type: "string" },
  "stall-timeout": { type: "string" },
  "openai-base-url": { type: "string" },
  "gptrouter-base-url": { type: "string" },
  "anthropic-base-url": { type: "string" },
  "gemini-base-url": { type: "string" },
  health: { type: "boolean" },
  "no-health": { type: "boolean" },
  help: { type: "boolean", short: "h" }
} as const

type FlagName = keyof typeof flagSpec

const flagNames = Object.keys(flagSpec) as Array<FlagName>

// The short forms users already write (`500ms`, `2s`, `1.5m`, `1h`, a bare number of seconds), spelled out for
// `Duration.decode`, which wants a number, a space and a unit name (`500 millis`).
const shortDuration = /^(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h)?$/
const shortUnits = { ms: "millis", s: "seconds", m: "minutes", h: "hours" } as const

/**
 * Parses a duration: whatever `Duration.decode` reads (`500 millis`, `2 seconds`, `1.5 minutes`, `1 hour`, …) and
 * the short forms `500ms`, `2s`, `1.5s`, `1m`, `1h`; a bare number is seconds. `None` when the text is not a
 * positive, finite duration.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseDuration = (text: string): Option.Option<Duration.Duration> => {
  const trimmed = text.trim()
  const short = shortDuration.exec(trimmed)
  const input = short === null
    ? trimmed
    : `${Number(short[1])} ${shortUnits[(short[2] ?? "s") as keyof typeof shortUnits]}`
  return Option.filter(
    Duration.decodeUnknown(input),
    (duration) => Duration.isFinite(duration) && Duration.greaterThan(duration, Duration.zero)
  )
}

class UsageError {
  constructor(readonly message: string) {}
}

const oneLine = (text: string): string => text.replace(/\s+/g, " ").trim()

/**
 * Parses the arguments (without `node` and the script). Never throws: a bad command line is a `UsageError` with a
 * one-line message naming the flag. Everything after `--` is prompt text, even words that look like flags.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parse = (argv: ReadonlyArray<string>): Parsed => {
  let values: ReturnType<typeof parseFlags>["values"]
  let positionals: Array<string>
  let tokens: ReturnType<typeof parseFlags>["tokens"]
  try {
    ;({ positionals, tokens, values } = parseFlags(argv))
  } catch (error) {
    return { _tag: "UsageError", message: flagErrorMessage(error) }
  }
  if (values.help === true) return { _tag: "Help" }
  try {
    // parseArgs keeps the last of a repeated value silently; two prompts (or timeouts) are more likely a mistake.
    const seen = new Set<string>()
    for (const token of tokens) {
      if (token.kind !== "option" || token.value === undefined || token.name === "model") continue
      if (seen.has(token.name)) throw new UsageError(`--${token.name} is given more than once`)
      seen.add(token.name)
    }
    const models = (values.model ?? []).map((text) => {
      const spec = parseModelSpec(text)
      if (typeof spec === "string") throw new UsageError(spec)
      return spec
    })
    if (models.length === 0) {
      throw new UsageError("at least one --model is needed, e.g. -m openai:gpt-4o-mini")
    }
    if (values.prompt !== undefined && positionals.length > 0) {
      throw new UsageError(`give the prompt either with --prompt or as text, not both (extra: ${positionals[0]})`)
    }
    const prompt = values.prompt ?? (positionals.length > 0 ? positionals.join(" ") : undefined)
    if (prompt !== undefined && prompt.trim() === "") throw new UsageError("the prompt is empty")
    if (values.health === true && values["no-health"] === true) {
      throw new UsageError("--health shows the circuit breakers that --no-health turns off: give one or the other")
    }
    const stream = values.stream === true
    for (const flag of ["first-token-timeout", "stall-timeout"] as const) {
      if (values[flag] !== undefined && !stream) {
        throw new UsageError(`--${flag} applies to streams only: add --stream`)
      }
    }
    return {
      _tag: "Run",
      options: {
        models,
        prompt,
        system: values.system,
        stream,
        json: values.json === true,
        verbose: values.verbose === true,
        temperature: number("temperature", values.temperature, false),
        maxTokens: number("max-tokens", values["max-tokens"], true),
        maxAttempts: number("max-attempts", values["max-attempts"], true),
        timeout: duration("timeout", values.timeout),
        firstTokenTimeout: duration("first-token-timeout", values["first-token-timeout"]),
        stallTimeout: duration("stall-timeout", values["stall-timeout"]),
        deadline: duration("deadline", values.deadline),
        openAiBaseUrl: values["openai-base-url"],
        gptRouterBaseUrl: values["gptrouter-base-url"],
        anthropicBaseUrl: values["anthropic-base-url"],
        geminiBaseUrl: values["gemini-base-url"],
        health: values.health === true ? "show" : values["no-health"] === true ? "off" : undefined
      }
    }
  } catch (error) {
    if (error instanceof UsageError) return { _tag: "UsageError", message: error.message }
    throw error
  }
}

const parseFlags = (argv: ReadonlyArray<string>) =>
  parseArgs({ args: [...argv], options: flagSpec, strict: true, allowPositionals: true, tokens: true })

// `-p` or `--prompt` (as Node's messages write them) to `--prompt`.
const longName = (flag: string): string => {
  if (flag.startsWith("--")) return flag
  const name = flagNames.find((name) => {
    const spec: { readonly type: string; readonly short?: string } = flagSpec[name]
    return spec.short !== undefined && `-${spec.short}` === flag
  })
  return name === undefined ? flag : `--${name}`
}

// Node's messages run over several lines and add hints of their own; the command says the same in one line.
const flagErrorMessage = (error: unknown): string => {
  const text = oneLine(error instanceof Error ? error.message : String(error))
  const unknown = /^Unknown option '([^']*)'/.exec(text)
  if (unknown !== null) {
    const flag = unknown[1]!
    // Someone looking for a key flag: say where keys come from.
    if (/key/i.test(flag)) {
      return `unknown option ${flag} (keys are read only from OPENAI_API_KEY, GPT_ROUTER_API_KEY, ANTHROPIC_API_KEY ` +
        `and GEMINI_API_KEY or GOOGLE_API_KEY)`
    }
    const near = flag.startsWith("--") ? closestFlag(flag.slice(2)) : undefined
    return `unknown option ${flag}${near === undefined ? "" : ` (did you mean --${near}?)`}`
  }
  const missing = /^Option '(?:-\w, )?(--[\w-]+)[^']*' argument missing/.exec(text)
  if (missing !== null) return `${missing[1]} needs a value`
  // `-p --json`: the next word is a flag, so the value was most likely forgotten.
  const ambiguous = /^Option '([^']*)' argument is ambiguous/.exec(text)
  if (ambiguous !== null) {
    const flag = longName(ambiguous[1]!)
    return `${flag} needs a value (a value that starts with - is written ${flag}=-…)`
  }
  const noValue = /^Option '([^']*)' does not take an argument/.exec(text)
  if (noValue !== null) return `${longName(noValue[1]!)} takes no value`
  return text
}

// The known flag within two edits of a misspelt one (`--promt`), if any.
const closestFlag = (name: string): FlagName | undefined => {
  let best: FlagName | undefined
  let bestDistance = 3
  for (const candidate of flagNames) {
    const distance = editDistance(name, candidate)
    if (distance < bestDistance) {
      best = candidate
      bestDistance = distance
    }
  }
  return best
}

const editDistance = (a: string, b: string): number => {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    previous = current
  }
  return previous[b.length]!
}

// Range checks are the request's and the router's (exit 3 and 2 with their own messages); here only the syntax.
const number = (flag: string, text: string | undefined, integer: boolean): number | undefined => {
  if (text === undefined) return undefined
  const value = text.trim() === "" ? NaN : Number(text)
  if (!Number.isFinite(value) || (integer && !Number.isInteger(value))) {
    throw new UsageError(`--${flag}: expected ${integer ? "an integer" : "a number"} (got ${JSON.stringify(text)})`)
  }
  return value
}

const duration = (flag: string, text: string | undefined): Duration.Duration | undefined => {
  if (text === undefined) return undefined
  return Option.getOrThrowWith(
    parseDuration(text),
    () =>
      new UsageError(
        `--${flag}: expected a positive duration such as 500ms, 2s, 1m or "30 seconds" (got ${JSON.stringify(text)})`
      )
  )
}

/**
 * The `--help` text.
 *
 * @since 0.1.0
 * @category help
 */
export const helpText = (): string => {
  const codes = Object.entries(exitCodes).map(([name, { code, meaning }]) =>
    `  ${String(code).padStart(3)}  ${name.padEnd(22)}${meaning}`
  )
  return `llm-router: send one prompt through an ordered list of models, with retries, fallback and typed failures.

Usage
  llm-router -m <via:model> [-m <via:model> ...] [options] [--] [prompt ...]
  echo "prompt" | llm-router -m <via:model> [options]

Models, in priority order: the first that answers serves the call
  -m, --model <via:name>         Repeatable. via is one of:
                                   openai     an OpenAI-compatible server (OpenAI, OpenRouter, vLLM, Ollama, ...);
                                              the rest is the model name as that server knows it
                                   anthropic  Anthropic's Messages API
                                   gemini     Google's Gemini API
                                   gptrouter  GPTRouter: name, or provider/name
                                 e.g. -m openai:gpt-4o-mini -m anthropic:claude-sonnet-4-5
                                      -m gemini:gemini-2.5-flash -m gptrouter:anthropic/claude-3-haiku-20240307

Prompt
  -p, --prompt <text>            The user message. Otherwise the text after the flags, or stdin when it is piped.
                                 Prompt words that start with - go after --, e.g. -- -5 degrees.
      --system <text>            A system message sent before the prompt.
      --temperature <0..2>       Sampling temperature.
      --max-tokens <n>           Upper bound on the answer's tokens.

Output
      --stream                   Print tokens as they arrive (streaming transport). Retries and fallback happen only
                                 before the first token; a failure after it ends the output (exit 19).
      --json                     Print one JSON object on stdout instead of text:
                                   {"ok":true,"text","model","provider","usage","finishReason","trail":[...]}
                                   {"ok":false,"error":{"tag","message",...},"trail":[...]}
                                 With --stream it uses the streaming transport and still prints one object.
  -v, --verbose                  Print each attempt on stderr as it ends (model, outcome, wait).
      --health                   After the call, print each model's health on stderr: its circuit breaker's state
                                 (closed, open, half-open), failures in a row, trips, requests in flight, when it
                                 reopens and why it opened. With --json it is the object's "health" field instead.
  -h, --help                     Show this help.

Retries and timeouts
  Durations: 500ms, 2s, 1.5s, 1m, 1h (a bare number is seconds), or as Effect's Duration reads them:
  "500 millis", "30 seconds", "2 minutes".
      --max-attempts <n>         Attempts per model, counting the first (default 4). Waits between them: 4s each
                                 (exponential, clamped to 4s..10s, +-20% jitter), or the server's Retry-After up to
                                 60s. Rate limits, 5xx, 503, timeouts and network errors are retried; every failure
                                 but a bad request then falls back to the next model.
      --timeout <duration>       The attempt timeout: bounds each attempt. For a stream it bounds the wait for the
                                 response headers, whatever else is set.
      --first-token-timeout <d>  With --stream: bounds the wait for the first content of the stream, from the start
                                 of an attempt (keep-alives do not count).
      --stall-timeout <d>        With --stream: the longest gap between content chunks once content started.
      --deadline <duration>      Total limit over every attempt, wait and fallback (with --stream: until the first
                                 content; --stall-timeout guards the rest).
      --no-health                Turn the circuit breakers off. By default a model's breaker opens after 5 transient
                                 failures in a row or one that no retry fixes (401, 402, 403, 404), and the call
                                 then moves on to the next model without sending it anything more.

Endpoints (keys are read only from the environment, never from flags, so they stay out of shell history)
      --openai-base-url <url>    Default: $OPENAI_BASE_URL, else https://api.openai.com/v1.
                                 Key: $OPENAI_API_KEY (optional, e.g. for a local server).
      --gptrouter-base-url <url> Default: $GPT_ROUTER_API_BASE, else ${GptRouter.defaultBaseUrl}.
                                 Key: $GPT_ROUTER_API_KEY (required for gptrouter: models).
      --anthropic-base-url <url> Default: $ANTHROPIC_BASE_URL, else ${Anthropic.defaultBaseUrl}.
                                 Key: $ANTHROPIC_API_KEY (required for anthropic: models).
      --gemini-base-url <url>    Default: $GEMINI_BASE_URL, else ${Gemini.defaultBaseUrl}.
                                 Key: $GEMINI_API_KEY, else $GOOGLE_API_KEY (required for gemini: models).

Errors print one line on stderr. When every model fails, the exit code is that of the last failure.

Exit codes
${codes.join("\n")}
`
}

/**
 * The process as the command sees it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Io {
  readonly stdout: (text: string) => void
  readonly stderr: (text: string) => void
  readonly env: Readonly<Record<string, string | undefined>>
  /** Read only when no prompt is given and it is not a terminal. */
  readonly stdin?: { readonly isTTY: boolean; readonly read: () => Promise<string> } | undefined
  /** Aborting it stops the run (exit 130), e.g. on Ctrl-C. */
  readonly signal?: AbortSignal | undefined
}

/**
 * A logger for the router's own messages in a terminal: one short line per message at `Warning` or above. The retry
 * notices are left out because `onAttempt` reports every attempt.
 *
 * @since 0.1.0
 * @category logging
 */
export const terminalLogger = (write: (line: string) => void): Layer.Layer<never> =>
  Logger.replace(
    Logger.defaultLogger,
    Logger.make(({ annotations, logLevel, message }) => {
      if (LogLevel.lessThan(logLevel, LogLevel.Warning) || HashMap.has(annotations, "waitMillis")) return
      const text = Array.isArray(message) ? message.map(String).join(" ") : String(message)
      write(`${logLevel.label.toLowerCase()}: ${oneLine(text)}`)
    })
  )

const attemptJson = (attempt: Attempt.Attempt) => ({
  index: attempt.index,
  attempt: attempt.attempt,
  model: attempt.model,
  provider: attempt.provider,
  outcome: attempt.outcome,
  startedAt: attempt.startedAt,
  endedAt: attempt.endedAt,
  durationMillis: attempt.durationMillis,
  ...(attempt.waitMillis === undefined ? {} : { waitMillis: attempt.waitMillis }),
  ...(attempt.note === undefined ? {} : { note: attempt.note }),
  ...(attempt.reopensAt === undefined ? {} : { reopensAt: attempt.reopensAt }),
  ...(attempt.limit === undefined ? {} : { limit: attempt.limit }),
  ...(attempt.error === undefined ? {} : { error: errorJson(attempt.error) })
})

const errorJson = (error: { readonly _tag: string; readonly message: string }): Record<string, unknown> => {
  const out: Record<string, unknown> = { tag: error._tag, message: error.message }
  for (const [key, value] of Object.entries(error) as Array<[string, unknown]>) {
    if (key === "_tag" || key === "trail" || value === undefined) continue
    out[key] = key === "cause" ? errorJson(value as RouterError.AttemptError) : value
  }
  return out
}

const healthJson = (deployment: Health.Deployment) => ({
  ...deployment,
  reopensAt: deployment.reopensAt ?? null,
  reason: deployment.reason ?? null
})

/**
 * The health of a router's models (`router.health`, taken at `now`, epoch ms) as a small table: one line per model
 * after a header, with its breaker's state, failures in a row, trips, requests in flight, how long until it reopens
 * and why it opened; when a model declares per-minute limits, what is left of them.
 *
 * @since 0.2.0
 * @category formatting
 */
export const formatHealth = (deployments: ReadonlyArray<Health.Deployment>, now: number): string => {
  const perMinute = deployments.some((d) => d.remainingRequests !== undefined || d.remainingTokens !== undefined)
  const header = [
    "model",
    "state",
    "failures in a row",
    "trips",
    "in flight",
    ...(perMinute ? ["left this minute"] : []),
    "reopens in",
    "why"
  ]
  const rows = deployments.map((d) => [
    `${d.provider}/${d.model}`,
    d.probing ? `${d.state}, probing` : d.state,
    String(d.consecutiveFailures),
    String(d.trips),
    d.limits.maxConcurrent === undefined ? String(d.inFlight) : `${d.inFlight} of ${d.limits.maxConcurrent}`,
    ...(perMinute ? [left(d)] : []),
    d.reopensAt === undefined ? "-" : reopensIn(d.reopensAt - now),
    // Closed yet not open to requests: a server's Retry-After holds it.
    d.reason ?? (d.reopensAt === undefined ? "-" : "the server asked to wait (Retry-After)")
  ])
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i]!.length)))
  const numeric = (i: number) => i >= 2 && i <= 4
  return [header, ...rows].map((cells, r) =>
    cells.map((cell, i) =>
      i === cells.length - 1 ? cell : r > 0 && numeric(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)
    ).join("  ")
  ).join("\n")
}

const left = (d: Health.Deployment): string => {
  const parts: Array<string> = []
  if (d.remainingRequests !== undefined) parts.push(`${d.remainingRequests}/${d.limits.requestsPerMinute} requests`)
  if (d.remainingTokens !== undefined) parts.push(`${d.remainingTokens}/${d.limits.tokensPerMinute} tokens`)
  return parts.length === 0 ? "-" : parts.join(", ")
}

// A wait as people read it: 250ms, 1.6s, 10m, 4m 30s.
const reopensIn = (millis: number): string => {
  if (millis < 1000) return `${Math.max(0, Math.round(millis))}ms`
  if (millis < 60_000) return `${(millis / 1000).toFixed(1)}s`
  const seconds = Math.ceil(millis / 1000)
  return seconds % 60 === 0 ? `${seconds / 60}m` : `${Math.floor(seconds / 60)}m ${seconds % 60}s`
}

type HealthNow = readonly [ReadonlyArray<Health.Deployment>, number]

// The models' health after the call, when --health asks for it and the router was built.
const healthAfter = (
  options: Options,
  router: Router.Service | undefined
): Effect.Effect<HealthNow | undefined> =>
  options.health !== "show" || router === undefined
    ? Effect.succeed(undefined)
    : Effect.zip(router.health, Clock.currentTimeMillis)

const printHealth = (err: (line: string) => void, [deployments, now]: HealthNow): void => {
  err("health after the call")
  for (const line of formatHealth(deployments, now).split("\n")) err(`  ${line}`)
}

interface Outcome {
  readonly text: string
  readonly model: string
  readonly provider: string
  readonly usage: { promptTokens: number; completionTokens: number; totalTokens: number } | undefined
  readonly finishReason: string | null
  readonly trail: ReadonlyArray<Attempt.Attempt>
}

/**
 * The command as an effect: runs the arguments and returns the exit code. Never fails; needs an `HttpClient`.
 *
 * @since 0.1.0
 * @category running
 */
export const program = (argv: ReadonlyArray<string>, io: Io): Effect.Effect<number, never, HttpClient.HttpClient> =>
  Effect.suspend(() => {
    const err = (line: string) => io.stderr(`llm-router: ${line}\n`)
    const parsed = parse(argv)
    if (parsed._tag === "Help") {
      io.stdout(helpText())
      return Effect.succeed(exitCodes.Ok.code)
    }
    if (parsed._tag === "UsageError") return Effect.succeed(usageError(err, parsed.message))
    const options = parsed.options
    // Whether stdout is in the middle of a streamed line, so that whatever ends the run starts on a fresh line.
    let midLine = false
    const endLine = () => {
      if (midLine) io.stdout("\n")
      midLine = false
    }
    // The router, once built: --health reads it after a failed call too.
    const built: { router?: Router.Service } = {}
    return execute(options, io, err, (text) => {
      io.stdout(text)
      midLine = !text.endsWith("\n")
    }, built).pipe(
      Effect.catchAll((error) =>
        Effect.map(healthAfter(options, built.router), (health) => {
          endLine()
          if (options.json) {
            const trail = "trail" in error ? error.trail ?? [] : []
            io.stdout(`${
              JSON.stringify({
                ok: false,
                error: errorJson(error),
                trail: trail.map(attemptJson),
                ...(health === undefined ? {} : { health: health[0].map(healthJson) })
              })
            }\n`)
          }
          err(oneLine(error.message))
          if (health !== undefined && !options.json) printHealth(err, health)
          return exitCodeOf(error)
        })
      ),
      Effect.catchAllDefect((defect) =>
        Effect.sync(() => {
          endLine()
          err(`internal error: ${oneLine(defect instanceof Error ? defect.message : String(defect))}`)
          return exitCodes.Internal.code
        })
      ),
      Effect.onInterrupt(() =>
        Effect.sync(() => {
          endLine()
          err("interrupted")
        })
      ),
      // Only --verbose may add lines to stderr; by default an error is the one line there.
      Effect.provide(options.verbose ? terminalLogger(err) : Logger.replace(Logger.defaultLogger, Logger.none))
    )
  })

const usageError = (err: (line: string) => void, message: string): number => {
  err(`${oneLine(message)} (see llm-router --help)`)
  return exitCodes.Usage.code
}

const execute = (
  options: Options,
  io: Io,
  err: (line: string) => void,
  print: (text: string) => void,
  built: { router?: Router.Service }
): Effect.Effect<number, RouterError.RouterStreamError | RouterError.RouterConfigError, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    let prompt = options.prompt
    if (prompt === undefined) {
      const stdin = io.stdin
      if (stdin === undefined || stdin.isTTY) {
        return usageError(err, "no prompt: pass --prompt, text after the flags, or pipe it on stdin")
      }
      prompt = (yield* Effect.promise(() => stdin.read())).replace(/\r?\n$/, "")
      if (prompt.trim() === "") return usageError(err, "the prompt on stdin is empty")
    }

    const models = yield* modelsFor(options.models, options, io.env)
    const startedAt = Date.now()
    const router = yield* Router.make({
      models,
      retry: options.maxAttempts === undefined ? undefined : { maxAttempts: options.maxAttempts },
      timeout: {
        attempt: options.timeout,
        firstToken: options.firstTokenTimeout,
        stall: options.stallTimeout,
        deadline: options.deadline
      },
      onAttempt: options.verbose
        ? (attempt) => err(`+${((attempt.endedAt - startedAt) / 1000).toFixed(2)}s ${Attempt.formatAttempt(attempt)}`)
        : undefined,
      ...(options.health === "off" ? { health: false } : {})
    })
    built.router = router
    const request: ChatRequest.ChatRequest = {
      messages: options.system === undefined
        ? [{ role: "user", content: prompt }]
        : [{ role: "system", content: options.system }, { role: "user", content: prompt }],
      ...(options.temperature === undefined ? {} : { temperature: options.temperature }),
      ...(options.maxTokens === undefined ? {} : { max_tokens: options.maxTokens })
    }

    const outcome: Outcome = options.stream
      ? yield* streamed(router.stream(request), options.json ? undefined : print)
      : yield* Effect.map(router.generate(request), (response) => ({
        text: response.text,
        model: response.model,
        provider: response.provider,
        usage: response.usage === undefined ? undefined : { ...response.usage },
        finishReason: response.choices[0]?.finishReason ?? null,
        trail: response.trail
      }))

    const health = yield* healthAfter(options, router)
    if (options.json) {
      io.stdout(`${
        JSON.stringify({
          ok: true,
          text: outcome.text,
          model: outcome.model,
          provider: outcome.provider,
          usage: outcome.usage ?? null,
          finishReason: outcome.finishReason,
          trail: outcome.trail.map(attemptJson),
          ...(health === undefined ? {} : { health: health[0].map(healthJson) })
        })
      }\n`)
    } else if (options.stream) {
      // Tokens are already out; end their line.
      if (outcome.text.length > 0 && !outcome.text.endsWith("\n")) print("\n")
    } else if (outcome.text.length > 0) {
      print(outcome.text.endsWith("\n") ? outcome.text : `${outcome.text}\n`)
    }
    if (health !== undefined && !options.json) printHealth(err, health)
    return exitCodes.Ok.code
  })

// Folds the stream as it goes, printing the first choice's text live when asked to.
const streamed = (
  stream: Stream.Stream<ChatChunk, RouterError.RouterStreamError>,
  print: ((text: string) => void) | undefined
): Effect.Effect<Outcome, RouterError.RouterStreamError> =>
  Effect.suspend(() => {
    let text = ""
    let model = ""
    let provider = ""
    let usage: Outcome["usage"]
    let finishReason: string | null = null
    let trail: ReadonlyArray<Attempt.Attempt> = []
    return Stream.runForEach(stream, (chunk) =>
      Effect.sync(() => {
        switch (chunk._tag) {
          case "Started":
            model = chunk.model
            provider = chunk.provider
            trail = chunk.trail
            return
          case "TextDelta":
            if (chunk.index !== 0) return
            text += chunk.text
            print?.(chunk.text)
            return
          case "Finish":
            if (chunk.index === 0) finishReason = chunk.reason
            return
          case "Usage":
            usage = {
              promptTokens: chunk.promptTokens,
              completionTokens: chunk.completionTokens,
              totalTokens: chunk.totalTokens
            }
            return
        }
      })).pipe(Effect.map(() => ({ text, model, provider, usage, finishReason, trail })))
  })

/**
 * Runs the command on `FetchHttpClient` and resolves with its exit code. Never rejects.
 *
 * @since 0.1.0
 * @category running
 */
export const run = async (argv: ReadonlyArray<string>, io: Io): Promise<number> => {
  const exit = await Effect.runPromiseExit(
    Effect.provide(program(argv, io), FetchHttpClient.layer),
    io.signal === undefined ? undefined : { signal: io.signal }
  )
  if (Exit.isSuccess(exit)) return exit.value
  if (Cause.isInterruptedOnly(exit.cause)) return exitCodes.Interrupted.code
  io.stderr(`llm-router: internal error: ${oneLine(Cause.pretty(exit.cause).split("\n")[0] ?? "")}\n`)
  return exitCodes.Internal.code
}
