/**
 * The scripted server's routing: which step answers which request, attempt
 * counters per model, and the record of every request. Shared by the Node
 * `SimulatedUpstream` server and the in-memory `FakeHttpClient`.
 * Runtime-agnostic: no `node:` imports. Part of the test kit: only
 * `src/testing` modules import it.
 *
 * @since 0.1.0
 * @internal
 */
import * as UpstreamScript from "../UpstreamScript.js"
import type { ErrorInfo, WirePlan } from "./render.js"
import { defaultError, errorBody, jsonResponse, render } from "./render.js"

/**
 * The transport-independent view of an incoming request.
 *
 * @since 0.1.0
 * @category models
 * @internal
 */
export interface IncomingRequest {
  readonly method: string
  /** May include a query string; it is ignored. */
  readonly path: string
  /** Lower-cased names. */
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
}

/**
 * Configuration of {@link makeDispatcher}.
 *
 * @since 0.1.0
 * @category models
 * @internal
 */
export interface DispatcherOptions {
  readonly script: UpstreamScript.Script
  readonly apiKey?: string | undefined
  readonly wire?: UpstreamScript.WireOptions | undefined
  readonly now?: (() => number) | undefined
}

/**
 * Routes requests to scripted steps, counting attempts per model and
 * recording every request that reached a protocol endpoint.
 *
 * @since 0.1.0
 * @category models
 * @internal
 */
export interface Dispatcher {
  readonly dispatch: (request: IncomingRequest) => WirePlan
  readonly requests: () => ReadonlyArray<UpstreamScript.RecordedRequest>
  readonly attempts: (model: string) => number
  readonly reset: (script?: UpstreamScript.Script) => void
}

const protocolError = (
  protocol: UpstreamScript.Protocol,
  status: number,
  info: ErrorInfo,
  id: string
): WirePlan => jsonResponse(status, errorBody(protocol, status, info), id)

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

interface Parsed {
  readonly models: ReadonlyArray<string>
  readonly served: { readonly model: string; readonly provider: string } | null
  readonly stream: boolean
  readonly requestedUsage: boolean
}

const parseOpenAi = (body: unknown): Parsed | string => {
  if (!isRecord(body)) {
    return "The request body must be a JSON object."
  }
  if (typeof body.model !== "string" || body.model.length === 0) {
    return "You must provide a model parameter."
  }
  const options = body.stream_options
  return {
    models: [body.model],
    served: { model: body.model, provider: "openai" },
    stream: body.stream === true,
    requestedUsage: isRecord(options) && options.include_usage === true
  }
}

const parseGptRouter = (body: unknown): Parsed | string => {
  if (!isRecord(body) || !Array.isArray(body.data) || body.data.length === 0) {
    return "`data` must be a non-empty array."
  }
  const entries: Array<{ model: string; provider: string; order: number; index: number }> = []
  for (const [index, entry] of body.data.entries()) {
    if (!isRecord(entry) || typeof entry.modelName !== "string") {
      return `data[${index}].modelName must be a string.`
    }
    entries.push({
      model: entry.modelName,
      provider: typeof entry.providerName === "string" ? entry.providerName : "unknown",
      order: typeof entry.order === "number" ? entry.order : Number.MAX_SAFE_INTEGER,
      index
    })
  }
  entries.sort((a, b) => a.order - b.order || a.index - b.index)
  // Like the real server, only the first entry is served; falling back to the
  // next one is the client's job.
  const first = entries[0]!
  return {
    models: entries.map((e) => e.model),
    served: { model: first.model, provider: first.provider },
    stream: body.stream === true,
    requestedUsage: false
  }
}

const parseAnthropic = (body: unknown, headers: Readonly<Record<string, string>>): Parsed | string => {
  // What the real API checks first: the version header, then the required fields.
  if (headers["anthropic-version"] === undefined) return "anthropic-version: header is required"
  if (!isRecord(body)) return "The request body must be a JSON object."
  if (typeof body.model !== "string" || body.model.length === 0) return "model: Field required"
  if (!Array.isArray(body.messages)) return "messages: Field required"
  if (typeof body.max_tokens !== "number") return "max_tokens: Field required"
  return {
    models: [body.model],
    served: { model: body.model, provider: "anthropic" },
    stream: body.stream === true,
    requestedUsage: true
  }
}

const geminiPath = /^\/(v1beta|v1|v1alpha)\/models\/([^/]+):(generateContent|streamGenerateContent)$/

const parseGemini = (body: unknown, path: string, query: string): Parsed | string => {
  const match = geminiPath.exec(path)!
  let model: string
  try {
    model = decodeURIComponent(match[2]!)
  } catch {
    return `Invalid model name in the path: ${match[2]}`
  }
  const stream = match[3] === "streamGenerateContent"
  // Without `alt=sse` the real server streams one JSON array, which this simulation does not speak.
  if (stream && !new URLSearchParams(query).getAll("alt").includes("sse")) {
    return "This simulated upstream streams only with ?alt=sse."
  }
  if (!isRecord(body) || !Array.isArray(body.contents)) {
    return "* GenerateContentRequest.contents: contents is not specified"
  }
  return { models: [model], served: { model, provider: "gemini" }, stream, requestedUsage: true }
}

