#!/usr/bin/env node
// An OpenAI-compatible loopback upstream for the benchmark harness.
//
// Runs in its own process (the runner spawns it), listens on 127.0.0.1 on an ephemeral port, prints
// `{"port":N}` as its first stdout line, and exits when its parent closes its stdin or after a maximum lifetime
// (`--max-lifetime-ms`, default 30 minutes). Node built-ins only: the smoke test runs it without bench/node_modules.
//
// Routes
//   POST /v1/chat/completions   Chat Completions. Non-stream -> one chat.completion JSON (with usage).
//                               `stream: true` -> N content chunks, a finish chunk, a usage chunk, `data: [DONE]`.
//   POST /v1/responses          The Responses API (what @effect/ai-openai's OpenAiLanguageModel speaks), same text.
//   POST /v1/messages           Anthropic Messages, same text: a `message`, or `stream: true` -> message_start, ping,
//                               content_block_start, N text_delta events, content_block_stop, message_delta,
//                               message_stop.
//   POST /v1beta/models/{model}:generateContent | :streamGenerateContent?alt=sse
//                               Gemini, same text: a GenerateContentResponse, or N chunks, the last with finishReason
//                               and usageMetadata, and no terminator. The model is the path segment.
//   GET  /stats                 Request counters and the failover samples measured here (see below).
//   POST /stats/reset           Clears counters and samples.
//   GET  /health                "ok".
//
// N (stream chunk count) comes from, first match wins: request header `x-bench-chunks`, body field `bench_chunks`,
// or the text `chunks=N` anywhere in the request body (clients put it in the user message, which every client
// library can send unchanged). Default 200. Content chunk i carries `chunkText(i)` (4 characters), so the
// expected text is `expectedStreamText(N)` in bench/lib/expected.mjs.
//
// Failover mode: a request for model `fail-first` gets a 503 JSON error at once. The server records (hrtime) when
// that error response was handed to the socket, and when the next request for any other model arrives; the
// difference is one failover sample: the client's cost to give up on the first model and reach the second.
// If the client retried `fail-first` in between, the sample is measured from the LAST error response and the
// number of extra attempts is counted in `failover.retriesOfFailFirst`.
//
// Outage models (the outage-503 and outage-hang workloads): model `down` gets a 503 JSON error at once, on every
// request, with none of the failover bookkeeping; model `hang` gets nothing: the request is read and left without an
// answer until the client gives up and closes its connection (the server then destroys the response; a hung request
// is destroyed after `--hang-max-ms`, default 60 s, whatever the client does). `GET /stats` counts the completion
// requests per model (`models`), and the hung requests: `hang.open` (now), `hang.closedByClient`, `hang.cappedByServer`.
//
// Slow-tail models (the slow-tail workload): a model named `tail-<B>ms-<F>x-1in<N>` (anything may follow after a `-`)
// answers each request after B ms, and every N-th request for that model name (counted since the server started,
// the 1st slow one being the N-th) after F × B ms: a deterministic tail of 1/N of the requests. A request whose client
// closes the connection first (a hedge that lost) gets nothing. `GET /stats` counts them in `tail`: `fast`, `slow`
// (answered), `abortedFast`, `abortedSlow` (closed by the client before their answer).
import http from "node:http"
import { chunkText, NON_STREAM_TEXT } from "./lib/expected.mjs"

const args = process.argv.slice(2)
const argValue = (name, fallback) => {
  const i = args.indexOf(name)
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback
}
const MAX_LIFETIME_MS = Number(argValue("--max-lifetime-ms", String(30 * 60 * 1000)))
const BATCH_EVENTS = Number(argValue("--batch-events", "64"))
const HANG_MAX_MS = Number(argValue("--hang-max-ms", "60000"))
const DEFAULT_CHUNKS = 200
const MAX_CHUNKS = 1_000_000

// ---------------------------------------------------------------------------------------------------------------
// Pre-built bodies

