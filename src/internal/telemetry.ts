/**
 * Spans, span events and metrics of routed calls (names in `Telemetry.ts`). The plan calls in at the points that
 * already exist (an attempt sent, an attempt recorded in the trail, a breaker change, a stream's end); nothing here
 * runs when the router is untraced and its metrics are off.
 *
 * @internal
 */
import type * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as FiberRef from "effect/FiberRef"
import type * as Metric from "effect/Metric"
import * as MetricLabel from "effect/MetricLabel"
import * as Option from "effect/Option"
import type * as Tracer from "effect/Tracer"
import type { Attempt } from "../Attempt.js"
import type { ChatRequest, Message } from "../ChatRequest.js"
import type { Choice, Usage } from "../ChatResponse.js"
import type * as Health from "../Health.js"
import type { Entry, Model } from "../Model.js"
import { isGroup } from "../Model.js"
import type { Endpoint, ResponseData } from "../Provider.js"
import type * as RouterError from "../RouterError.js"
import * as Telemetry from "../Telemetry.js"
import * as costs from "./cost.js"
import { makeRedactor } from "./errorMapping.js"

const A = Telemetry.Attributes
const N = Telemetry.Names

/** @internal */
export interface State {
  /** A tracer other than the built-in one is installed: spans are worth making. */
  readonly spans: boolean
  readonly metrics: boolean
  readonly captureContent: boolean
  /** `spans || metrics`: whether the plan calls in at all. */
  readonly active: boolean
}

/** @internal */
export const resolve = (options: Telemetry.Options | undefined, traced: boolean): State => {
  const metrics = options?.metrics === true
  return {
    spans: traced,
    metrics,
    captureContent: traced && options?.captureContent === true,
    active: traced || metrics
  }
}

/**
 * Where the plan keeps the span of the attempt in flight, until the trail records the attempt's outcome.
 *
 * @internal
 */
export interface SpanHolder {
  attemptSpan: Tracer.Span | undefined
  /** The model of the attempt in progress (sent or skipped). */
  attemptModel: Model | undefined
}

// ---------------------------------------------------------------------------------------------------------------
// attributes

interface Server {
  readonly address: string
  readonly port: number | undefined
}

const servers = new WeakMap<Endpoint, Server>()
const serverOf = (endpoint: Endpoint): Server => {
  let server = servers.get(endpoint)
  if (server === undefined) {
    // Host and port only: a URL's user info is never read.
    const url = new URL(endpoint.baseUrl)
    const port = url.port === ""
      ? (url.protocol === "https:" ? 443 : url.protocol === "http:" ? 80 : undefined)
      : +url.port
    server = { address: url.hostname, port }
    servers.set(endpoint, server)
  }
  return server
}

// A deployment's id holds its base URL: a key someone put in it (a query parameter) is masked like in errors.
const redactors = new WeakMap<Endpoint, (text: string) => string>()
const redactorOf = (endpoint: Endpoint) => {
  let redact = redactors.get(endpoint)
  if (redact === undefined) {
    redact = makeRedactor(endpoint.secrets)
    redactors.set(endpoint, redact)
  }
  return redact
}

/** The list as the call span names it. */
const entryName = (entry: Entry): string => isGroup(entry) ? `group:${entry.name}` : `${entry.provider}/${entry.name}`

/** @internal */
export const callAttributes = (models: ReadonlyArray<Entry>): Record<string, unknown> => ({
  [A.models]: models.map(entryName)
})

/** @internal */
export const errorType = (error: { readonly _tag: string }): string =>
  error._tag === "DeadlineCut" ? "DeadlineExceeded" : error._tag

/** The call ended: who served it, or what it failed with. @internal */
export const annotateCall = (response: {
  readonly model: string
  readonly provider: string
  readonly trail: ReadonlyArray<Attempt>
  readonly cost?: number | undefined
}) =>
  Effect.annotateCurrentSpan({
    [A.servedBy]: `${response.provider}/${response.model}`,
    [A.attempts]: response.trail.length,
    ...(response.cost === undefined ? {} : { [A.cost]: response.cost })
  })

