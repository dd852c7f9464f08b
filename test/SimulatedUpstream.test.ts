import { describe, expect, it as effectIt } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { afterEach, it } from "vitest"
import * as Render from "../src/testing/internal/render.js"
import * as SimulatedUpstream from "../src/testing/SimulatedUpstream.js"
import * as S from "../src/testing/UpstreamScript.js"

// Every server a test starts is closed afterwards, even when the test fails.
const started: Array<SimulatedUpstream.SimulatedUpstream> = []
const startUpstream = async (options: SimulatedUpstream.SimulatedUpstreamOptions) => {
  const upstream = await SimulatedUpstream.start(options)
  started.push(upstream)
  return upstream
}
afterEach(async () => {
  await Promise.all(started.splice(0).map((upstream) => upstream.close()))
})

const chat = (
  upstream: SimulatedUpstream.SimulatedUpstream,
  body: Record<string, unknown>,
  init: { readonly key?: string; readonly signal?: AbortSignal } = {}
) =>
  fetch(`${upstream.openAiBaseUrl}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${init.key ?? "sk-test"}` },
    body: JSON.stringify({ messages: [{ role: "user", content: "hi" }], ...body }),
    ...(init.signal !== undefined ? { signal: init.signal } : {})
  })

const generate = (
  upstream: SimulatedUpstream.SimulatedUpstream,
  body: Record<string, unknown>,
  init: { readonly key?: string } = {}
) =>
  fetch(`${upstream.gptRouterBaseUrl}/api/v1/generate`, {
    method: "POST",
    headers: { "content-type": "application/json", "ws-secret": init.key ?? "secret" },
    body: JSON.stringify(body)
  })

const entry = (modelName: string, order: number, providerName = "openai") => ({
  modelName,
  providerName,
  order,
  promptParams: { messages: [{ role: "user", content: "hi" }], temperature: 0, max_tokens: 16 }
})

const stableCreated = (text: string) => text.replace(/"created":\d+/g, "\"created\":0")

// Reads until `predicate` holds on the decoded text so far.
const readUntil = async (
  reader: ReadableStreamDefaultReader<Uint8Array>,
  predicate: (text: string) => boolean
): Promise<string> => {
  const decoder = new TextDecoder()
  let text = ""
  while (!predicate(text)) {
    const { done, value } = await reader.read()
    if (done) {
      throw new Error(`stream ended before predicate held; got ${JSON.stringify(text)}`)
    }
    text += decoder.decode(value, { stream: true })
  }
  return text
}

const silentFor = async (reader: ReadableStreamDefaultReader<Uint8Array>, ms: number) => {
  const result = await Promise.race([
    reader.read().then(() => "data" as const, () => "error" as const),
    new Promise<"silent">((resolve) => setTimeout(() => resolve("silent"), ms))
  ])
  return result === "silent"
}

const chunk = (id: string, delta: string, finish = "null") =>
  `data: {"id":"${id}","object":"chat.completion.chunk","created":0,"model":"m","choices":[{"index":0,"delta":${delta},"finish_reason":${finish}}]}\n\n`

describe("UpstreamScript", () => {
  it("repeats the last step, falls back to \"*\", and treats an empty list as succeed()", () => {
    const script: S.Script = { a: [S.unavailable(), S.succeed({ text: "x" })], b: [], "*": [S.notFound()] }
    expect(S.stepAt(script, "a", 0)).toEqual(S.unavailable())
    expect(S.stepAt(script, "a", 1)).toEqual(S.succeed({ text: "x" }))
    expect(S.stepAt(script, "a", 7)).toEqual(S.succeed({ text: "x" }))
    expect(S.stepAt(script, "b", 3)).toEqual(S.succeed())
    expect(S.stepAt(script, "zzz", 0)).toEqual(S.notFound())
    expect(S.stepAt({ a: [] }, "zzz", 0)).toBeUndefined()
  })

  it("builds plain serialisable steps", () => {
    const steps = [
      S.rateLimited({ retryAfter: "3", retryAfterMs: 2500 }),
      S.cut({ afterChunks: 2 }),
      S.hang({ stage: "first-token" }),
      S.malformed({ kind: "bad-event" })
    ]
    expect(JSON.parse(JSON.stringify(steps))).toEqual(steps)
    expect(steps[0]).toMatchObject({
      _tag: "Fail",
      status: 429,
      code: "rate_limit_exceeded",
      headers: { "retry-after": "3", "retry-after-ms": "2500" }
    })
  })
})

