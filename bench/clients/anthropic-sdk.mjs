// @anthropic-ai/sdk (the official SDK), Messages API, its own retries on (default maxRetries).
// Failover: the SDK has no multi-model fallback, so it is the usual hand-written loop over models with the SDK's
// retries off for that loop (otherwise its backoff, not the fallback, would be measured).
import Anthropic from "@anthropic-ai/sdk"
import { promptFor } from "../lib/expected.mjs"
import { runClient } from "../lib/harness.mjs"

runClient("anthropic-sdk", async ({ url }) => {
  const client = new Anthropic({ baseURL: url, apiKey: "sk-ant-bench" })
  const noRetry = client.withOptions({ maxRetries: 0 })
  const messages = [{ role: "user", content: "hi" }]
  const textOf = (message) => message.content.map((b) => b.type === "text" ? b.text : "").join("")

  const generate = async () => textOf(await client.messages.create({ model: "m", max_tokens: 1024, messages }))

  const stream = async (n) => {
    const s = await client.messages.create({
      model: "m",
      max_tokens: 1024,
      stream: true,
      messages: [{ role: "user", content: promptFor(n) }]
    })
    const parts = []
    let chunks = 0
    for await (const ev of s) {
      if (ev.type === "content_block_delta" && ev.delta.type === "text_delta" && ev.delta.text.length > 0) {
        parts.push(ev.delta.text)
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
        return textOf(await noRetry.messages.create({ model, max_tokens: 1024, messages }))
      } catch (e) {
        if (!(e instanceof Anthropic.APIError)) throw e
        last = e
      }
    }
    throw last
  }

  return { generate, stream, failover }
})
