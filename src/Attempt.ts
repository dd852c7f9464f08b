/**
 * The trail: one record per attempt of a routed call, in order.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"
import { AttemptError, formatMillis } from "./RouterError.js"

/**
 * What the router did after an attempt.
 *
 * - `success`: the attempt answered; the call is done.
 * - `retry`: the same model is tried again after `waitMillis`.
 * - `fallback`: the next model in the list is tried.
 * - `failed`: the call ends with this attempt's error.
 *
 * @since 0.1.0
 * @category Models
 */
export const Outcome = Schema.Literal("success", "retry", "fallback", "failed")

/**
 * @since 0.1.0
 * @category Models
 */
export type Outcome = typeof Outcome.Type

/**
 * One attempt on one model.
 *
 * @since 0.1.0
 * @category Models
 */
export class Attempt extends Schema.Class<Attempt>("effect-llm-router/Attempt")({
  /** 1-based position of this attempt in the whole call. */
  index: Schema.Int,
  /** 1-based attempt number on this model. */
  attempt: Schema.Int,
  model: Schema.String,
  provider: Schema.String,
  /** Clock time (epoch milliseconds) when the attempt started and ended. */
  startedAt: Schema.Number,
  endedAt: Schema.Number,
  outcome: Outcome,
  /** Why the attempt failed; absent on success. */
  error: Schema.optional(Schema.suspend(() => AttemptError)),
  /** The wait before the next attempt on the same model (only for `retry`). */
  waitMillis: Schema.optional(Schema.NonNegative),
  /** Why the router chose this outcome, when it is not obvious (e.g. a `Retry-After` over the cap). */
  note: Schema.optional(Schema.String)
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
 * A readable timeline of a trail, one line per attempt, times relative to the first attempt.
 *
 * @since 0.1.0
 * @category Formatting
 */
export const formatTimeline = (trail: ReadonlyArray<Attempt>): string => {
  if (trail.length === 0) return "(no attempts)"
  const origin = trail[0]!.startedAt
  const width = Math.max(...trail.map((a) => `${a.provider}/${a.model}`.length))
  return trail.map((a) => {
    const at = `+${formatMillis(a.startedAt - origin)}`.padStart(9)
    const who = `${a.provider}/${a.model}`.padEnd(width)
    const what = a.error === undefined ? `ok in ${formatMillis(a.durationMillis)}` : describeError(a.error)
    const next = a.outcome === "retry"
      ? `→ retry in ${formatMillis(a.waitMillis ?? 0)}`
      : a.outcome === "fallback"
      ? "→ next model"
      : a.outcome === "failed"
      ? "→ gave up"
      : "✓ served"
    const note = a.note === undefined ? "" : ` (${a.note})`
    return `${at}  ${who}  #${a.attempt}  ${what}  ${next}${note}`
  }).join("\n")
}

const describeError = (error: AttemptError): string => {
  const status = error.status === undefined ? "" : ` ${error.status}`
  return `${error._tag}${status}`
}

/**
 * One attempt as one readable line, for live progress from `onAttempt`, e.g.
 * `openai/gpt-4o #1: 429 rate limited, server asked to wait 1s → retry in 1s`.
 *
 * @since 0.1.0
 * @category Formatting
 */
export const formatAttempt = (attempt: Attempt): string => {
  const what = attempt.error === undefined
    ? `ok after ${formatMillis(attempt.durationMillis)}`
    : explainError(attempt.error)
  const next = attempt.outcome === "retry"
    ? `retry in ${formatMillis(attempt.waitMillis ?? 0)}`
    : attempt.outcome === "fallback"
    ? "next model"
    : attempt.outcome === "failed"
    ? "gave up"
    : "served"
  const note = attempt.note === undefined ? "" : ` (${attempt.note})`
  return `${attempt.provider}/${attempt.model} #${attempt.attempt}: ${what} → ${next}${note}`
}

// Reasons come from transports and servers: keep them to one short line.
const oneLine = (text: string): string => {
  const flat = text.replace(/\s+/g, " ").trim()
  return flat.length > 120 ? `${flat.slice(0, 119)}…` : flat
}

const explainError = (error: AttemptError): string => {
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
    default:
      what = error._tag.replace(/(?<=[a-z])(?=[A-Z])/g, " ").toLowerCase()
  }
  const status = error.status === undefined ? "" : `${error.status} `
  const wait = error.retryAfterMillis === undefined
    ? ""
    : `, server asked to wait ${formatMillis(error.retryAfterMillis)}`
  return `${status}${what}${wait}`
}
