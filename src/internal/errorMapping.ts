/**
 * From what a server or the transport said to a tagged error.
 *
 * @internal
 */
import * as Redacted from "effect/Redacted"
import type { ErrorClassification, ErrorReport } from "../Provider.js"
import * as RouterError from "../RouterError.js"

/**
 * A protocol's own error classifier (`Endpoint.classifyError`).
 *
 * @internal
 */
export type Classifier = (error: ErrorReport) => ErrorClassification | undefined

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

/**
 * Below this length a secret is redacted where it stands as a word of its own, not inside other words: a placeholder
 * key for a local server (`"x"`, `"ollama"`) would otherwise blank that text out of every error message (`max_tokens`
 * becoming `ma<redacted>_tokens`). No real API key is this short.
 */
const SHORT_SECRET = 12

const escape = (value: string) => value.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

/** @internal */
export const makeRedactor = (secrets: ReadonlyArray<Redacted.Redacted<string>>): (text: string) => string => {
  const values = secrets.map((s) => Redacted.value(s)).filter((s) => s.length >= SHORT_SECRET)
  const short = secrets.map((s) => Redacted.value(s)).filter((s) => s.length > 0 && s.length < SHORT_SECRET)
  const shortPattern = short.length === 0
    ? undefined
    : new RegExp(`(?<![A-Za-z0-9_-])(?:${short.map(escape).join("|")})(?![A-Za-z0-9_-])`, "g")
  return (text) => {
    let out = text
    for (const value of values) out = out.split(value).join("<redacted>")
    if (shortPattern !== undefined) out = out.replace(shortPattern, "<redacted>")
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

// Status → mode, from the statuses each failure mode declares: exact statuses first, then its class (4xx, 5xx).
const byStatus = new Map<number | "4xx" | "5xx", AttemptTag>()
for (const tag of RouterError.attemptErrorTagList) {
  for (const status of RouterError.failureModes[tag].statuses) byStatus.set(status, tag)
}

const tagFromStatus = (status: number, overrides: Readonly<Record<number, AttemptTag>>): AttemptTag =>
  overrides[status] ?? byStatus.get(status) ??
    (status >= 500 ? byStatus.get("5xx") : status >= 400 ? byStatus.get("4xx") : undefined) ?? "MalformedResponse"

/**
 * An attempt error of the given mode. The modes with fields of their own get a neutral value for them: `Timeout` is
 * the server's (HTTP 408), `NetworkError`, `MalformedResponse` and `ResponseRejected` take `reason`.
 *
 * @internal
 */
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
  const fields: Record<string, unknown> = { provider: call.provider, model: call.model, attempt: call.attempt }
  if (extra.status !== undefined) fields.status = extra.status
  if (extra.body !== undefined) fields.body = extra.body
  if (extra.retryAfterMillis !== undefined) fields.retryAfterMillis = extra.retryAfterMillis
  if (tag === "Timeout") fields.phase = "server"
  else if (tag === "NetworkError") fields.reason = extra.reason ?? "connection failed"
  else if (tag === "MalformedResponse") fields.reason = extra.reason ?? "unexpected response"
  else if (tag === "ResponseRejected") fields.reason = extra.reason ?? "rejected"
  const Class = RouterError.classes[tag] as unknown as new(
    fields: object,
    options: { readonly disableValidation: boolean }
  ) => RouterError.AttemptError
  return new Class(fields, { disableValidation: true })
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
  readonly classify?: Classifier | undefined
}): RouterError.AttemptError => {
  let parsed: unknown = undefined
  try {
    parsed = JSON.parse(options.bodyText)
  } catch {
    // a non-JSON error page: the status alone decides
  }
  // The protocol's own reading of its error bodies wins: it knows what its codes and messages mean.
  const own = options.classify?.({ status: options.status, body: parsed })
  let tag: AttemptTag
  if (own !== undefined) {
    tag = own.tag
  } else {
    const byStatus = tagFromStatus(options.status, options.overrides ?? {})
    const byDetails = tagFromDetails(errorDetails(parsed))
    // A code only refines within the failure family the status allows: a 503 body saying "server_error" stays
    // unavailable, but a 400 or 429 body naming quota, context length or the content filter is that.
    tag = byDetails !== undefined && refines(byStatus, byDetails) ? byDetails : byStatus
  }
  const retryAfterMillis = parseRetryAfter(options.headers, options.nowMillis) ?? own?.retryAfterMillis
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
  redact: (text: string) => string,
  classify?: Classifier | undefined
): RouterError.AttemptError => {
  const own = classify?.({ status: undefined, body: payload })
  const tag = own?.tag ?? tagFromDetails(errorDetails(payload)) ?? "ServerError"
  return make(tag, call, {
    body: excerpt(JSON.stringify(payload), redact),
    retryAfterMillis: own?.retryAfterMillis
  })
}