const JSON_HEADERS = { "content-type": "application/json" }
const SSE_HEADERS = { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" }

const nonStreamCache = new Map()
const chatCompletionBody = (model) => {
  let b = nonStreamCache.get(model)
  if (b === undefined) {
    b = Buffer.from(JSON.stringify({
      id: "chatcmpl-bench",
      object: "chat.completion",
      created: 1,
      model,
      choices: [{
        index: 0,
        message: { role: "assistant", content: NON_STREAM_TEXT, refusal: null },
        logprobs: null,
        finish_reason: "stop"
      }],
      usage: { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 }
    }))
    if (nonStreamCache.size < 64) nonStreamCache.set(model, b)
  }
  return b
}

const batch = (events) => {
  const out = []
  for (let i = 0; i < events.length; i += BATCH_EVENTS) {
    out.push(Buffer.from(events.slice(i, i + BATCH_EVENTS).join("")))
  }
  return out
}

const streamCache = new Map()
const cached = (key, build) => {
  let v = streamCache.get(key)
  if (v === undefined) {
    v = build()
    if (streamCache.size > 32) streamCache.clear()
    streamCache.set(key, v)
  }
  return v
}

const chatStreamBatches = (n, model) =>
  cached(`chat:${n}:${model}`, () => {
    const m = JSON.stringify(model)
    const head =
      `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":${m},"choices":[{"index":0,"delta":{"content":"`
    const tail = `"},"finish_reason":null}]}\n\n`
    const events = new Array(n + 3)
    for (let i = 0; i < n; i++) events[i] = head + chunkText(i) + tail
    events[n] =
      `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":${m},"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n`
    events[n + 1] =
      `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":${m},"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":${n},"total_tokens":${
        n + 5
      }}}\n\n`
    events[n + 2] = "data: [DONE]\n\n"
    return batch(events)
  })

const responseObject = (model, status, text, n) => ({
  id: "resp_bench",
  object: "response",
  created_at: 1,
  status,
  error: null,
  incomplete_details: null,
  instructions: null,
  max_output_tokens: null,
  model,
  output: status === "completed"
    ? [{
      type: "message",
      id: "msg_bench",
      status: "completed",
      role: "assistant",
      content: [{ type: "output_text", text, annotations: [] }]
    }]
    : [],
  parallel_tool_calls: true,
  previous_response_id: null,
  reasoning: { effort: null, summary: null },
  store: false,
  temperature: 1,
  text: { format: { type: "text" } },
  tool_choice: "auto",
  tools: [],
  top_p: 1,
  truncation: "disabled",
  usage: status === "completed"
    ? {
      input_tokens: 5,
      input_tokens_details: { cached_tokens: 0 },
      output_tokens: n,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: n + 5
    }
    : null,
  user: null,
  metadata: {}
})

const responsesBody = (model) =>
  cached(
    `resp-body:${model}`,
    () => Buffer.from(JSON.stringify(responseObject(model, "completed", NON_STREAM_TEXT, 7)))
  )

const responsesStreamBatches = (n, model) =>
  cached(`resp:${n}:${model}`, () => {
    let seq = 0
    const ev = (type, payload) =>
      `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: seq++, ...payload })}\n\n`
    let full = ""
    for (let i = 0; i < n; i++) full += chunkText(i)
    const events = []
    events.push(ev("response.created", { response: responseObject(model, "in_progress", "", 0) }))
    events.push(ev("response.in_progress", { response: responseObject(model, "in_progress", "", 0) }))
    events.push(ev("response.output_item.added", {
      output_index: 0,
      item: { id: "msg_bench", type: "message", status: "in_progress", role: "assistant", content: [] }
    }))
    events.push(ev("response.content_part.added", {
      item_id: "msg_bench",
      output_index: 0,
      content_index: 0,
      part: { type: "output_text", text: "", annotations: [] }
    }))
    for (let i = 0; i < n; i++) {
      events.push(
        `event: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":${seq++},"item_id":"msg_bench","output_index":0,"content_index":0,"delta":"${
          chunkText(i)
        }","logprobs":[]}\n\n`
      )
    }
    events.push(ev("response.output_text.done", {
      item_id: "msg_bench",
      output_index: 0,
      content_index: 0,
      text: full,
      logprobs: []
    }))
    events.push(ev("response.content_part.done", {
      item_id: "msg_bench",
      output_index: 0,
      content_index: 0,
      part: { type: "output_text", text: full, annotations: [] }
    }))
    events.push(ev("response.output_item.done", {
      output_index: 0,
      item: {
        id: "msg_bench",
        type: "message",
        status: "completed",
        role: "assistant",
        content: [{ type: "output_text", text: full, annotations: [] }]
      }
    }))
    events.push(ev("response.completed", { response: responseObject(model, "completed", full, n) }))
    return batch(events)
  })

// Anthropic Messages.
const anthropicBody = (model) =>
  cached(`anthropic-body:${model}`, () =>
    Buffer.from(JSON.stringify({
      id: "msg_bench",
      type: "message",
      role: "assistant",
      model,
      content: [{ type: "text", text: NON_STREAM_TEXT }],
      stop_reason: "end_turn",
      stop_sequence: null,
      usage: { input_tokens: 5, output_tokens: 7 }
    })))

const anthropicStreamBatches = (n, model) =>
  cached(`anthropic:${n}:${model}`, () => {
    const ev = (type, payload) => `event: ${type}\ndata: ${JSON.stringify({ type, ...payload })}\n\n`
    const events = [
      ev("message_start", {
        message: {
          id: "msg_bench",
          type: "message",
          role: "assistant",
          model,
          content: [],
          stop_reason: null,
          stop_sequence: null,
          usage: { input_tokens: 5, output_tokens: 1 }
        }
      }),
      ev("content_block_start", { index: 0, content_block: { type: "text", text: "" } }),
      ev("ping", {})
    ]
    const head =
      `event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"`
    for (let i = 0; i < n; i++) events.push(head + chunkText(i) + `"}}\n\n`)
    events.push(ev("content_block_stop", { index: 0 }))
    events.push(
      ev("message_delta", { delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: n } })
    )
    events.push(ev("message_stop", {}))
    return batch(events)
  })

