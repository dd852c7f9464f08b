// The AI SDK bridge (effect-llm-router/ai-sdk on its default RouterHttpClient, node:http on Node; `--fetch` on
// FetchRouterHttpClient) against the stock provider
// (@ai-sdk/openai), both through `ai`'s generateText, at steady state: 32 calls at a time against bench/upstream.mjs
// (its own process, on loopback), client CPU per call after a long warm-up. The bench's throughput workload measures
// about 300 calls after start, where both sides are still far from their steady state (and the longer code path, ours,
// further from it); this one measures what a long-running server pays.
//
//   npm run build && cd bench && npm ci
//   node bench/micro/ai-sdk-bridge.mjs [--warmup 3000] [--calls 3000] [--rounds 4] [--fetch | --mem]
//
// `--mem`: both sides on an in-memory `fetch` answering at once with the upstream's body (the stock provider's `fetch`
// option; the bridge on FetchRouterHttpClient with that `fetch` as FetchHttpClient.Fetch): no network, so the figures
// are each side's own work per call (plus a `Response`'s), with far less noise than over loopback.
import { createOpenAI } from "@ai-sdk/openai"
import { generateText } from "ai"
import { spawn } from "node:child_process"
import { fileURLToPath, pathToFileURL } from "node:url"
import { importTopLevel, REPO_ROOT } from "../lib/top-level.mjs"
import { numArg } from "./lib.mjs"

globalThis.AI_SDK_LOG_WARNINGS = false
const warmup = numArg("warmup", 3000)
const calls = numArg("calls", 3000)
const rounds = numArg("rounds", 4)

const upstream = spawn(process.execPath, [fileURLToPath(new URL("../upstream.mjs", import.meta.url))], {
  stdio: ["pipe", "pipe", "inherit"]
})
process.on("exit", () => upstream.kill())
const port = await new Promise((resolve) =>
  upstream.stdout.once("data", (d) => resolve(JSON.parse(String(d).split("\n")[0]).port))
)
const url = `http://127.0.0.1:${port}`

const dist = (path) => import(pathToFileURL(`${REPO_ROOT}/dist/src/${path}`).href)
const { Model, OpenAiCompatible } = await dist("index.js")
const { AiSdk } = await dist("ai-sdk/index.js")
const Redacted = await importTopLevel("effect", "./Redacted")
const endpoint = OpenAiCompatible.endpoint({ baseUrl: `${url}/v1`, apiKey: Redacted.make("sk-bench") })
const mem = process.argv.includes("--mem")
const memBody = JSON.stringify({
  id: "chatcmpl-bench",
  object: "chat.completion",
  created: 1,
  model: "m",
  choices: [{
    index: 0,
    message: { role: "assistant", content: "Hello from the bench upstream.", refusal: null },
    logprobs: null,
    finish_reason: "stop"
  }],
  usage: { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 }
})
const memHeaders = { "content-type": "application/json", "content-length": String(Buffer.byteLength(memBody)) }
const memFetch = () => Promise.resolve(new Response(memBody, { headers: memHeaders }))
const { FetchRouterHttpClient } = await dist("index.js")
const httpClient = mem
  ? (await importTopLevel("effect", "./Layer")).provide(
    FetchRouterHttpClient.layer,
    (await importTopLevel("effect", "./Layer")).succeed(
      (await importTopLevel("@effect/platform", "./FetchHttpClient")).Fetch,
      memFetch
    )
  )
  : process.argv.includes("--fetch")
  ? FetchRouterHttpClient.layer
  : undefined
const router = AiSdk.make({
  ...(httpClient === undefined ? {} : { httpClient }),
  chains: { main: { models: [Model.make({ name: "m", endpoint }), Model.make({ name: "m2", endpoint })] } }
})
const models = {
  stock: createOpenAI({ baseURL: `${url}/v1`, apiKey: "sk-bench", ...(mem ? { fetch: memFetch } : {}) }).chat("m"),
  ours: router("main")
}

const run = async (model, n) => {
  let started = 0
  const worker = async () => {
    while (started++ < n) {
      const { text } = await generateText({ model, prompt: "hi", maxRetries: 0 })
      if (text.length === 0) throw new Error("empty answer")
    }
  }
  const before = process.cpuUsage()
  await Promise.all(Array.from({ length: 32 }, worker))
  const used = process.cpuUsage(before)
  return (used.user + used.system) / n
}

for (const side of ["stock", "ours"]) await run(models[side], warmup)
const results = { stock: [], ours: [] }
for (let r = 0; r < rounds; r++) {
  for (const side of r % 2 === 0 ? ["stock", "ours"] : ["ours", "stock"]) {
    results[side].push(await run(models[side], calls))
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1]
console.log(`client CPU per call at c=32 after ${warmup} warm-up calls each, median of ${rounds} rounds of ${calls}:`)
console.log(
  `  stock @ai-sdk/openai  ${median(results.stock).toFixed(0)} µs  [${
    results.stock.map((x) => x.toFixed(0)).join(", ")
  }]`
)
console.log(
  `  effect-llm-router     ${median(results.ours).toFixed(0)} µs  [${results.ours.map((x) => x.toFixed(0)).join(", ")}]`
)
console.log(`  ours / stock          ×${(median(results.ours) / median(results.stock)).toFixed(2)}`)
await router.dispose()
upstream.stdin.end()