/** A stream's call span, once the stream is served. @internal */
export const streamServed = (span: Tracer.Span, model: Model, trail: ReadonlyArray<Attempt>): void => {
  span.attribute(A.servedBy, `${model.provider}/${model.name}`)
  span.attribute(A.attempts, trail.length)
}

/** @internal */
export const annotateCallError = (error: RouterError.RouterError) =>
  Effect.annotateCurrentSpan({
    [A.errorType]: error._tag,
    ...("trail" in error && Array.isArray(error.trail) ? { [A.attempts]: error.trail.length } : {})
  })

const requestAttributes = (request: ChatRequest, stream: boolean, into: Record<string, unknown>) => {
  if (request.max_tokens !== undefined) into[A.requestMaxTokens] = request.max_tokens
  if (request.temperature !== undefined) into[A.requestTemperature] = request.temperature
  if (request.top_p !== undefined) into[A.requestTopP] = request.top_p
  if (request.frequency_penalty !== undefined) into[A.requestFrequencyPenalty] = request.frequency_penalty
  if (request.presence_penalty !== undefined) into[A.requestPresencePenalty] = request.presence_penalty
  if (request.seed !== undefined) into[A.requestSeed] = request.seed
  if (request.n !== undefined && request.n !== 1) into[A.requestChoiceCount] = request.n
  if (request.stop !== undefined) {
    into[A.requestStopSequences] = typeof request.stop === "string"
      ? [request.stop]
      : request.stop
  }
  if (stream) into[A.requestStream] = true
}

// ---------------------------------------------------------------------------------------------------------------
// content (opt-in), in the conventions' input and output message schemas

const textOf = (content: unknown): string | undefined => typeof content === "string" ? content : undefined

const inputMessage = (message: Message): Record<string, unknown> => {
  const parts: Array<Record<string, unknown>> = []
  switch (message.role) {
    case "user": {
      if (typeof message.content === "string") parts.push({ type: "text", content: message.content })
      else {
        for (const part of message.content) {
          parts.push(part.type === "text" ? { type: "text", content: textOf(part.text) ?? "" } : { type: part.type })
        }
      }
      break
    }
    case "assistant": {
      if (typeof message.content === "string") parts.push({ type: "text", content: message.content })
      for (const call of message.tool_calls ?? []) {
        parts.push({ type: "tool_call", id: call.id, name: call.function.name, arguments: call.function.arguments })
      }
      break
    }
    case "tool":
      parts.push({ type: "tool_call_response", id: message.tool_call_id, response: message.content })
      break
    default:
      parts.push({ type: "text", content: message.content })
  }
  return { role: message.role === "function" ? "tool" : message.role, parts }
}

const outputMessages = (choices: ReadonlyArray<Choice>): string =>
  JSON.stringify(choices.map((choice) => ({
    role: "assistant",
    parts: [
      ...(choice.text === "" ? [] : [{ type: "text", content: choice.text }]),
      ...choice.toolCalls.map((call) => ({
        type: "tool_call",
        id: call.id,
        name: call.name,
        arguments: call.arguments
      }))
    ],
    finish_reason: choice.finishReason ?? ""
  })))

// ---------------------------------------------------------------------------------------------------------------
// attempt spans

/**
 * Runs an attempt in its inference span (`chat {model}`, kind client). The span stays open after the attempt: the
 * trail's record of the attempt ends it with the outcome (or, for a stream's serving attempt, the stream's end).
 *
 * @internal
 */
