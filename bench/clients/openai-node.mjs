// openai-node (the official SDK), Chat Completions, its own retries on (default maxRetries).
// Failover: openai-node has no multi-model fallback, so it is the usual hand-written loop over models with the
// SDK's retries off for that loop (otherwise its backoff, not the fallback, would be measured).
import OpenAI from "openai"
import { promptFor } from "../lib/expected.mjs"
import { runClient } from "../lib/harness.mjs"

runClient("openai-node", async ({ url }) => {
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "sk-bench" })
  const noRetry = client.withOptions({ maxRetries: 0 })
  const messages = [{ role: "user", content: "hi" }]

  const generate = async () => {
    const r = await client.chat.completions.create({ model: "m", messages })
    return r.choices[0].message.content
  }

  const stream = async (n) => {
    const s = await client.chat.completions.create({
      model: "m",
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: "user", content: promptFor(n) }]
    })
    const parts = []
    let chunks = 0
    for await (const ev of s) {
      const c = ev.choices[0]?.delta?.content
      if (typeof c === "string" && c.length > 0) {
        parts.push(c)
        chunks++
      }
    }
    return { text: parts.join(""), chunks }
  }

  const models = ["fail-first", "m"]
  const failover = async () => {
    let last
    for (const model of models) {
      try {
        const r = await noRetry.chat.completions.create({ model, messages })
        return r.choices[0].message.content
      } catch (e) {
        if (!(e instanceof OpenAI.APIError)) throw e
        last = e
      }
    }
    throw last
  }

  return { generate, stream, failover }
})