// Every byte a plan writes, in order.
const writtenBytes = (plan: Render.WirePlan): Uint8Array => {
  if (plan._tag !== "Respond") throw new Error("expected a response")
  return Buffer.concat(plan.actions.flatMap((a) => a._tag === "Write" ? [a.bytes] : []))
}

describe("testing/internal/render", () => {
  it("splitEvery cuts writes at byte boundaries, even inside a multi-byte character", () => {
    const ctx: Render.RenderContext = {
      protocol: "openai",
      model: "m",
      provider: "openai",
      stream: true,
      id: "chatcmpl-1",
      created: 0,
      requestedUsage: false,
      wire: {}
    }
    const step = S.succeed({ text: "héllo 🌍" })
    const whole = Render.render(step, ctx)
    const split = Render.render(step, { ...ctx, wire: { splitEvery: 1 } })
    // The same bytes, the 4-byte emoji among them, only written one at a time.
    expect(writtenBytes(split)).toEqual(writtenBytes(whole))
    expect(new TextDecoder().decode(writtenBytes(whole))).toContain("🌍")
    if (split._tag !== "Respond") throw new Error("expected a response")
    const writes = split.actions.filter((a) => a._tag === "Write")
    expect(writes.every((a) => a._tag === "Write" && a.bytes.length === 1)).toBe(true)
  })
})