export const inAttemptSpan = <A, E extends { readonly _tag: string }>(
  state: State,
  holder: SpanHolder,
  attempt: Effect.Effect<A, E>,
  model: Model,
  request: ChatRequest,
  stream: boolean,
  fields: {
    readonly attempt: number
    readonly index: number
    readonly deployment: string | undefined
    readonly hedge: number | undefined
    readonly probe: boolean
  }
): Effect.Effect<A, E> => {
  const server = serverOf(model.endpoint)
  const attributes: Record<string, unknown> = {
    [A.operationName]: N.operation,
    [A.providerName]: model.provider,
    [A.requestModel]: model.name,
    [A.serverAddress]: server.address,
    [A.attempt]: fields.attempt,
    [A.index]: fields.index
  }
  if (server.port !== undefined) attributes[A.serverPort] = server.port
  requestAttributes(request, stream, attributes)
  if (fields.deployment !== undefined) attributes[A.deployment] = redactorOf(model.endpoint)(fields.deployment)
  if (fields.hedge !== undefined) attributes[A.hedge] = fields.hedge
  if (fields.probe) attributes[A.probe] = true
  if (state.captureContent) attributes[A.inputMessages] = JSON.stringify(request.messages.map(inputMessage))
  return Effect.flatMap(
    Effect.makeSpan(`${N.operation} ${model.name}`, { kind: "client", attributes }),
    (span) => {
      holder.attemptSpan = span
      return Effect.withParentSpan(
        Effect.tapError(attempt, (error) => Effect.sync(() => span.attribute(A.errorType, errorType(error)))),
        span
      )
    }
  )
}

/** A non-streaming attempt's answer, on its span. @internal */
export const annotateResponse = (state: State, data: ResponseData) =>
  Effect.annotateCurrentSpan(responseAttributes(state, data.id, data.model, data.choices, data.usage))

const responseAttributes = (
  state: State,
  id: string | undefined,
  model: string,
  choices: ReadonlyArray<Choice>,
  usage: Usage | undefined
): Record<string, unknown> => {
  const out: Record<string, unknown> = { [A.responseModel]: model }
  const reasons = choices.flatMap((c) => c.finishReason === null ? [] : [c.finishReason])
  if (reasons.length > 0) out[A.responseFinishReasons] = reasons
  if (id !== undefined && id !== "") out[A.responseId] = id
  if (usage !== undefined) {
    out[A.usageInputTokens] = usage.promptTokens
    out[A.usageOutputTokens] = usage.completionTokens
  }
  if (state.captureContent) out[A.outputMessages] = outputMessages(choices)
  return out
}

const nanos = (clock: Clock.Clock) => clock.unsafeCurrentTimeNanos()

const cancelled = Exit.interrupt(FiberId.none)

/**
 * The trail recorded an attempt: its span gets the outcome and ends (a stream's serving attempt ends with the
 * stream); the call span gets an event for a retry, fallback, skip, cancellation or final failure; the metrics count
 * it.
 *
 * @internal
 */