// Gemini.
const geminiBody = (model) =>
  cached(`gemini-body:${model}`, () =>
    Buffer.from(JSON.stringify({
      candidates: [{ content: { parts: [{ text: NON_STREAM_TEXT }], role: "model" }, finishReason: "STOP", index: 0 }],
      usageMetadata: { promptTokenCount: 5, candidatesTokenCount: 7, totalTokenCount: 12 },
      modelVersion: model,
      responseId: "resp_bench"
    })))

const geminiStreamBatches = (n, model) =>
  cached(`gemini:${n}:${model}`, () => {
    const m = JSON.stringify(model)
    const head = `data: {"candidates":[{"content":{"parts":[{"text":"`
    const tail = `"}],"role":"model"},"index":0}],"modelVersion":${m},"responseId":"resp_bench"}\r\n\r\n`
    const events = new Array(n + 1)
    for (let i = 0; i < n; i++) events[i] = head + chunkText(i) + tail
    events[n] =
      `data: {"candidates":[{"content":{"parts":[{"text":""}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":5,"candidatesTokenCount":${n},"totalTokenCount":${
        n + 5
      }},"modelVersion":${m},"responseId":"resp_bench"}\r\n\r\n`
    return batch(events)
  })

const GEMINI_PATH = /^\/v1beta\/models\/([^/]+):(generateContent|streamGenerateContent)$/

const ERROR_503 = Buffer.from(JSON.stringify({
  error: {
    message: "The model `fail-first` is unavailable (benchmark failover mode).",
    type: "server_error",
    param: null,
    code: "unavailable"
  }
}))

const ERROR_503_DOWN = Buffer.from(JSON.stringify({
  error: {
    message: "The model `down` is unavailable (benchmark outage mode).",
    type: "server_error",
    param: null,
    code: "unavailable"
  }
}))

// ---------------------------------------------------------------------------------------------------------------
// Stats

const nowNs = () => process.hrtime.bigint()
let stats
const resetStats = () => {
  stats = {
    since: Date.now(),
    requests: 0,
    chat: 0,
    chatStream: 0,
    responses: 0,
    responsesStream: 0,
    anthropic: 0,
    anthropicStream: 0,
    gemini: 0,
    geminiStream: 0,
    failFirst: 0,
    chunksSent: 0,
    badRequests: 0,
    failover: { samplesUs: [], retriesOfFailFirst: 0 },
    models: {},
    hang: { total: 0, closedByClient: 0, cappedByServer: 0 },
    tail: { fast: 0, slow: 0, abortedFast: 0, abortedSlow: 0 }
  }
}
resetStats()
/** hrtime (ns, bigint) when the last `fail-first` error was handed to the socket, while no other model came yet. */
let pendingErrorSentAt = null
/** The `hang` responses still open (across stats resets: `hang.open` counts them). */
const hanging = new Set()
/** Requests per slow-tail model name since the server started (not reset with the stats: the tail stays 1 in N). */
const tailSeq = new Map()
/** `tail-<B>ms-<F>x-1in<N>`: base ms, factor, period. */
const TAIL_MODEL = /^tail-(\d+)ms-(\d+)x-1in(\d+)(?:-|$)/
/** The pending slow-tail timers (cleared on exit). */
const tailTimers = new Set()