describe("SimulatedUpstream: OpenAI protocol", () => {
  it("answers a non-streaming request and records it", async () => {
    const upstream = await startUpstream({
      script: { m: [S.succeed({ text: "Hi there", usage: { promptTokens: 3, completionTokens: 2 } })] }
    })
    expect(upstream.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(upstream.openAiBaseUrl).toBe(`${upstream.url}/v1`)
    const res = await chat(upstream, { model: "m" })
    expect(res.status).toBe(200)
    expect(res.headers.get("content-type")).toBe("application/json")
    const json = await res.json()
    expect(json).toEqual({
      id: "chatcmpl-1",
      object: "chat.completion",
      created: expect.any(Number),
      model: "m",
      choices: [{ index: 0, message: { role: "assistant", content: "Hi there" }, finish_reason: "stop" }],
      usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 }
    })
    const [recorded] = upstream.requests
    expect(recorded).toMatchObject({
      protocol: "openai",
      method: "POST",
      path: "/v1/chat/completions",
      model: "m",
      models: ["m"],
      stream: false,
      attempt: 0,
      step: { _tag: "Succeed" }
    })
    expect(recorded!.body).toMatchObject({ model: "m", messages: [{ role: "user", content: "hi" }] })
    expect(recorded!.headers["authorization"]).toBe("Bearer sk-test")
    expect(Math.abs(recorded!.receivedAt - Date.now())).toBeLessThan(5_000)
  })

  it("streams the exact SSE bytes, with the usage chunk when include_usage is requested", async () => {
    const upstream = await startUpstream({ script: { m: [S.succeed({ text: "Hi there" })] } })
    const res = await chat(upstream, { model: "m", stream: true, stream_options: { include_usage: true } })
    expect(res.status).toBe(200)
    expect(res.headers.get("content-type")).toBe("text/event-stream")
    const id = "chatcmpl-1"
    expect(stableCreated(await res.text())).toBe(
      chunk(id, `{"role":"assistant","content":""}`) +
        chunk(id, `{"content":"Hi t"}`) +
        chunk(id, `{"content":"here"}`) +
        chunk(id, `{}`, `"stop"`) +
        `data: {"id":"${id}","object":"chat.completion.chunk","created":0,"model":"m","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":2,"total_tokens":12}}\n\n` +
        "data: [DONE]\n\n"
    )
    // Without include_usage there is no usage chunk.
    const plain = await (await chat(upstream, { model: "m", stream: true })).text()
    expect(plain).not.toContain("usage")
    expect(plain.endsWith("data: [DONE]\n\n")).toBe(true)
  })

  it("streams and returns tool calls", async () => {
    const toolCalls = [{ id: "call_1", name: "lookup", arguments: { q: "weather" } }]
    const upstream = await startUpstream({ script: { m: [S.succeed({ toolCalls })] } })
    const json = await (await chat(upstream, { model: "m" })).json()
    expect(json.choices[0]).toEqual({
      index: 0,
      message: {
        role: "assistant",
        content: null,
        tool_calls: [{ id: "call_1", type: "function", function: { name: "lookup", arguments: "{\"q\":\"weather\"}" } }]
      },
      finish_reason: "tool_calls"
    })
    const text = await (await chat(upstream, { model: "m", stream: true })).text()
    const events = text.split("\n\n").filter((e) => e.startsWith("data: {")).map((e) => JSON.parse(e.slice(6)))
    const toolDeltas = events.flatMap((e) => e.choices[0]?.delta?.tool_calls ?? [])
    expect(toolDeltas[0]).toEqual({
      index: 0,
      id: "call_1",
      type: "function",
      function: { name: "lookup", arguments: "" }
    })
    expect(toolDeltas.map((d: any) => d.function.arguments).join("")).toBe("{\"q\":\"weather\"}")
    expect(events.at(-1).choices[0].finish_reason).toBe("tool_calls")
  })

  it("sequences steps per model in arrival order; the last step repeats", async () => {
    const upstream = await startUpstream({
      script: {
        a: [S.rateLimited({ retryAfter: "2", retryAfterMs: 1500 }), S.unavailable(), S.succeed()],
        b: [S.serverError()]
      }
    })
    const statuses: Array<number> = []
    const first = await chat(upstream, { model: "a" })
    expect(first.headers.get("retry-after")).toBe("2")
    expect(first.headers.get("retry-after-ms")).toBe("1500")
    expect(await first.json()).toEqual({
      error: {
        message: "Rate limit reached for requests. Please try again later.",
        type: "rate_limit_exceeded",
        code: "rate_limit_exceeded"
      }
    })
    statuses.push(first.status)
    statuses.push((await chat(upstream, { model: "b" })).status)
    for (let i = 0; i < 3; i++) {
      const res = await chat(upstream, { model: "a" })
      await res.arrayBuffer()
      statuses.push(res.status)
    }
    expect(statuses).toEqual([429, 500, 503, 200, 200])
    expect(upstream.attempts("a")).toBe(4)
    expect(upstream.attempts("b")).toBe(1)
    expect(upstream.requests.map((r) => [r.model, r.attempt])).toEqual([
      ["a", 0],
      ["b", 0],
      ["a", 1],
      ["a", 2],
      ["a", 3]
    ])
  })

  it("renders each error shorthand with its status and code", async () => {
    const upstream = await startUpstream({
      script: {
        quota: [S.quotaExhausted()],
        context: [S.contextLengthExceeded()],
        filtered: [S.contentFiltered()],
        gone: [S.notFound()],
        key: [S.unauthorized()],
        denied: [S.forbidden()],
        gateway: [S.serverError(502)],
        custom: [S.fail(418, { body: "teapot", headers: { "X-Custom": "1" } })]
      }
    })
    const expectations: Array<[string, number, string | null]> = [
      ["quota", 429, "insufficient_quota"],
      ["context", 400, "context_length_exceeded"],
      ["filtered", 400, "content_policy_violation"],
      ["gone", 404, "model_not_found"],
      ["key", 401, "invalid_api_key"],
      ["denied", 403, "permission_denied"],
      ["gateway", 502, null]
    ]
    for (const [model, status, code] of expectations) {
      const res = await chat(upstream, { model })
      expect(res.status).toBe(status)
      const json = await res.json()
      expect(json.error.code).toBe(code)
      expect(typeof json.error.message).toBe("string")
    }
    const custom = await chat(upstream, { model: "custom" })
    expect(custom.status).toBe(418)
    expect(custom.headers.get("x-custom")).toBe("1")
    expect(await custom.text()).toBe("teapot")
  })

  it("answers an unknown model with model_not_found", async () => {
    const upstream = await startUpstream({ script: { m: [S.succeed()] } })
    const res = await chat(upstream, { model: "x" })
    expect(res.status).toBe(404)
    expect(await res.text()).toBe(
      "{\"error\":{\"message\":\"The model `x` does not exist\",\"type\":\"invalid_request_error\",\"code\":\"model_not_found\"}}"
    )
    expect(upstream.requests[0]).toMatchObject({ model: "x", attempt: null, step: null })
  })

  it("rejects a wrong bearer token with 401 when apiKey is set, without consuming a step", async () => {
    const upstream = await startUpstream({ script: { m: [S.unavailable(), S.succeed()] }, apiKey: "sk-right" })
    const bad = await chat(upstream, { model: "m" }, { key: "sk-wrong" })
    expect(bad.status).toBe(401)
    expect((await bad.json()).error.code).toBe("invalid_api_key")
    expect(upstream.attempts("m")).toBe(0)
    expect((await chat(upstream, { model: "m" }, { key: "sk-right" })).status).toBe(503)
  })

  it("rejects unknown paths, other methods and unparsable bodies", async () => {
    const upstream = await startUpstream({ script: { m: [S.succeed()] } })
    expect((await fetch(`${upstream.url}/v1/embeddings`, { method: "POST", body: "{}" })).status).toBe(404)
    expect((await fetch(`${upstream.openAiBaseUrl}/chat/completions`)).status).toBe(405)
    const res = await fetch(`${upstream.openAiBaseUrl}/chat/completions`, { method: "POST", body: "{nope" })
    expect(res.status).toBe(400)
    expect(upstream.attempts("m")).toBe(0)
  })
})