export const recorded = (
  state: State,
  attempt: Attempt,
  holder: SpanHolder,
  stream: boolean,
  clock: Clock.Clock
): Effect.Effect<void> => {
  const span = attempt.outcome === "skipped" ? undefined : holder.attemptSpan
  const model = holder.attemptModel!
  // A stream's serving attempt: its span goes on with the stream (which ends it), or is abandoned if the call is
  // interrupted before the stream takes it.
  const keepOpen = stream && attempt.outcome === "success"
  if (span !== undefined && !keepOpen) holder.attemptSpan = undefined
  const error = attempt.error === undefined ? undefined : errorType(attempt.error)
  const outcomeAttributes = (): Record<string, unknown> => {
    const out: Record<string, unknown> = { [A.outcome]: attempt.outcome }
    if (attempt.waitMillis !== undefined) out[A.waitMillis] = attempt.waitMillis
    if (attempt.note !== undefined) out[A.note] = attempt.note
    if (attempt.cost !== undefined) out[A.cost] = attempt.cost
    return out
  }
  const spans = !state.spans ? Effect.void : Effect.flatMap(Effect.currentSpan, (callSpan) =>
    Effect.sync(() => {
      const now = nanos(clock)
      if (span !== undefined) {
        const attrs = outcomeAttributes()
        for (const key in attrs) span.attribute(key, attrs[key])
        if (keepOpen) {
          span.attribute(A.responseTimeToFirstChunk, (attempt.endedAt - attempt.startedAt) / 1000)
        } else {
          span.end(
            now,
            attempt.outcome === "success"
              ? Exit.void
              : attempt.outcome === "cancelled"
              ? cancelled
              : Exit.fail(attempt.error ?? attempt.outcome)
          )
        }
      }
      const name = eventName[attempt.outcome]
      if (name === undefined) return
      const attrs: Record<string, unknown> = {
        [A.requestModel]: attempt.model,
        [A.providerName]: attempt.provider,
        [A.attempt]: attempt.attempt,
        [A.index]: attempt.index,
        ...outcomeAttributes()
      }
      if (error !== undefined) attrs[A.errorType] = error
      if (attempt.deployment !== undefined) attrs[A.deployment] = redactorOf(model.endpoint)(attempt.deployment)
      if (attempt.hedge !== undefined) attrs[A.hedge] = attempt.hedge
      if (attempt.outcome === "skipped") {
        if (attempt.note !== undefined) attrs[A.skipReason] = attempt.note
        if (attempt.limit !== undefined) attrs[A.limit] = attempt.limit
        if (attempt.reopensAt !== undefined) attrs[A.reopensAt] = attempt.reopensAt
      }
      callSpan.event(name, now, attrs)
    })).pipe(Effect.catchAll(() => Effect.void))
  if (!state.metrics) return spans
  return Effect.zipRight(
    spans,
    updateMetrics((update) => {
      update(attempts, 1, labelsOf(model, attempts, A.outcome, attempt.outcome))
      if (attempt.outcome === "fallback") update(fallbacks, 1, labelsOf(model, fallbacks, A.errorType, error))
      if (attempt.outcome === "skipped") return
      const seconds = (attempt.endedAt - attempt.startedAt) / 1000
      if (keepOpen) {
        update(timeToFirstChunk, seconds, labelsOf(model, timeToFirstChunk))
        return
      }
      const failure = attempt.outcome === "cancelled" ? "cancelled" : error
      update(operationDuration, seconds, labelsOf(model, operationDuration, A.errorType, failure))
      if (attempt.cost !== undefined) update(cost, attempt.cost, labelsOf(model, cost))
    })
  )
}

const eventName: Partial<Record<Attempt["outcome"], string>> = {
  retry: N.retry,
  fallback: N.fallback,
  skipped: N.skip,
  cancelled: N.cancel,
  failed: N.failed
}

/**
 * An attempt interrupted before the trail recorded it (the caller cancelled): its span ends as interrupted.
 *
 * @internal
 */
export const abandon = (holder: SpanHolder, clock: Clock.Clock): void => {
  const span = holder.attemptSpan
  if (span === undefined) return
  holder.attemptSpan = undefined
  if (span.status._tag === "Started") span.end(nanos(clock), cancelled)
}

/**
 * A non-streaming call succeeded: its token usage.
 *
 * @internal
 */
export const answered = (state: State, model: Model, data: ResponseData): Effect.Effect<void> =>
  !state.metrics || data.usage === undefined ?
    Effect.void :
    updateMetrics((update) => recordUsage(update, model, data.model, data.usage!))

const recordUsage = (update: Update, model: Model, responseModel: string, usage: Usage) => {
  const input = labelsOf(model, tokenUsage, A.responseModel, responseModel, A.tokenType, "input")
  const output = labelsOf(model, tokenUsage, A.responseModel, responseModel, A.tokenType, "output")
  update(tokenUsage, usage.promptTokens, input)
  update(tokenUsage, usage.completionTokens, output)
}

/**
 * A stream ended (its end, a failure after content, or the consumer stopping): the serving attempt's span gets the
 * answer so far and ends; the call span gets an event when it broke; the metrics get its duration, usage and
 * interruption.
 *
 * @internal
 */