const protocolOf = (path: string): UpstreamScript.Protocol | null =>
  path === "/v1/chat/completions"
    ? "openai"
    : path === "/api/v1/generate"
    ? "gptrouter"
    : path === "/v1/messages"
    ? "anthropic"
    : geminiPath.test(path)
    ? "gemini"
    : null

const idPrefix: Record<UpstreamScript.Protocol, string> = {
  openai: "chatcmpl-",
  gptrouter: "gen-",
  anthropic: "msg_",
  gemini: "resp-"
}

/** Whether the request presents the key where its protocol sends it. */
const keyMatches = (protocol: UpstreamScript.Protocol, headers: Readonly<Record<string, string>>, key: string) => {
  switch (protocol) {
    case "openai":
      return headers["authorization"] === `Bearer ${key}`
    case "gptrouter":
      return headers["ws-secret"] === key
    case "anthropic":
      return headers["x-api-key"] === key
    case "gemini":
      return headers["x-goog-api-key"] === key
  }
}

/** What each protocol answers a wrong key with: its status and body. */
const wrongKey = (protocol: UpstreamScript.Protocol): readonly [number, ErrorInfo] => {
  switch (protocol) {
    case "openai":
      return [401, defaultError(401, "")]
    case "gptrouter":
      return [401, { message: "Unauthorized", type: "", code: null }]
    case "anthropic":
      return [401, { message: "invalid x-api-key", type: "authentication_error", code: "invalid_api_key" }]
    case "gemini":
      // Google answers a wrong key with a 400 INVALID_ARGUMENT whose reason is API_KEY_INVALID.
      return [400, { message: "API key not valid. Please pass a valid API key.", type: "", code: "invalid_api_key" }]
  }
}

/**
 * Creates a dispatcher over a script.
 *
 * @since 0.1.0
 * @category constructors
 * @internal
 */
export const makeDispatcher = (options: DispatcherOptions): Dispatcher => {
  const now = options.now ?? Date.now
  const serverWire = options.wire ?? {}
  let script = options.script
  let counters = new Map<string, number>()
  let records: Array<UpstreamScript.RecordedRequest> = []
  let requestCounter = 0

  const dispatch = (request: IncomingRequest): WirePlan => {
    const receivedAt = now()
    requestCounter += 1
    const question = request.path.indexOf("?")
    const path = (question < 0 ? request.path : request.path.slice(0, question)).replace(/\/+$/, "")
    const query = question < 0 ? "" : request.path.slice(question + 1)
    const protocol = protocolOf(path)
    const id = `${idPrefix[protocol ?? "openai"]}${requestCounter}`
    if (protocol === null) {
      return protocolError("openai", 404, {
        message: `Invalid URL (${request.method} ${path})`,
        type: "invalid_request_error",
        code: null
      }, id)
    }
    if (request.method !== "POST") {
      return protocolError(protocol, 405, {
        message: `Method ${request.method} not allowed`,
        type: "invalid_request_error",
        code: null
      }, id)
    }

    let body: unknown
    let bodyParsed = true
    try {
      body = JSON.parse(request.body)
    } catch {
      body = request.body
      bodyParsed = false
    }
    const parsed = bodyParsed
      ? (protocol === "openai"
        ? parseOpenAi(body)
        : protocol === "gptrouter"
        ? parseGptRouter(body)
        : protocol === "anthropic"
        ? parseAnthropic(body, request.headers)
        : parseGemini(body, path, query))
      : "We could not parse the JSON body of your request."
    const record = (fields: {
      model: string | null
      attempt: number | null
      step: UpstreamScript.Step | null
    }) => {
      records.push({
        protocol,
        method: request.method,
        path,
        query,
        model: fields.model,
        models: typeof parsed === "string" ? [] : parsed.models,
        stream: typeof parsed === "string" ? false : parsed.stream,
        body,
        headers: request.headers,
        receivedAt,
        attempt: fields.attempt,
        step: fields.step
      })
    }

    if (options.apiKey !== undefined && !keyMatches(protocol, request.headers, options.apiKey)) {
      record({ model: null, attempt: null, step: null })
      const [status, info] = wrongKey(protocol)
      return protocolError(protocol, status, info, id)
    }
    if (typeof parsed === "string") {
      record({ model: null, attempt: null, step: null })
      return protocolError(protocol, 400, { message: parsed, type: "invalid_request_error", code: null }, id)
    }
    const served = parsed.served!
    const steps = UpstreamScript.stepsFor(script, served.model)
    if (steps === undefined) {
      record({ model: served.model, attempt: null, step: null })
      return protocol === "gptrouter"
        ? protocolError(protocol, 406, defaultError(406, served.model), id)
        : protocolError(protocol, 404, defaultError(404, served.model), id)
    }
    const attempt = counters.get(served.model) ?? 0
    counters.set(served.model, attempt + 1)
    const step = UpstreamScript.stepAt(script, served.model, attempt)!
    record({ model: served.model, attempt, step })
    return render(step, {
      protocol,
      model: served.model,
      provider: served.provider,
      stream: parsed.stream,
      id,
      created: Math.floor(receivedAt / 1000),
      requestedUsage: parsed.requestedUsage,
      wire: serverWire
    })
  }

  return {
    dispatch,
    requests: () => records.slice(),
    attempts: (model) => counters.get(model) ?? 0,
    reset: (next) => {
      if (next !== undefined) {
        script = next
      }
      counters = new Map()
      records = []
      requestCounter = 0
    }
  }
}
