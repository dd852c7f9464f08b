// The AI SDK bridge (effect-llm-router/ai-sdk on its default RouterHttpClient, node:http on Node; `--fetch` on
// FetchRouterHttpClient) against the stock provider
// (@ai-sdk/openai), both through `ai`'s generateText, at steady state: 32 calls at a time against bench/upstream.mjs
// (its own process, on loopback), client CPU per call after a long warm-up. The bench's throughput workload measures
// about 300 calls after start, where both sides are still far from their steady state (and the longer code path, ours,
// further from it); this one measures what a long-running server pays.
//
//   npm run build && cd bench && npm ci
//   node bench/micro/ai-sdk-bridge.mjs [--warmup 3000] [--calls 3000] [--rounds 4] [--fetch | --mem]
//                                      [--baseline <copy of dist>]
//
// `--mem`: both sides on an in-memory `fetch` answering at once with the upstream's body (the stock provider's `fetch`
// option; the bridge on FetchRouterHttpClient with that `fetch` as FetchHttpClient.Fetch): no network, so the figures
// are each side's own work per call (plus a `Response`'s), with far less noise than over loopback.
// `--baseline <dir>`: a third side, the bridge built from that copy of an earlier dist/, run interleaved with the
// others (a change's before and after in one run).
import { createOpenAI } from "@ai-sdk/openai"
import { generateText } from "ai"
import { resolve } from "node:path"
import { pathToFileURL } from "node:url"
import { importTopLevel, REPO_ROOT } from "../lib/top-level.mjs"
import { args, memFetch, numArg, startUpstream } from "./lib.mjs"

globalThis.AI_SDK_LOG_WARNINGS = false
const warmup = numArg("warmup", 3000)
const calls = numArg("calls", 3000)
const rounds = numArg("rounds", 4)

const upstream = await startUpstream()
const url = upstream.url

const Redacted = await importTopLevel("effect", "./Redacted")
const mem = process.argv.includes("--mem")
// The bridge of one build of the library (`dir`/src).
const bridgeOf = async (dir) => {
  const dist = (path) => import(pathToFileURL(`${dir}/src/${path}`).href)
  const { FetchRouterHttpClient, Model, OpenAiCompatible } = await dist("index.js")
  const { AiSdk } = await dist("ai-sdk/index.js")
  const endpoint = OpenAiCompatible.endpoint({ baseUrl: `${url}/v1`, apiKey: Redacted.make("sk-bench") })
  const httpClient = mem
    ? Layer.provide(FetchRouterHttpClient.layer, Layer.succeed(FetchHttpClient.Fetch, memFetch))
    : process.argv.includes("--fetch")
    ? FetchRouterHttpClient.layer
    : undefined
  return AiSdk.make({
    ...(httpClient === undefined ? {} : { httpClient }),
    chains: { main: { models: [Model.make({ name: "m", endpoint }), Model.make({ name: "m2", endpoint })] } }
  })
}
const Layer = await importTopLevel("effect", "./Layer")
const FetchHttpClient = await importTopLevel("@effect/platform", "./FetchHttpClient")
const routers = { ours: await bridgeOf(`${REPO_ROOT}/dist`) }
if (typeof args.baseline === "string") routers.base = await bridgeOf(resolve(args.baseline))
const models = {
  stock: createOpenAI({ baseURL: `${url}/v1`, apiKey: "sk-bench", ...(mem ? { fetch: memFetch } : {}) }).chat("m"),
  ...Object.fromEntries(Object.entries(routers).map(([side, router]) => [side, router("main")]))
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

const sides = Object.keys(models)
for (const side of sides) await run(models[side], warmup)
const results = Object.fromEntries(sides.map((side) => [side, []]))
for (let r = 0; r < rounds; r++) {
  for (let i = 0; i < sides.length; i++) {
    const side = sides[(i + r) % sides.length]
    results[side].push(await run(models[side], calls))
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1]
const labels = { stock: "stock @ai-sdk/openai", ours: "effect-llm-router", base: "effect-llm-router (baseline)" }
console.log(`client CPU per call at c=32 after ${warmup} warm-up calls each, median of ${rounds} rounds of ${calls}:`)
for (const side of sides) {
  console.log(
    `  ${labels[side].padEnd(28)} ${median(results[side]).toFixed(0)} µs  [${
      results[side].map((x) => x.toFixed(0)).join(", ")
    }]`
  )
}
console.log(`  ours / stock                 ×${(median(results.ours) / median(results.stock)).toFixed(2)}`)
if (results.base !== undefined) {
  console.log(`  baseline / stock             ×${(median(results.base) / median(results.stock)).toFixed(2)}`)
}
for (const router of Object.values(routers)) await router.dispose()
upstream.stop()