export const streamEnded = (
  state: State,
  ended: {
    readonly model: Model
    readonly span: Tracer.Span | undefined
    readonly callSpan: Tracer.AnySpan | undefined
    readonly startedAt: number
    readonly id: string | undefined
    readonly responseModel: string
    readonly choices: () => ReadonlyArray<Choice>
    readonly usage: Usage | undefined
    readonly interruption: RouterError.StreamInterrupted | undefined
  },
  exit: Exit.Exit<unknown, unknown>
): Effect.Effect<void> =>
  Effect.clockWith((clock) => {
    const interruption = ended.interruption
    const error = interruption === undefined ? undefined : interruption.cause?._tag ?? interruption._tag
    const price = ended.model.price
    const spent = price === undefined || ended.usage === undefined ? undefined : costs.of(price, ended.usage)
    if (state.spans) {
      const now = nanos(clock)
      const span = ended.span
      if (span !== undefined && span.status._tag === "Started") {
        const attrs = responseAttributes(state, ended.id, ended.responseModel, ended.choices(), ended.usage)
        if (spent !== undefined) attrs[A.cost] = spent
        for (const key in attrs) span.attribute(key, attrs[key])
        if (error !== undefined) span.attribute(A.errorType, error)
        if (interruption !== undefined) span.attribute(A.interruptReason, interruption.reason)
        span.end(now, interruption !== undefined ? Exit.fail(interruption) : Exit.isFailure(exit) ? exit : Exit.void)
      }
      const callSpan = ended.callSpan
      if (interruption !== undefined && callSpan !== undefined && callSpan._tag === "Span") {
        callSpan.event(N.streamInterrupted, now, {
          [A.requestModel]: ended.model.name,
          [A.providerName]: ended.model.provider,
          [A.interruptReason]: interruption.reason,
          ...(error === undefined ? {} : { [A.errorType]: error })
        })
        callSpan.attribute(A.errorType, interruption._tag)
      }
    }
    if (!state.metrics) return Effect.void
    const seconds = (clock.unsafeCurrentTimeMillis() - ended.startedAt) / 1000
    return updateMetrics((update) => {
      update(operationDuration, seconds, labelsOf(ended.model, operationDuration, A.errorType, error))
      if (ended.usage !== undefined) recordUsage(update, ended.model, ended.responseModel, ended.usage)
      if (spent !== undefined) update(cost, spent, labelsOf(ended.model, cost))
      if (interruption !== undefined) {
        update(
          streamInterruptions,
          1,
          labelsOf(ended.model, streamInterruptions, A.interruptReason, interruption.reason)
        )
      }
    })
  })

/**
 * A deployment's breaker changed state: an event on the current span (when `event`), and the transitions metric.
 *
 * @internal
 */
export const breakerChanged = (
  state: State,
  model: Model,
  transition: Health.Transition,
  now: number,
  event: boolean
): Effect.Effect<void> => {
  const spans = !(event && state.spans) ?
    Effect.void :
    Effect.ignore(
      Effect.flatMap(Effect.currentSpan, (span) =>
        Effect.sync(() =>
          span.event(N.breaker, BigInt(now) * 1_000_000n, {
            [A.requestModel]: model.name,
            [A.providerName]: model.provider,
            [A.breakerFrom]: transition.from,
            [A.breakerTo]: transition.to,
            ...(transition.reason === undefined ? {} : { [A.breakerReason]: transition.reason }),
            ...(transition.reopensAt === undefined ? {} : { [A.reopensAt]: transition.reopensAt })
          })
        ))
    )
  if (!state.metrics) return spans
  return Effect.zipRight(
    spans,
    updateMetrics((update) =>
      update(
        breakerTransitions,
        1,
        labelsOf(model, breakerTransitions, A.breakerFrom, transition.from, A.breakerTo, transition.to)
      )
    )
  )
}

// ---------------------------------------------------------------------------------------------------------------
// metrics

type Update = (
  metric: Instrument,
  value: number,
  labels: ReadonlyArray<MetricLabel.MetricLabel>
) => void

