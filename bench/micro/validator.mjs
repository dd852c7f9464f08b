// The compiled validator (src/internal/compiledValidator.ts, built to dist/) against `Schema.is(schema)`, on the two
// schemas it serves: every streamed chunk is checked against OpenAiCompatible.WireChunk, every request against
// ChatRequest.ChatRequest.
//
//   npm run build
//   node --expose-gc bench/micro/validator.mjs [--rounds 7] [--ms 400]
//
// Variants (both sides get the schema object exported by the library, and build their checker once, outside the
// timed loop):
//   chunk: compiled | Schema.is     1,000 distinct parsed `chat.completion.chunk` objects per unit (content deltas as
//                                   the bench's upstream sends them, with a finish and a usage chunk), each checked
//   request: compiled | Schema.is   100 distinct requests per unit: system + user messages with sampling parameters,
//                                   a multi-turn one with tools and a tool call/result, a content-parts one
// Figures: µs per chunk and per request (the unit's time divided by its size), and the ratio Schema.is / compiled.
//
// effect comes from the TOP-LEVEL node_modules (the copy dist/ uses).
import { pathToFileURL } from "node:url"
import { chunkText } from "../lib/expected.mjs"
import { importTopLevel, REPO_ROOT } from "../lib/top-level.mjs"
import { assert, header, measure, ratio, report } from "./lib.mjs"

const Schema = await importTopLevel("effect", "./Schema")
const { compile } = await import(pathToFileURL(`${REPO_ROOT}/dist/src/internal/compiledValidator.js`).href)
const { OpenAiCompatible, ChatRequest } = await import(pathToFileURL(`${REPO_ROOT}/dist/src/index.js`).href)

const CHUNKS = 1000
const chunks = []
for (let i = 0; i < CHUNKS - 2; i++) {
  chunks.push(JSON.parse(
    `{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"${
      chunkText(i)
    }"},"finish_reason":null}]}`
  ))
}
chunks.push(JSON.parse(
  `{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`
))
chunks.push(JSON.parse(
  `{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":998,"total_tokens":1003}}`
))

const REQUESTS = 100
const requests = []
for (let i = 0; i < REQUESTS; i++) {
  const kind = i % 3
  if (kind === 0) {
    requests.push({
      messages: [
        { role: "system", content: "You are a helpful assistant." },
        { role: "user", content: `Question number ${i}: what is the capital of France?` }
      ],
      temperature: 0.2,
      max_tokens: 256
    })
  } else if (kind === 1) {
    requests.push({
      messages: [
        { role: "system", content: "Use the tools when needed." },
        { role: "user", content: `What is the weather in city ${i}?` },
        {
          role: "assistant",
          content: null,
          tool_calls: [{ id: `call_${i}`, type: "function", function: { name: "weather", arguments: "{\"c\":1}" } }]
        },
        { role: "tool", tool_call_id: `call_${i}`, content: "{\"t\":21}" }
      ],
      tools: [{
        type: "function",
        function: {
          name: "weather",
          description: "current weather",
          parameters: { type: "object", properties: { c: { type: "number" } } }
        }
      }],
      tool_choice: "auto",
      top_p: 0.9,
      stop: ["\n\n"]
    })
  } else {
    requests.push({
      messages: [{
        role: "user",
        content: [{ type: "text", text: `Describe image ${i}` }, {
          type: "image_url",
          image_url: { url: "https://x/y.png" }
        }]
      }],
      n: 1,
      seed: i
    })
  }
}

const chunkCompiled = compile(OpenAiCompatible.WireChunk).is
const chunkIs = Schema.is(OpenAiCompatible.WireChunk)
const requestCompiled = compile(ChatRequest.ChatRequest).is
const requestIs = Schema.is(ChatRequest.ChatRequest)

// Both must accept every input (and agree on a few rejects), or the comparison means nothing.
for (const c of chunks) assert(chunkCompiled(c) && chunkIs(c), `chunk rejected: ${JSON.stringify(c)}`)
for (const r of requests) assert(requestCompiled(r) && requestIs(r), `request rejected: ${JSON.stringify(r)}`)
for (
  const bad of [{ choices: [{ index: "0" }] }, { choices: [{ index: 0, delta: { content: 1 } }] }, { usage: 1 }]
) assert(!chunkCompiled(bad) && !chunkIs(bad), `chunk accepted: ${JSON.stringify(bad)}`)
for (const bad of [{ messages: [] }, { messages: [{ role: "user", content: "x" }], temperature: 3 }]) {
  assert(!requestCompiled(bad) && !requestIs(bad), `request accepted: ${JSON.stringify(bad)}`)
}

let sink = 0
const over = (items, check) => () => {
  let ok = 0
  for (let i = 0; i < items.length; i++) if (check(items[i])) ok++
  sink += ok
}

header(`Validation: ${CHUNKS} streamed chunks / ${REQUESTS} requests per unit`)
const results = await measure({
  "chunk: compiled": over(chunks, chunkCompiled),
  "chunk: Schema.is": over(chunks, chunkIs),
  "request: compiled": over(requests, requestCompiled),
  "request: Schema.is": over(requests, requestIs)
})
const per = (rs, n) => rs.map((r) => ({ ...r, wallUs: r.wallUs / n, cpuUs: r.cpuUs / n }))
const perItem = {
  "chunk: compiled": per(results["chunk: compiled"], CHUNKS),
  "chunk: Schema.is": per(results["chunk: Schema.is"], CHUNKS),
  "request: compiled": per(results["request: compiled"], REQUESTS),
  "request: Schema.is": per(results["request: Schema.is"], REQUESTS)
}
console.log(report(perItem, { perUnit: "item" }))
for (const what of ["chunk", "request"]) {
  const a = `${what}: compiled`
  const b = `${what}: Schema.is`
  console.log(
    `${what}: Schema.is / compiled: wall ${ratio(perItem, a, b).text}; CPU ${ratio(perItem, a, b, "cpuUs").text}`
  )
}
if (sink === -1) console.log(sink)
