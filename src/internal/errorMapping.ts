/**
 * From what a server or the transport said to a tagged error.
 *
 * @internal
 */
import * as Redacted from "effect/Redacted"
import * as RouterError from "../RouterError.js"

/** @internal */
export interface CallInfo {
  readonly provider: string
  readonly model: string
  readonly attempt: number
}

const EXCERPT_LENGTH = 400

// Key shapes of the common providers, redacted even when the server echoes a key we did not send.
const keyPattern =
  /\b(sk-[A-Za-z0-9_-]{6,}|sk-ant-[A-Za-z0-9_-]{6,}|gsk_[A-Za-z0-9]{6,}|Bearer\s+[A-Za-z0-9._~+/-]{6,}=*)/g

/** @internal */
export const makeRedactor = (secrets: ReadonlyArray<Redacted.Redacted<string>>): (text: string) => string => {
  const values = secrets.map((s) => Redacted.value(s)).filter((s) => s.length > 0)
  return (text) => {
    let out = text
    for (const value of values) out = out.split(value).join("<redacted>")
    return out.replace(keyPattern, "<redacted>")
  }
}

/** @internal */
export const excerpt = (text: string, redact: (text: string) => string): string => {
  const clean = redact(text).replace(/\s+/g, " ").trim()
  return clean.length > EXCERPT_LENGTH ? `${clean.slice(0, EXCERPT_LENGTH)}…` : clean
}

/**
 * `retry-after-ms` (milliseconds, OpenAI and Azure), then `Retry-After` as seconds or as an HTTP date (RFC 9110).
 *
 * @internal
 */
export const parseRetryAfter = (
  headers: Readonly<Record<string, string | undefined>>,
  nowMillis: number
): number | undefined => {
  const ms = headers["retry-after-ms"]
  if (ms !== undefined) {
    const value = Number(ms)
    if (Number.isFinite(value) && value >= 0) return value
  }
  const raw = headers["retry-after"]
  if (raw === undefined) return undefined
  const trimmed = raw.trim()
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed) * 1000
  const date = Date.parse(trimmed)
  if (Number.isNaN(date)) return undefined
  return Math.max(0, date - nowMillis)
}

interface ErrorDetails {
  readonly code: string | undefined
  readonly type: string | undefined
  readonly message: string | undefined
}

/** Reads `{ error: { code, type, message } }` (OpenAI), `{ error: "…" }` and `{ message }` (GPTRouter). */
/** @internal */
export const errorDetails = (body: unknown): ErrorDetails => {
  let code: string | undefined
  let type: string | undefined
  let message: string | undefined
  const pick = (o: Record<string, unknown>) => {
    if (typeof o.code === "string") code ??= o.code
    if (typeof o.type === "string") type ??= o.type
    if (typeof o.message === "string") message ??= o.message
  }
  if (typeof body === "object" && body !== null) {
    const o = body as Record<string, unknown>
    if (typeof o.error === "object" && o.error !== null) pick(o.error as Record<string, unknown>)
    else if (typeof o.error === "string") message = o.error
    pick(o)
  }
  return { code, type, message }
}

type AttemptTag = RouterError.AttemptErrorTag

/** A failure that the provider named by code or type; wins over the status. */
const tagFromDetails = (details: ErrorDetails): AttemptTag | undefined => {
  const words = `${details.code ?? ""} ${details.type ?? ""}`.toLowerCase()
  const message = (details.message ?? "").toLowerCase()
  if (/insufficient_quota|billing|quota_exceeded|credit/.test(words)) return "QuotaExhausted"
  if (/context_length|context_window|max_tokens_exceeded|string_above_max_length/.test(words)) {
    return "ContextLengthExceeded"
  }
  if (/maximum context length|context window|too many tokens|prompt is too long/.test(message)) {
    return "ContextLengthExceeded"
  }
  if (/content_filter|content_policy|moderation|safety/.test(words)) return "ContentFiltered"
  if (/model_not_found/.test(words)) return "ModelNotFound"
  if (/rate_limit|rate-limit|too_many_requests/.test(words)) return "RateLimited"
  if (/overloaded|unavailable/.test(words)) return "ServiceUnavailable"
  // GPTRouter answers 400 "No models available" when none of the models sent is healthy: another model may be.
  if (/no models? (is |are )?available/.test(message)) return "ServiceUnavailable"
  if (/timeout/.test(words)) return "Timeout"
  if (/server_error|internal/.test(words)) return "ServerError"
  return undefined
}

