// Floor: Node's global fetch + a hand-written SSE line splitter + JSON.parse. Node built-ins only.
import { promptFor } from "../lib/expected.mjs"
import { chatDeltaCollector, runClient, splitSse } from "../lib/harness.mjs"

runClient("raw-fetch", async ({ url }) => {
  const endpoint = `${url}/v1/chat/completions`
  const headers = { "content-type": "application/json", authorization: "Bearer sk-bench" }
  const nonStreamBody = (model) => JSON.stringify({ model, messages: [{ role: "user", content: "hi" }] })
  const bodyM = nonStreamBody("m")

  const generate = async () => {
    const res = await fetch(endpoint, { method: "POST", headers, body: bodyM })
    if (!res.ok) throw new Error(`HTTP ${res.status}: ${await res.text()}`)
    const json = await res.json()
    return json.choices[0].message.content
  }

  const stream = async (n) => {
    const res = await fetch(endpoint, {
      method: "POST",
      headers,
      body: JSON.stringify({
        model: "m",
        stream: true,
        stream_options: { include_usage: true },
        messages: [{ role: "user", content: promptFor(n) }]
      })
    })
    if (!res.ok || res.body === null) throw new Error(`HTTP ${res.status}: ${await res.text()}`)
    const acc = chatDeltaCollector()
    const done = await splitSse(res.body, acc.onData)
    if (!done) throw new Error("stream ended without [DONE]")
    return acc.result()
  }

  // The hand-written fallback loop: try each model in order, move on at a 503 (or any non-2xx), no backoff.
  const models = ["fail-first", "m"]
  const failover = async () => {
    let last
    for (const model of models) {
      const res = await fetch(endpoint, { method: "POST", headers, body: nonStreamBody(model) })
      if (!res.ok) {
        last = `HTTP ${res.status}: ${await res.text()}`
        continue
      }
      const json = await res.json()
      return json.choices[0].message.content
    }
    throw new Error(`every model failed; last: ${last}`)
  }

  return { generate, stream, failover }
})
