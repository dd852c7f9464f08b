// LangChain.js: ChatOpenAI (@langchain/openai) with configuration: { baseURL }, default retries.
// Failover: LangChain's own `withFallbacks`, with maxRetries 0 on the first model so its backoff is not measured.
import { ChatOpenAI } from "@langchain/openai"
import { promptFor } from "../lib/expected.mjs"
import { runClient } from "../lib/harness.mjs"

runClient("langchain", async ({ url }) => {
  const common = { apiKey: "sk-bench", configuration: { baseURL: `${url}/v1` } }
  const chat = new ChatOpenAI({ ...common, model: "m" })
  const failing = new ChatOpenAI({ ...common, model: "fail-first", maxRetries: 0 })
  const withFallback = failing.withFallbacks([new ChatOpenAI({ ...common, model: "m", maxRetries: 0 })])

  const textOf = (content) => {
    if (typeof content === "string") return content
    return content.map((p) => (p.type === "text" ? p.text : "")).join("")
  }

  const generate = async () => textOf((await chat.invoke("hi")).content)

  const stream = async (n) => {
    const s = await chat.stream(promptFor(n))
    const parts = []
    let chunks = 0
    for await (const c of s) {
      const t = textOf(c.content)
      if (t.length > 0) {
        parts.push(t)
        chunks++
      }
    }
    return { text: parts.join(""), chunks }
  }

  const failover = async () => textOf((await withFallback.invoke("hi")).content)

  return { generate, stream, failover }
})