const tagFromStatus = (status: number, overrides: Readonly<Record<number, AttemptTag>>): AttemptTag => {
  const override = overrides[status]
  if (override !== undefined) return override
  switch (status) {
    case 401:
      return "AuthenticationFailed"
    case 402:
      return "QuotaExhausted"
    case 403:
      return "PermissionDenied"
    case 404:
      return "ModelNotFound"
    case 408:
      return "Timeout"
    case 413:
      return "ContextLengthExceeded"
    case 429:
      return "RateLimited"
    case 503:
    case 529:
      return "ServiceUnavailable"
  }
  if (status >= 500) return "ServerError"
  if (status >= 400) return "BadRequest"
  return "MalformedResponse"
}

/** @internal */
export const make = (
  tag: AttemptTag,
  call: CallInfo,
  extra: {
    readonly status?: number | undefined
    readonly body?: string | undefined
    readonly retryAfterMillis?: number | undefined
    readonly reason?: string | undefined
  }
): RouterError.AttemptError => {
  const fields = {
    provider: call.provider,
    model: call.model,
    attempt: call.attempt,
    ...(extra.status === undefined ? {} : { status: extra.status }),
    ...(extra.body === undefined ? {} : { body: extra.body }),
    ...(extra.retryAfterMillis === undefined ? {} : { retryAfterMillis: extra.retryAfterMillis })
  }
  const options = { disableValidation: true }
  switch (tag) {
    case "RateLimited":
      return new RouterError.RateLimited(fields, options)
    case "QuotaExhausted":
      return new RouterError.QuotaExhausted(fields, options)
    case "AuthenticationFailed":
      return new RouterError.AuthenticationFailed(fields, options)
    case "PermissionDenied":
      return new RouterError.PermissionDenied(fields, options)
    case "BadRequest":
      return new RouterError.BadRequest(fields, options)
    case "ContextLengthExceeded":
      return new RouterError.ContextLengthExceeded(fields, options)
    case "ContentFiltered":
      return new RouterError.ContentFiltered(fields, options)
    case "ModelNotFound":
      return new RouterError.ModelNotFound(fields, options)
    case "ServerError":
      return new RouterError.ServerError(fields, options)
    case "ServiceUnavailable":
      return new RouterError.ServiceUnavailable(fields, options)
    case "Timeout":
      return new RouterError.Timeout({ ...fields, phase: "server" }, options)
    case "NetworkError":
      return new RouterError.NetworkError({ ...fields, reason: extra.reason ?? "connection failed" }, options)
    case "MalformedResponse":
      return new RouterError.MalformedResponse({ ...fields, reason: extra.reason ?? "unexpected response" }, options)
  }
}

/**
 * An error status: the provider's error code decides when it names a failure mode (a 429 with
 * `insufficient_quota` is quota, not rate limiting); otherwise the status does.
 *
 * @internal
 */
export const fromStatus = (options: {
  readonly call: CallInfo
  readonly status: number
  readonly headers: Readonly<Record<string, string | undefined>>
  readonly bodyText: string
  readonly nowMillis: number
  readonly redact: (text: string) => string
  readonly overrides?: Readonly<Record<number, AttemptTag>>
}): RouterError.AttemptError => {
  let parsed: unknown = undefined
  try {
    parsed = JSON.parse(options.bodyText)
  } catch {
    // a non-JSON error page: the status alone decides
  }
  const byStatus = tagFromStatus(options.status, options.overrides ?? {})
  const byDetails = tagFromDetails(errorDetails(parsed))
  // A code only refines within the failure family the status allows: a 503 body saying "server_error" stays
  // unavailable, but a 400 or 429 body naming quota, context length or the content filter is that.
  const tag = byDetails !== undefined && refines(byStatus, byDetails) ? byDetails : byStatus
  const retryAfterMillis = parseRetryAfter(options.headers, options.nowMillis)
  return make(tag, options.call, {
    status: options.status,
    body: excerpt(options.bodyText, options.redact),
    retryAfterMillis
  })
}

const refines = (byStatus: AttemptTag, byDetails: AttemptTag): boolean => {
  switch (byDetails) {
    case "QuotaExhausted":
      return byStatus === "RateLimited" || byStatus === "BadRequest" || byStatus === "PermissionDenied"
    case "ContextLengthExceeded":
    case "ContentFiltered":
      return byStatus === "BadRequest"
    case "ModelNotFound":
      return byStatus === "BadRequest"
    case "ServiceUnavailable":
      return byStatus === "BadRequest"
    default:
      return false
  }
}

/**
 * An error object that arrived inside a 200 response (an SSE `{"error": …}` or a GPTRouter `error` event).
 *
 * @internal
 */
export const fromInBand = (
  call: CallInfo,
  payload: unknown,
  redact: (text: string) => string
): RouterError.AttemptError => {
  const details = errorDetails(payload)
  const tag = tagFromDetails(details) ?? "ServerError"
  return make(tag, call, { body: excerpt(JSON.stringify(payload), redact) })
}