describe("SimulatedUpstream: GPTRouter protocol", () => {
  it("serves only the first entry by order, non-streaming", async () => {
    const upstream = await startUpstream({
      script: { first: [S.succeed({ text: "from first" })], second: [S.succeed({ text: "from second" })] },
      apiKey: "secret"
    })
    const res = await generate(upstream, { stream: false, data: [entry("second", 2), entry("first", 1, "anthropic")] })
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({
      id: "gen-1",
      choices: [{ index: 0, text: "from first", finish_reason: "stop", role: "assistant" }],
      model: "first",
      providerId: "anthropic",
      modelId: "first",
      meta: { usage: { prompt_tokens: 10, completion_tokens: 3, total_tokens: 13 } }
    })
    expect(upstream.requests[0]).toMatchObject({
      protocol: "gptrouter",
      path: "/api/v1/generate",
      model: "first",
      models: ["first", "second"],
      attempt: 0
    })
    expect(upstream.attempts("second")).toBe(0)
  })

  it("never falls back to the next entry: an error of the first entry is returned as is", async () => {
    const upstream = await startUpstream({ script: { first: [S.unavailable()], second: [S.succeed()] } })
    const res = await generate(upstream, { stream: false, data: [entry("first", 1), entry("second", 2)] })
    expect(res.status).toBe(503)
    expect(await res.json()).toEqual({ message: "The engine is currently overloaded, please try again later." })
    const unknown = await generate(upstream, { stream: false, data: [entry("nope", 1), entry("second", 2)] })
    expect(unknown.status).toBe(406)
    expect(await unknown.json()).toEqual({ message: "Model nope is not available" })
  })

  it("streams the exact SSE bytes", async () => {
    const upstream = await startUpstream({ script: { m: [S.succeed({ text: "Hi there" })] } })
    const res = await generate(upstream, { stream: true, data: [entry("m", 0, "openai")] })
    expect(res.headers.get("content-type")).toBe("text/event-stream")
    expect(await res.text()).toBe(
      "data: {\"event\":\"generation_source\",\"data\":{\"modelId\":\"m\",\"providerId\":\"openai\"}}\n\n" +
        "data: {\"event\":\"update\",\"data\":{\"text\":\"Hi t\"}}\n\n" +
        "data: {\"event\":\"update\",\"data\":{\"text\":\"here\",\"finish_reason\":\"stop\"}}\n\n" +
        "data: {\"event\":\"meta\",\"data\":{\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":2,\"total_tokens\":12}}}\n\n" +
        "data: {\"event\":\"end\",\"data\":{}}\n\n"
    )
  })

  it("sends an in-band error event", async () => {
    const upstream = await startUpstream({
      script: { m: [S.inBandError({ afterChunks: 1, message: "boom", text: "Hi there" })] }
    })
    const res = await generate(upstream, { stream: true, data: [entry("m", 0)] })
    expect(await res.text()).toBe(
      "data: {\"event\":\"generation_source\",\"data\":{\"modelId\":\"m\",\"providerId\":\"openai\"}}\n\n" +
        "data: {\"event\":\"update\",\"data\":{\"text\":\"Hi t\"}}\n\n" +
        "data: {\"event\":\"error\",\"data\":{\"message\":\"boom\"}}\n\n"
    )
  })

  it("rejects a wrong ws-secret with 401", async () => {
    const upstream = await startUpstream({ script: { m: [S.succeed()] }, apiKey: "secret" })
    const res = await generate(upstream, { stream: false, data: [entry("m", 0)] }, { key: "nope" })
    expect(res.status).toBe(401)
    expect(await res.json()).toEqual({ message: "Unauthorized" })
  })
})

