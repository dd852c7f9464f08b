// The router alone, at steady state: `Router.generate` (one OpenAI-compatible model, non-streaming, "hi") 32 calls at
// a time against bench/upstream.mjs (its own process, on loopback), on RouterHttpClient.layer (node:http) and on
// FetchRouterHttpClient.layer (globalThis.fetch), each with deployment health on (the default, in-memory store) and
// off. The figure is this process's CPU (user + system) per call after a long warm-up: the router's own work plus
// its HTTP client's, what a long-running server pays per call. The upstream's CPU is not counted.
//
// And `mem-health` / `mem-nohealth`: the router on FetchRouterHttpClient.layer whose `fetch` (FetchHttpClient.Fetch
// in context) answers at once, in memory, with a `Response` holding the upstream's body: no network, so the figure is
// the router's own work per call plus the fetch layer's and a `Response`'s, with far less noise than the loopback
// variants. What this library can cut is in there.
//
// Variants run interleaved in one process (each round runs all of them, in an order rotated by one per round) and the
// median over rounds is reported, so that machine noise falls on every variant alike. For profiles, run one variant
// (`--only node-health`) under `node --cpu-prof`: the warm-up is then profiled too, lengthen `--calls` to dilute it.
//
//   npm run build && cd bench && npm ci     (this script needs only the top-level node_modules and bench/upstream.mjs)
//   node bench/micro/router-call.mjs [--warmup 3000] [--calls 3000] [--rounds 5] [--concurrency 32]
//                                    [--only node-health,fetch-nohealth,mem-health] [--baseline <copy of dist>]
import os from "node:os"
import { resolve } from "node:path"
import { pathToFileURL } from "node:url"
import { importTopLevel, REPO_ROOT } from "../lib/top-level.mjs"
import { args, memFetch, numArg, startUpstream } from "./lib.mjs"

const warmup = numArg("warmup", 3000)
const calls = numArg("calls", 3000)
const rounds = numArg("rounds", 5)
const concurrency = numArg("concurrency", 32)
const only = typeof args.only === "string" ? args.only.split(",") : undefined

const upstream = await startUpstream()
const url = upstream.url

const [Layer, ManagedRuntime, Redacted] = await Promise.all(
  ["./Layer", "./ManagedRuntime", "./Redacted"].map((m) => importTopLevel("effect", m))
)
const FetchHttpClient = await importTopLevel("@effect/platform", "./FetchHttpClient")

// The variants of one build of the library (`dir`/src/index.js): `--baseline <dir>` (a copy of an earlier dist/) adds
// the same variants on that build, suffixed `@base`, run interleaved with the current dist/'s: a change's before and
// after in one run.
const variants = {}
const generates = {}
const addBuild = async (dir, suffix) => {
  const { Router, Model, OpenAiCompatible, RouterHttpClient, FetchRouterHttpClient } = await import(
    pathToFileURL(`${dir}/src/index.js`).href
  )
  const endpoint = OpenAiCompatible.endpoint({ baseUrl: `${url}/v1`, apiKey: Redacted.make("sk-bench") })
  // Two models, as the bridge micro's router has: the second is never reached (the first answers every call).
  const models = [Model.make({ name: "m", endpoint }), Model.make({ name: "m2", endpoint })]
  const memLayer = Layer.provide(FetchRouterHttpClient.layer, Layer.succeed(FetchHttpClient.Fetch, memFetch))
  const layers = { node: RouterHttpClient.layer, fetch: FetchRouterHttpClient.layer, mem: memLayer }
  for (const [http, HttpLive] of Object.entries(layers)) {
    for (const [name, health] of [["health", undefined], ["nohealth", false]]) {
      const id = `${http}-${name}`
      if (only !== undefined && !only.includes(id)) continue
      variants[id + suffix] = ManagedRuntime.make(
        Layer.provide(Router.layer({ models, ...(health === undefined ? {} : { health }) }), HttpLive)
      )
      generates[id + suffix] = Router.generate({ messages: [{ role: "user", content: "hi" }] })
    }
  }
}
await addBuild(`${REPO_ROOT}/dist`, "")
if (typeof args.baseline === "string") await addBuild(resolve(args.baseline), "@base")
if (Object.keys(variants).length === 0) throw new Error(`--only ${args.only}: no such variant`)

const run = async (name, n) => {
  const rt = variants[name]
  const generate = generates[name]
  let started = 0
  const worker = async () => {
    while (started++ < n) {
      const response = await rt.runPromise(generate)
      if (response.text.length === 0) throw new Error("empty answer")
    }
  }
  const before = process.cpuUsage()
  await Promise.all(Array.from({ length: concurrency }, worker))
  const used = process.cpuUsage(before)
  return (used.user + used.system) / n
}

const names = Object.keys(variants)
console.log(
  `# Router.generate at c=${concurrency}: client CPU per call after ${warmup} warm-up calls each, median of ${rounds} rounds of ${calls}`
)
console.log(`node ${process.version}, load1 at start ${os.loadavg()[0].toFixed(2)} on ${os.cpus().length} cores`)
for (const name of names) await run(name, warmup)
const results = Object.fromEntries(names.map((n) => [n, []]))
for (let r = 0; r < rounds; r++) {
  for (let i = 0; i < names.length; i++) {
    const name = names[(i + r) % names.length]
    results[name].push(await run(name, calls))
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1]
for (const name of names) {
  console.log(
    `  ${name.padEnd(20)} ${median(results[name]).toFixed(0).padStart(5)} µs  [${
      results[name].map((x) => x.toFixed(0)).join(", ")
    }]`
  )
}
const perRound = (a, b) => median(results[a].map((x, i) => x - results[b][i])).toFixed(0)
for (const name of names) {
  const [http, health] = name.split("@")[0].split("-")
  const suffix = name.includes("@") ? "@base" : ""
  if (health === "health" && results[`${http}-nohealth${suffix}`] !== undefined) {
    console.log(
      `  ${name}: health costs ${perRound(name, `${http}-nohealth${suffix}`)} µs/call (median of per-round differences)`
    )
  }
  if (suffix === "" && results[`${name}@base`] !== undefined) {
    console.log(
      `  ${name}: ${perRound(name, `${name}@base`)} µs/call against the baseline (median of per-round differences)`
    )
  }
}
for (const rt of Object.values(variants)) await rt.dispose()
upstream.stop()
