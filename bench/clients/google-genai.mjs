// @google/genai (the official SDK), Gemini API (generateContent, streamGenerateContent?alt=sse), its default options.
// Failover: the SDK has no multi-model fallback, so it is the usual hand-written loop over models.
import { ApiError, GoogleGenAI } from "@google/genai"
import { promptFor } from "../lib/expected.mjs"
import { runClient } from "../lib/harness.mjs"

runClient("google-genai", async ({ url }) => {
  const ai = new GoogleGenAI({ apiKey: "gemini-bench", httpOptions: { baseUrl: url } })
  const contents = "hi"

  const generate = async () => (await ai.models.generateContent({ model: "m", contents })).text

  const stream = async (n) => {
    const s = await ai.models.generateContentStream({ model: "m", contents: promptFor(n) })
    const parts = []
    let chunks = 0
    for await (const chunk of s) {
      const text = chunk.text
      if (typeof text === "string" && text.length > 0) {
        parts.push(text)
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
        return (await ai.models.generateContent({ model, contents })).text
      } catch (e) {
        if (!(e instanceof ApiError)) throw e
        last = e
      }
    }
    throw last
  }

  return { generate, stream, failover }
})