const summarize = (xs) => {
  if (xs.length === 0) return { count: 0 }
  const s = [...xs].sort((a, b) => a - b)
  const q = (p) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]
  return {
    count: s.length,
    mean: s.reduce((a, b) => a + b, 0) / s.length,
    median: q(0.5),
    p99: q(0.99),
    min: s[0],
    max: s[s.length - 1]
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Handlers

const writeBatches = (res, batches) => {
  let i = 0
  const pump = () => {
    while (i < batches.length) {
      const ok = res.write(batches[i++])
      if (!ok) {
        res.once("drain", pump)
        return
      }
    }
    res.end()
  }
  pump()
}

const chunkCount = (req, raw, body) => {
  const h = req.headers["x-bench-chunks"]
  let n
  if (typeof h === "string" && h !== "") n = Number(h)
  else if (body && body.bench_chunks !== undefined) n = Number(body.bench_chunks)
  else {
    const m = /chunks=(\d+)/.exec(raw)
    n = m ? Number(m[1]) : DEFAULT_CHUNKS
  }
  if (!Number.isInteger(n) || n < 0 || n > MAX_CHUNKS) return DEFAULT_CHUNKS
  return n
}

/** Never answers: waits for the client to close the connection (or for HANG_MAX_MS), then destroys the response. */
const hang = (res) => {
  stats.hang.total++
  hanging.add(res)
  let done = false
  const finish = (byClient) => {
    if (done) return
    done = true
    clearTimeout(timer)
    hanging.delete(res)
    if (byClient) stats.hang.closedByClient++
    else stats.hang.cappedByServer++
    res.destroy()
  }
  const timer = setTimeout(() => finish(false), HANG_MAX_MS)
  res.on("close", () => finish(true))
}

const handleCompletion = (req, res, raw, arrivedAt, kind, pathModel, pathStream) => {
  let body
  try {
    body = JSON.parse(raw)
  } catch {
    stats.badRequests++
    res.writeHead(400, JSON_HEADERS)
    res.end(JSON.stringify({ error: { message: "invalid JSON body", type: "invalid_request_error" } }))
    return
  }
  const model = pathModel ?? (typeof body.model === "string" ? body.model : "m")
  stats.models[model] = (stats.models[model] ?? 0) + 1
  if (model === "down") {
    res.writeHead(503, { ...JSON_HEADERS, "content-length": ERROR_503_DOWN.length })
    res.end(ERROR_503_DOWN)
    return
  }
  if (model === "hang") {
    hang(res)
    return
  }
  if (model === "fail-first") {
    stats.failFirst++
    if (pendingErrorSentAt !== null) stats.failover.retriesOfFailFirst++
    res.writeHead(503, { ...JSON_HEADERS, "content-length": ERROR_503.length })
    res.end(ERROR_503)
    pendingErrorSentAt = nowNs()
    return
  }
  if (pendingErrorSentAt !== null) {
    stats.failover.samplesUs.push(Number(arrivedAt - pendingErrorSentAt) / 1000)
    pendingErrorSentAt = null
  }
  const tail = TAIL_MODEL.exec(model)
  if (tail !== null) {
    const [base, factor, every] = [Number(tail[1]), Number(tail[2]), Number(tail[3])]
    const seq = (tailSeq.get(model) ?? 0) + 1
    tailSeq.set(model, seq)
    const slow = every > 0 && seq % every === 0
    let answered = false
    const timer = setTimeout(() => {
      tailTimers.delete(timer)
      if (res.destroyed || res.writableEnded) return
      answered = true
      stats.tail[slow ? "slow" : "fast"]++
      answer(req, res, raw, body, model, kind, pathStream)
    }, slow ? base * factor : base)
    tailTimers.add(timer)
    res.on("close", () => {
      if (answered) return
      clearTimeout(timer)
      tailTimers.delete(timer)
      stats.tail[slow ? "abortedSlow" : "abortedFast"]++
    })
    return
  }
  answer(req, res, raw, body, model, kind, pathStream)
}

const answer = (req, res, raw, body, model, kind, pathStream) => {
  const stream = pathStream ?? body.stream === true
  if (kind === "anthropic" || kind === "gemini") {
    const counter = kind === "anthropic" ? "anthropic" : "gemini"
    if (stream) {
      stats[`${counter}Stream`]++
      const n = chunkCount(req, raw, body)
      stats.chunksSent += n
      res.writeHead(200, SSE_HEADERS)
      writeBatches(res, kind === "anthropic" ? anthropicStreamBatches(n, model) : geminiStreamBatches(n, model))
    } else {
      stats[counter]++
      const b = kind === "anthropic" ? anthropicBody(model) : geminiBody(model)
      res.writeHead(200, { ...JSON_HEADERS, "content-length": b.length })
      res.end(b)
    }
    return
  }
  if (kind === "chat") {
    if (stream) {
      stats.chatStream++
      const n = chunkCount(req, raw, body)
      stats.chunksSent += n
      res.writeHead(200, SSE_HEADERS)
      writeBatches(res, chatStreamBatches(n, model))
    } else {
      stats.chat++
      const b = chatCompletionBody(model)
      res.writeHead(200, { ...JSON_HEADERS, "content-length": b.length })
      res.end(b)
    }
  } else {
    if (stream) {
      stats.responsesStream++
      const n = chunkCount(req, raw, body)
      stats.chunksSent += n
      res.writeHead(200, SSE_HEADERS)
      writeBatches(res, responsesStreamBatches(n, model))
    } else {
      stats.responses++
      const b = responsesBody(model)
      res.writeHead(200, { ...JSON_HEADERS, "content-length": b.length })
      res.end(b)
    }
  }
}

const server = http.createServer((req, res) => {
  const arrivedAt = nowNs()
  stats.requests++
  const url = req.url ?? "/"
  const path = url.split("?")[0]
  const gemini = req.method === "POST" ? GEMINI_PATH.exec(path) : null
  if (
    req.method === "POST" &&
    (path === "/v1/chat/completions" || path === "/v1/responses" || path === "/v1/messages" || gemini !== null)
  ) {
    const kind = gemini !== null
      ? "gemini"
      : path === "/v1/responses"
      ? "responses"
      : path === "/v1/messages"
      ? "anthropic"
      : "chat"
    const parts = []
    req.on("data", (d) => parts.push(d))
    req.on("end", () =>
      handleCompletion(
        req,
        res,
        parts.length === 1 ? parts[0].toString("utf8") : Buffer.concat(parts).toString("utf8"),
        arrivedAt,
        kind,
        gemini === null ? undefined : decodeURIComponent(gemini[1]),
        gemini === null ? undefined : gemini[2] === "streamGenerateContent"
      ))
    return
  }
  if (req.method === "GET" && path === "/stats") {
    const { samplesUs, retriesOfFailFirst } = stats.failover
    const body = JSON.stringify({
      ...stats,
      hang: { ...stats.hang, open: hanging.size },
      failover: { retriesOfFailFirst, us: summarize(samplesUs), samplesUs: samplesUs.slice(0, 10_000) }
    })
    res.writeHead(200, JSON_HEADERS)
    res.end(body)
    return
  }
  if (req.method === "POST" && path === "/stats/reset") {
    req.resume()
    req.on("end", () => {
      resetStats()
      pendingErrorSentAt = null
      res.writeHead(204)
      res.end()
    })
    return
  }
  if (path === "/health") {
    res.writeHead(200, { "content-type": "text/plain" })
    res.end("ok")
    return
  }
  req.resume()
  res.writeHead(404, JSON_HEADERS)
  res.end(JSON.stringify({ error: { message: `no route ${req.method} ${path}`, type: "invalid_request_error" } }))
})
server.keepAliveTimeout = 120_000
server.headersTimeout = 125_000
server.requestTimeout = 0
server.maxRequestsPerSocket = 0

const shutdown = (code) => {
  for (const res of hanging) res.destroy()
  for (const t of tailTimers) clearTimeout(t)
  server.close()
  server.closeAllConnections?.()
  process.exit(code)
}

server.listen(0, "127.0.0.1", () => {
  const addr = server.address()
  process.stdout.write(JSON.stringify({ port: addr.port }) + "\n")
})

// Exit with the parent: when our stdin closes (parent died or closed the pipe), or after the maximum lifetime.
process.stdin.on("end", () => shutdown(0))
process.stdin.on("close", () => shutdown(0))
process.stdin.on("error", () => shutdown(0))
process.stdin.resume()
setTimeout(() => {
  process.stderr.write(`upstream: maximum lifetime ${MAX_LIFETIME_MS} ms reached, exiting\n`)
  shutdown(0)
}, MAX_LIFETIME_MS).unref()
process.on("SIGTERM", () => shutdown(0))
process.on("SIGINT", () => shutdown(0))