/**
 * Updates metrics with the fiber's metric labels (`Effect.tagMetrics`) added to each. Without those, each update
 * passes the same label array for the same labels (see `labelsOf`): Effect caches a metric's hook per label array, so
 * an update is then a lookup rather than building and hashing a metric key.
 */
const updateMetrics = (f: (update: Update) => void): Effect.Effect<void> =>
  Effect.withFiberRuntime((fiber) => {
    const fiberLabels = fiber.getFiberRef(FiberRef.currentMetricLabels)
    f((instrument, value, labels) =>
      instrument.metric.unsafeUpdate(value, fiberLabels.length === 0 ? labels : [...fiberLabels, ...labels])
    )
    return Effect.void
  })

/** A metric, its unit (which `@effect/opentelemetry` reads from a `unit` label), and whether it carries the server. */
interface Instrument {
  readonly metric: Pick<Metric.Metric<unknown, number, unknown>, "unsafeUpdate">
  readonly name: string
  readonly unit: MetricLabel.MetricLabel
  readonly operation: boolean
}

const instrument = (metric: Instrument["metric"], name: string, unit: string, operation: boolean): Instrument => ({
  metric,
  name,
  unit: MetricLabel.make("unit", unit),
  operation
})

const U = Telemetry.units
const operationDuration = instrument(Telemetry.operationDuration, "duration", U.operationDuration, true)
const tokenUsage = instrument(Telemetry.tokenUsage, "tokens", U.tokenUsage, true)
const timeToFirstChunk = instrument(Telemetry.timeToFirstChunk, "ttfc", U.timeToFirstChunk, true)
const attempts = instrument(Telemetry.attempts, "attempts", U.attempts, false)
const fallbacks = instrument(Telemetry.fallbacks, "fallbacks", U.fallbacks, false)
const streamInterruptions = instrument(Telemetry.streamInterruptions, "interruptions", U.streamInterruptions, false)
const cost = instrument(Telemetry.cost, "cost", U.cost, false)
const breakerTransitions = instrument(Telemetry.breakerTransitions, "breaker", U.breakerTransitions, false)

const labelCache = new WeakMap<Model, Map<string, ReadonlyArray<MetricLabel.MetricLabel>>>()

/**
 * The labels of one update: the unit, the model's (and for the GenAI metrics the operation's and the server's), then
 * the given key/value pairs (a pair whose value is undefined is left out). The same array for the same labels.
 */
const labelsOf = (
  model: Model,
  instrument: Instrument,
  ...pairs: ReadonlyArray<string | undefined>
): ReadonlyArray<MetricLabel.MetricLabel> => {
  let perModel = labelCache.get(model)
  if (perModel === undefined) {
    perModel = new Map()
    labelCache.set(model, perModel)
  }
  const key = pairs.length === 0 ? instrument.name : `${instrument.name}\u0000${pairs.join("\u0000")}`
  let labels = perModel.get(key)
  if (labels === undefined) {
    const out = [instrument.unit]
    if (instrument.operation) out.push(MetricLabel.make(A.operationName, N.operation))
    out.push(MetricLabel.make(A.requestModel, model.name), MetricLabel.make(A.providerName, model.provider))
    if (instrument.operation) {
      const server = serverOf(model.endpoint)
      out.push(MetricLabel.make(A.serverAddress, server.address))
      if (server.port !== undefined) out.push(MetricLabel.make(A.serverPort, String(server.port)))
    }
    for (let i = 0; i + 1 < pairs.length; i += 2) {
      const value = pairs[i + 1]
      if (value !== undefined) out.push(MetricLabel.make(pairs[i]!, value))
    }
    labels = out
    perModel.set(key, labels)
  }
  return labels
}

/** @internal */
export const currentSpanOrUndefined: Effect.Effect<Tracer.AnySpan | undefined> = Effect.map(
  Effect.option(Effect.currentParentSpan),
  Option.getOrUndefined
)
