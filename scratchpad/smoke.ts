import { FetchHttpClient } from "@effect/platform"
import { Effect, Redacted, Stream } from "effect"
import { Attempt, GptRouter, Model, OpenAiCompatible, Router } from "../src/index.js"
import * as SimulatedUpstream from "../src/testing/SimulatedUpstream.js"
import * as Script from "../src/testing/UpstreamScript.js"

const main = Effect.gen(function*() {
  const upstream = yield* SimulatedUpstream.make({
    script: {
      "a": [Script.rateLimited({ retryAfter: "1" }), Script.rateLimited({ retryAfter: "1" })],
      "b": [Script.unavailable(), Script.succeed({ text: "Hello from b, streamed in pieces" })],
      "g1": [Script.unavailable()],
      "g2": [Script.succeed({ text: "gpt router says hi" })]
    },
    apiKey: "sk-test-secret-123456"
  })
  const openai = OpenAiCompatible.endpoint({
    baseUrl: upstream.openAiBaseUrl,
    apiKey: Redacted.make("sk-test-secret-123456")
  })
  const gpt = GptRouter.endpoint({ baseUrl: upstream.gptRouterBaseUrl, apiKey: Redacted.make("sk-test-secret-123456") })
  const router = yield* Router.make({
    models: [Model.make({ name: "a", endpoint: openai }), Model.make({ name: "b", endpoint: openai })],
    retry: { minDelay: "10 millis", maxDelay: "50 millis", maxAttempts: 2 }
  })
  const res = yield* router.generate({ messages: [{ role: "user", content: "hi" }] })
  console.log(res.text, res.model)
  console.log(Attempt.formatTimeline(res.trail))
  const chunks = yield* Stream.runCollect(router.stream({ messages: [{ role: "user", content: "hi" }] }))
  console.log([...chunks].map((c) => c._tag === "TextDelta" ? c.text : `[${c._tag}]`).join(""))
  const r2 = yield* Router.make({
    models: [Model.make({ name: "g1", endpoint: gpt }), Model.make({ name: "g2", endpoint: gpt })],
    retry: { minDelay: "10 millis", maxDelay: "50 millis", maxAttempts: 2 }
  })
  const res2 = yield* r2.generate({ messages: [{ role: "user", content: "hi" }] })
  console.log(res2.text, res2.model, res2.provider)
  console.log(Attempt.formatTimeline(res2.trail))
  const s2 = yield* Router.collect(r2.stream({ messages: [{ role: "user", content: "hi" }] }))
  console.log(s2.text, s2.usage)
  console.log(upstream.requests.map((r) => `${r.protocol} ${r.models.join(",")}`))
})
Effect.runPromise(main.pipe(Effect.scoped, Effect.provide(FetchHttpClient.layer))).catch((e) => {
  console.error("FAILED", e)
  process.exit(1)
})