describe("SimulatedUpstream: broken streams", () => {
  it("cut: fetch sees the first chunks, then the body errors", async () => {
    const upstream = await startUpstream({ script: { m: [S.cut({ afterChunks: 2, text: "Hello world!" })] } })
    const res = await chat(upstream, { model: "m", stream: true })
    expect(res.status).toBe(200)
    const reader = res.body!.getReader()
    const text = await readUntil(reader, (t) => t.includes("\"content\":\"o wo\""))
    expect(text).toContain("\"content\":\"Hell\"")
    await expect((async () => {
      for (;;) {
        const { done } = await reader.read()
        if (done) return "ended cleanly"
      }
    })()).rejects.toThrow()
    // The script cut the connection, so it does not count as a client close.
    expect(upstream.closedConnections()).toBe(0)
  })

  it("cut on a non-streaming request fails the body read", async () => {
    const upstream = await startUpstream({ script: { m: [S.cut()] } })
    const res = await chat(upstream, { model: "m" })
    expect(res.status).toBe(200)
    await expect(res.json()).rejects.toThrow()
  })

  it("endWithoutFinish: the body ends cleanly with no finish_reason and no [DONE]", async () => {
    const upstream = await startUpstream({ script: { m: [S.endWithoutFinish({ afterChunks: 1, text: "Hi there" })] } })
    const text = stableCreated(await (await chat(upstream, { model: "m", stream: true })).text())
    expect(text).toBe(
      chunk("chatcmpl-1", `{"role":"assistant","content":""}`) + chunk("chatcmpl-1", `{"content":"Hi t"}`)
    )
    const gpt = await (await generate(upstream, { stream: true, data: [entry("m", 0)] })).text()
    expect(gpt).not.toContain("finish_reason")
    expect(gpt).not.toContain("\"end\"")
  })

  it("inBandError on OpenAI: an error data event, then the end of the body", async () => {
    const upstream = await startUpstream({ script: { m: [S.inBandError({ afterChunks: 0, message: "overloaded" })] } })
    const text = stableCreated(await (await chat(upstream, { model: "m", stream: true })).text())
    expect(text).toBe(
      chunk("chatcmpl-1", `{"role":"assistant","content":""}`) +
        "data: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\"}}\n\n"
    )
  })

  it("malformed: a non-JSON body, and a non-JSON event amid an otherwise complete stream", async () => {
    const upstream = await startUpstream({
      script: {
        body: [S.malformed({ kind: "not-json" })],
        schema: [S.malformed({ kind: "wrong-schema" })],
        stream: [S.malformed({ kind: "not-json", afterChunks: 1, text: "Hi there" })]
      }
    })
    const notJson = await chat(upstream, { model: "body" })
    expect(notJson.status).toBe(200)
    await expect(notJson.json()).rejects.toThrow()
    expect((await (await chat(upstream, { model: "schema" })).json()).choices).toBe("not-a-list")
    const text = await (await chat(upstream, { model: "stream", stream: true })).text()
    const datas = text.split("\n\n").filter((e) => e.length > 0).map((e) => e.slice("data: ".length))
    expect(datas).toHaveLength(6)
    expect(() => JSON.parse(datas[2]!)).toThrow()
    expect(datas.at(-1)).toBe("[DONE]")
  })

  it("stall: k chunks, then silence with the connection open; aborting counts as a client close", async () => {
    const upstream = await startUpstream({ script: { m: [S.stall({ afterChunks: 1, text: "Hi there" })] } })
    const controller = new AbortController()
    const res = await chat(upstream, { model: "m", stream: true }, { signal: controller.signal })
    const reader = res.body!.getReader()
    await readUntil(reader, (t) => t.includes("\"content\":\"Hi t\""))
    expect(await silentFor(reader, 150)).toBe(true)
    controller.abort()
    await upstream.waitForClosedConnections(1)
    expect(upstream.closedConnections()).toBe(1)
  })

  it("cancelling the body mid-stream (like take(3)) closes the socket", async () => {
    const upstream = await startUpstream({ script: { m: [S.succeed({ text: "a".repeat(200), chunkDelayMs: 20 })] } })
    const res = await chat(upstream, { model: "m", stream: true })
    const reader = res.body!.getReader()
    await readUntil(reader, (t) => (t.match(/"content":"aaaa"/g) ?? []).length >= 3)
    const closed = upstream.waitForClose()
    await reader.cancel()
    await closed
    expect(upstream.closedConnections()).toBe(1)
  })

  it("hang at headers: no status line ever; the client's timeout closes the socket", async () => {
    const upstream = await startUpstream({ script: { m: [S.hang()] } })
    const started = Date.now()
    await expect(chat(upstream, { model: "m" }, { signal: AbortSignal.timeout(200) })).rejects.toThrow()
    expect(Date.now() - started).toBeGreaterThanOrEqual(150)
    await upstream.waitForClosedConnections(1)
  })

  it("hang at first-token: headers arrive, the body never does, keep-alives aside", async () => {
    const upstream = await startUpstream({
      script: { m: [S.hang({ stage: "first-token" })] },
      wire: { keepAliveEveryMs: 30 }
    })
    const res = await chat(upstream, { model: "m", stream: true })
    expect(res.status).toBe(200)
    const reader = res.body!.getReader()
    const text = await readUntil(reader, (t) => t.split(": keep-alive\n\n").length >= 3)
    expect(text.replaceAll(": keep-alive\n\n", "")).toBe("")
    await reader.cancel()
    await upstream.waitForClosedConnections(1)
  })

  it("close() ends hanging requests", async () => {
    const upstream = await startUpstream({ script: { m: [S.hang()] } })
    const pending = chat(upstream, { model: "m" })
    await upstream.waitForRequests(1)
    await upstream.close()
    await expect(pending).rejects.toThrow()
    expect(upstream.isClosed()).toBe(true)
    expect(upstream.closedConnections()).toBe(0)
  })
})

