/**
 * The trail: one record per attempt of a routed call, in order.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"
import { formatMillis, tagInWords } from "./internal/format.js"
import { AttemptError } from "./RouterError.js"

/**
 * What the router did after an attempt.
 *
 * - `success`: the attempt answered; the call is done.
 * - `retry`: the same model is tried again after `waitMillis`.
 * - `fallback`: the next model in the list is tried.
 * - `failed`: the call ends with this attempt's error.
 * - `skipped`: nothing was sent: the deployment's health said no (its breaker is open, a probe is in flight, the
 *   server asked to wait, or it is at one of its limits); the next model is tried. `note` says why, `reopensAt` when it
 *   reopens or has room, and `limit` which limit it is at.
 * - `cancelled`: a request of a hedged call that was interrupted because another request of the call won (or the
 *   call was cancelled); its socket was closed.
 *
 * @since 0.1.0
 * @category models
 */
export const Outcome = Schema.Literal("success", "retry", "fallback", "failed", "skipped", "cancelled")

/**
 * A deployment limit (`Health.Limits`): concurrent requests, requests per minute, tokens per minute.
 *
 * @since 0.3.0
 * @category models
 */
export const Limit = Schema.Literal("concurrency", "requests", "tokens")

/**
 * @since 0.3.0
 * @category models
 */
export type Limit = typeof Limit.Type

/**
 * @since 0.1.0
 * @category models
 */
export type Outcome = typeof Outcome.Type

/**
 * One attempt on one model.
 *
 * @since 0.1.0
 * @category models
 */
export class Attempt extends Schema.Class<Attempt>("effect-llm-router/Attempt")({
  /** 1-based position of this attempt in the whole call. */
  index: Schema.Int,
  /** 1-based attempt number on this model. */
  attempt: Schema.Int,
  model: Schema.String,
  provider: Schema.String,
  /** In a group (`Model.group`): the deployment (`Health.deploymentId`: provider, model, base URL, key fingerprint). */
  deployment: Schema.optional(Schema.String),
  /** Clock time (epoch milliseconds) when the attempt started and ended. */
  startedAt: Schema.Number,
  endedAt: Schema.Number,
  outcome: Outcome,
  /** Why the attempt failed; absent on success. */
  error: Schema.optional(Schema.suspend(() => AttemptError)),
  /** The wait before the next attempt on the same model (only for `retry`). */
  waitMillis: Schema.optional(Schema.NonNegative),
  /** Why the router chose this outcome, when it is not obvious (e.g. a `Retry-After` over the cap). */
  note: Schema.optional(Schema.String),
  /** `skipped`: when the deployment reopens (epoch milliseconds), when known. */
  reopensAt: Schema.optional(Schema.Number),
  /** `skipped` at a limit: which one. */
  limit: Schema.optional(Limit),
  /** A served attempt on a model with a price: what it cost (its usage at the model's price). */
  cost: Schema.optional(Schema.NonNegative),
  /** A hedged call: which of its requests made this attempt (0 the first, 1 the first hedge, …). */
  hedge: Schema.optional(Schema.Int),
  /** The attempt probed a half-open deployment: its outcome closed the deployment's breaker, or opened it again. */
  probe: Schema.optional(Schema.Boolean)
}) {
  /**
   * How long the attempt took, in milliseconds.
   *
   * @since 0.1.0
   */
  get durationMillis(): number {
    return this.endedAt - this.startedAt
  }
}

/**
 * A readable timeline of a trail, one line per attempt in the order they started (a hedged call's trail is in the
 * order they ended), times relative to the first: the same account of each attempt as {@link formatAttempt}, in
 * columns, with the failure's tag.
 *
 * @since 0.1.0
 * @category formatting
 */
export const formatTimeline = (trail: ReadonlyArray<Attempt>): string => {
  if (trail.length === 0) return "(no attempts)"
  // In the order they started: a hedged call's records are in the order they ended.
  const started = [...trail].sort((a, b) => a.startedAt - b.startedAt)
  const origin = started[0]!.startedAt
  const width = Math.max(...trail.map((a) => `${a.provider}/${a.model}`.length))
  return started.map((a) => {
    const at = `+${formatMillis(a.startedAt - origin)}`.padStart(9)
    const who = `${a.provider}/${a.model}`.padEnd(width)
    const tag = a.error === undefined ? "" : `${a.error._tag}: `
    return `${at}  ${who}  #${a.attempt}  ${tag}${describe(a)}`
  }).join("\n")
}

/**
 * One attempt as one readable line, for live progress from `onAttempt`, e.g.
 * `openai/gpt-4o #1: 429 rate limited, server asked to wait 1s → retry in 1s`.
 *
 * @since 0.1.0
 * @category formatting
 */
export const formatAttempt = (attempt: Attempt): string =>
  `${attempt.provider}/${attempt.model} #${attempt.attempt}: ${describe(attempt)}`

/** What happened and what the router did next: `429 rate limited → retry in 1s (note)`. */
const describe = (attempt: Attempt): string => {
  const what = (attempt.hedge !== undefined && attempt.hedge > 0 ? `hedge ${attempt.hedge}: ` : "") +
    (attempt.probe === true ? "probe: " : "") + (attempt.error !== undefined
      ? describeError(attempt.error)
      : attempt.outcome === "skipped"
      ? "skipped"
      : attempt.outcome === "cancelled"
      ? `no answer after ${formatMillis(attempt.durationMillis)}`
      : `ok after ${formatMillis(attempt.durationMillis)}`)
  const note = attempt.note === undefined ? "" : ` (${attempt.note})`
  return `${what} → ${describeOutcome(attempt)}${note}`
}

const describeOutcome = (attempt: Attempt): string => {
  switch (attempt.outcome) {
    case "success":
      return "served"
    case "retry":
      return `retry in ${formatMillis(attempt.waitMillis ?? 0)}`
    case "fallback":
    case "skipped":
      return "next model"
    case "cancelled":
      return "cancelled"
    case "failed":
      return "gave up"
  }
}

// Reasons come from transports and servers: keep them to one short line.
const oneLine = (text: string): string => {
  const flat = text.replace(/\s+/g, " ").trim()
  return flat.length > 120 ? `${flat.slice(0, 119)}…` : flat
}

const describeError = (error: AttemptError): string => {
  let what: string
  switch (error._tag) {
    case "Timeout": {
      const after = error.afterMillis === undefined ? "" : formatMillis(error.afterMillis)
      what = error.phase === "first-token"
        ? `no first token within ${after}`
        : error.phase === "stall"
        ? `stalled for ${after}`
        : error.phase === "server"
        ? "server timeout"
        : `timed out after ${after}`
      break
    }
    case "NetworkError":
      what = `network error (${oneLine(error.reason)})`
      break
    case "MalformedResponse":
      what = `malformed response (${oneLine(error.reason)})`
      break
    case "ResponseRejected":
      what = `answer rejected (${oneLine(error.reason)})`
      break
    default:
      what = tagInWords(error._tag)
  }
  const status = error.status === undefined ? "" : `${error.status} `
  const wait = error.retryAfterMillis === undefined
    ? ""
    : `, server asked to wait ${formatMillis(error.retryAfterMillis)}`
  return `${status}${what}${wait}`
}
