// Floor: undici 7 `request` (bench/node_modules) + the same hand-written SSE splitter as raw-fetch.
import { request } from "undici"
import { promptFor } from "../lib/expected.mjs"
import { chatDeltaCollector, runClient, splitSse } from "../lib/harness.mjs"

runClient("raw-undici", async ({ url }) => {
  const endpoint = `${url}/v1/chat/completions`
  const headers = { "content-type": "application/json", authorization: "Bearer sk-bench" }
  const nonStreamBody = (model) => JSON.stringify({ model, messages: [{ role: "user", content: "hi" }] })
  const bodyM = nonStreamBody("m")

  const generate = async () => {
    const res = await request(endpoint, { method: "POST", headers, body: bodyM })
    if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}: ${await res.body.text()}`)
    const json = await res.body.json()
    return json.choices[0].message.content
  }

  const stream = async (n) => {
    const res = await request(endpoint, {
      method: "POST",
      headers,
      body: JSON.stringify({
        model: "m",
        stream: true,
        stream_options: { include_usage: true },
        messages: [{ role: "user", content: promptFor(n) }]
      })
    })
    if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}: ${await res.body.text()}`)
    const acc = chatDeltaCollector()
    const done = await splitSse(res.body, acc.onData)
    if (!done) throw new Error("stream ended without [DONE]")
    return acc.result()
  }

  const models = ["fail-first", "m"]
  const failover = async () => {
    let last
    for (const model of models) {
      const res = await request(endpoint, { method: "POST", headers, body: nonStreamBody(model) })
      if (res.statusCode !== 200) {
        last = `HTTP ${res.statusCode}: ${await res.body.text()}`
        continue
      }
      const json = await res.body.json()
      return json.choices[0].message.content
    }
    throw new Error(`every model failed; last: ${last}`)
  }

  return { generate, stream, failover }
})