describe("SimulatedUpstream: wire options and timing", () => {
  it("honours lineEnding, retryField and keep-alives between chunks", async () => {
    const upstream = await startUpstream({
      script: { m: [S.succeed({ text: "Hi there", chunkDelayMs: 120, wire: { lineEnding: "\r\n" } })] },
      wire: { retryField: 3000, keepAliveEveryMs: 50 }
    })
    const text = stableCreated(await (await chat(upstream, { model: "m", stream: true })).text())
    const ka = ": keep-alive\r\n\r\n"
    expect(text).toBe(
      "retry: 3000\r\n\r\n" +
        chunk("chatcmpl-1", `{"role":"assistant","content":""}`).replaceAll("\n", "\r\n") +
        chunk("chatcmpl-1", `{"content":"Hi t"}`).replaceAll("\n", "\r\n") +
        ka + ka +
        chunk("chatcmpl-1", `{"content":"here"}`).replaceAll("\n", "\r\n") +
        chunk("chatcmpl-1", `{}`, `"stop"`).replaceAll("\n", "\r\n") +
        "data: [DONE]\r\n\r\n"
    )
  })

  it("splitEvery delivers the same bytes in small flushed pieces", async () => {
    const text = "héllo 🌍 wörld"
    const upstream = await startUpstream({
      script: { m: [S.succeed({ text, wire: { splitEvery: 3 } }), S.succeed({ text })] }
    })
    const split = await (await chat(upstream, { model: "m", stream: true })).text()
    const whole = await (await chat(upstream, { model: "m", stream: true })).text()
    expect(stableCreated(split).replaceAll("chatcmpl-1", "X")).toBe(stableCreated(whole).replaceAll("chatcmpl-2", "X"))
    expect(split).toContain("🌍")
  })

  it("applies headersDelayMs and firstTokenDelayMs", async () => {
    const upstream = await startUpstream({
      script: { m: [S.succeed({ headersDelayMs: 150, firstTokenDelayMs: 150 })] }
    })
    const t0 = Date.now()
    const res = await chat(upstream, { model: "m", stream: true })
    const t1 = Date.now()
    expect(t1 - t0).toBeGreaterThanOrEqual(130)
    const reader = res.body!.getReader()
    await readUntil(reader, (t) => t.includes("data: "))
    expect(Date.now() - t1).toBeGreaterThanOrEqual(130)
    await reader.cancel()
  })
})

