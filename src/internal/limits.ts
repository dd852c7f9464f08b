/**
 * Deployment limits: their checks, the token estimate of a request, and the per-minute buckets. The buckets are plain
 * functions over two numbers (a level and the instant it was read), so the Redis store's scripts apply the same rules.
 *
 * A bucket holds one minute's worth and refills continuously. Levels are kept in units of 1/60 000 of a request or token
 * (`scale`): a bucket of `limit` per minute then refills by exactly `limit` units per millisecond, so every level and
 * every instant "when is there room" is an integer, exact under a `TestClock` and identical in Lua.
 *
 * @internal
 */
import type { ChatRequest } from "../ChatRequest.js"
import type * as Health from "../Health.js"
import * as RouterError from "../RouterError.js"

/** @internal */
export const scale = 60_000

/**
 * Checks a model's limits; a bad one is a `RouterConfigError` naming it (`option` is the path of the limits).
 *
 * @internal
 */
export const check = (limits: Health.Limits | undefined, option: string): RouterError.RouterConfigError | undefined => {
  if (limits === undefined) return undefined
  if (typeof limits !== "object" || limits === null) {
    return new RouterError.RouterConfigError({ option, reason: "must be an object" })
  }
  for (const key of ["maxConcurrent", "requestsPerMinute", "tokensPerMinute"] as const) {
    const value = limits[key]
    if (value === undefined) continue
    // Whole numbers within what a double counts exactly once scaled (a bucket's level is `limit × 60 000`).
    if (!Number.isInteger(value) || value < 1 || value > 1e10) {
      return new RouterError.RouterConfigError({
        option: `${option}.${key}`,
        reason: `must be a whole number from 1 to 10 000 000 000 (got ${String(value)})`
      })
    }
  }
  const known = new Set(["maxConcurrent", "requestsPerMinute", "tokensPerMinute"])
  for (const key of Object.keys(limits)) {
    if (!known.has(key)) {
      return new RouterError.RouterConfigError({
        option: `${option}.${key}`,
        reason: "is not a limit (maxConcurrent, requestsPerMinute, tokensPerMinute)"
      })
    }
  }
  return undefined
}

/** Whether a model declares any limit. @internal */
export const any = (limits: Health.Limits | undefined): boolean =>
  limits !== undefined &&
  (limits.maxConcurrent !== undefined || limits.requestsPerMinute !== undefined ||
    limits.tokensPerMinute !== undefined)

const textLength = (value: unknown): number => {
  if (typeof value === "string") return value.length
  if (Array.isArray(value)) {
    let n = 0
    for (const part of value) {
      if (typeof part === "object" && part !== null && typeof (part as { text?: unknown }).text === "string") {
        n += (part as { text: string }).text.length
      }
    }
    return n
  }
  return 0
}

/**
 * A request's tokens before it is sent: its text (messages, tool calls, tool definitions) at four characters a token,
 * plus the `max_tokens` it may produce. Rough by design: the response's usage corrects it.
 *
 * @internal
 */
export const estimateTokens = (request: ChatRequest): number => {
  let chars = 0
  for (const message of request.messages) {
    chars += textLength(message.content)
    if (message.role === "assistant" && message.tool_calls !== undefined) {
      for (const call of message.tool_calls) chars += call.function.name.length + call.function.arguments.length
    }
  }
  if (request.tools !== undefined) chars += JSON.stringify(request.tools).length
  if (request.functions !== undefined) chars += JSON.stringify(request.functions).length
  return Math.ceil(chars / 4) + (request.max_tokens ?? 0)
}

/**
 * A bucket's level at `now`, in units, refilled since `at` and capped at a minute's worth. A bucket never seen is full.
 *
 * @internal
 */
export const level = (limit: number, stored: number | undefined, at: number, now: number): number =>
  stored === undefined ? limit * scale : Math.min(limit * scale, stored + Math.max(0, now - at) * limit)

/**
 * The units a request of `amount` needs to find in the bucket: its amount, or a full bucket when it is larger.
 *
 * @internal
 */
export const needed = (limit: number, amount: number): number => Math.min(amount, limit) * scale

/**
 * When a bucket at `current` units has `need` (epoch ms).
 *
 * @internal
 */
export const roomAt = (limit: number, current: number, need: number, now: number): number =>
  now + Math.ceil((need - current) / limit)
