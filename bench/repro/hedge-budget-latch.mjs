// Repro: the hedging budget latches at its cap. Run from the worktree root after `npm run build`:
//   node bench/repro/hedge-budget-latch.mjs .
// A loopback server: model `a` answers its first 4 requests after 130 ms and `b` its first 4 after 300 ms (each of the
// first 4 calls hedges, at 15, 30, 60, 120 ms, and the hedge loses to the first request: the budget doubles the delay
// 4 times, to 16x = 240 ms); then `a` answers every 5th request after 200 ms and the rest after 5 ms, `b` everything after 5 ms.
// Router [a, b], hedge { delay: "15 millis" }.
// Expected: from call 5 on, every 200 ms call of `a` is hedged at 15..240 ms and the budget comes back down.
// Observed: no call after the 4th sends a hedge (200 ms < 240 ms, so no hedge starts, so no call settles, so the
// factor never halves): every 5th call takes 200 ms for ever.
import http from "node:http"
import { resolve } from "node:path"
import { pathToFileURL } from "node:url"
const root = process.argv[2] ?? process.cwd()
const dist = (p) => pathToFileURL(resolve(root, p)).href
const imp = (m) => import(pathToFileURL(resolve(root, "node_modules", m)).href)
const { Router, Model, OpenAiCompatible } = await import(dist("dist/src/index.js"))
const { NodeRouterHttpClient } = await import(dist("dist/src/node/index.js"))
const Layer = await imp("effect/dist/esm/Layer.js")
const ManagedRuntime = await imp("effect/dist/esm/ManagedRuntime.js")
const Redacted = await imp("effect/dist/esm/Redacted.js")
const seq = { a: 0, b: 0 }
const server = http.createServer((req, res) => {
  let raw = ""
  req.on("data", (d) => (raw += d))
  req.on("end", () => {
    const model = JSON.parse(raw).model
    const n = ++seq[model]
    const ms = model === "b" ? (n <= 4 ? 300 : 5) : n <= 4 ? 130 : n % 5 === 0 ? 200 : 5
    const t = setTimeout(() => {
      res.writeHead(200, { "content-type": "application/json" })
      res.end(JSON.stringify({
        id: "x",
        object: "chat.completion",
        created: 1,
        model,
        choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }],
        usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 }
      }))
    }, ms)
    res.on("close", () => clearTimeout(t))
  })
})
await new Promise((r) => server.listen(0, "127.0.0.1", r))
const endpoint = OpenAiCompatible.endpoint({
  baseUrl: `http://127.0.0.1:${server.address().port}/v1`,
  apiKey: Redacted.make("k")
})
const rt = ManagedRuntime.make(Layer.provide(
  Router.layer({ models: ["a", "b"].map((name) => Model.make({ name, endpoint })), hedge: { delay: "15 millis" } }),
  NodeRouterHttpClient.layerUndici
))
const rows = []
for (let i = 1; i <= 40; i++) {
  const t0 = performance.now()
  const r = await rt.runPromise(Router.generate({ messages: [{ role: "user", content: "hi" }] }))
  rows.push({
    call: i,
    ms: Math.round(performance.now() - t0),
    hedged: r.trail.some((t) => (t.hedge ?? 0) > 0),
    served: r.model
  })
}
console.table(rows.filter((r) => r.call <= 6 || r.ms > 50 || r.hedged))
console.log(
  `calls with a hedge after call 4: ${rows.filter((r) => r.call > 4 && r.hedged).length}; calls over 150 ms: ${
    rows.filter((r) => r.ms > 150).length
  }`
)
await rt.dispose()
server.close()
server.closeAllConnections()