describe("SimulatedUpstream: lifecycle", () => {
  it("stops by itself after maxLifetimeMs, ending hanging requests", async () => {
    const upstream = await startUpstream({ script: { m: [S.hang({ stage: "first-token" })] }, maxLifetimeMs: 300 })
    const res = await chat(upstream, { model: "m", stream: true })
    await expect(res.text()).rejects.toThrow()
    expect(upstream.isClosed()).toBe(true)
    await expect(chat(upstream, { model: "m" })).rejects.toThrow()
  })

  it("reset() forgets attempts and records and can swap the script", async () => {
    const upstream = await startUpstream({ script: { m: [S.unavailable(), S.succeed()] } })
    expect((await chat(upstream, { model: "m" })).status).toBe(503)
    upstream.reset()
    expect(upstream.requests).toHaveLength(0)
    expect((await chat(upstream, { model: "m" })).status).toBe(503)
    upstream.reset({ m: [S.forbidden()] })
    expect((await chat(upstream, { model: "m" })).status).toBe(403)
    expect(upstream.requests.map((r) => r.attempt)).toEqual([0])
  })

  effectIt.effect("make() closes the server when the scope closes", () =>
    Effect.gen(function*() {
      const upstream = yield* Effect.scoped(
        Effect.gen(function*() {
          const upstream = yield* SimulatedUpstream.make({ script: { m: [S.succeed({ text: "scoped" })] } })
          const json = yield* Effect.promise(() => chat(upstream, { model: "m" }).then((r) => r.json()))
          expect(json.choices[0].message.content).toBe("scoped")
          return upstream
        })
      )
      expect(upstream.isClosed()).toBe(true)
      const error = yield* Effect.promise(() => chat(upstream, { model: "m" }).then(() => null, (e: unknown) => e))
      expect(error).toBeInstanceOf(Error)
    }))
})
