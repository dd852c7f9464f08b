// Vercel AI SDK: generateText / streamText with createOpenAI({ baseURL, apiKey }).chat(model) (Chat Completions).
// Default retries (maxRetries 2). Failover: the AI SDK core has no multi-model fallback, so it is a hand-written
// loop over models with maxRetries 0 for that loop.
import { createOpenAI } from "@ai-sdk/openai"
import { generateText, streamText } from "ai"
import { promptFor } from "../lib/expected.mjs"
import { runClient } from "../lib/harness.mjs"

globalThis.AI_SDK_LOG_WARNINGS = false

runClient("ai", async ({ url }) => {
  const openai = createOpenAI({ baseURL: `${url}/v1`, apiKey: "sk-bench" })
  const model = openai.chat("m")
  const models = [openai.chat("fail-first"), model]

  const generate = async () => {
    const r = await generateText({ model, prompt: "hi" })
    return r.text
  }

  const stream = async (n) => {
    let streamError
    const r = streamText({
      model,
      prompt: promptFor(n),
      onError: ({ error }) => {
        streamError = error
      }
    })
    const parts = []
    let chunks = 0
    for await (const t of r.textStream) {
      if (t.length > 0) {
        parts.push(t)
        chunks++
      }
    }
    if (streamError !== undefined) throw streamError
    return { text: parts.join(""), chunks }
  }

  const failover = async () => {
    let last
    for (const m of models) {
      try {
        const r = await generateText({ model: m, prompt: "hi", maxRetries: 0 })
        return r.text
      } catch (e) {
        last = e
      }
    }
    throw last
  }

  return { generate, stream, failover }
})
