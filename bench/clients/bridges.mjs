// The bridges of this library (built to dist/ by `npm run build`), beside the stock provider of each ecosystem:
//   --variant effectai-fetch   @effect/ai LanguageModel.generateText / streamText through effect-llm-router/ai
//                              (EffectAi.layerRouter on FetchHttpClient), client "effect-ai-ours"; beside "effect-ai"
//   --variant aisdk-default    the `ai` package's generateText / streamText with the effect-llm-router/ai-sdk provider
//                              (AiSdk.make with no `httpClient`: its default, RouterHttpClient.layer, node:http on
//                              Node), client "ai-ours"; beside "ai"
// and for each `-fetch` (the platform's FetchHttpClient.layer: "ai-ours-platformfetch"), `-fetchr`
// (FetchRouterHttpClient.layer: "effect-ai-ours-fetchr", "ai-ours-fetchr"), `-nodehttp` (RouterHttpClient.layer:
// "effect-ai-ours-nodehttp") and `-undici` (NodeRouterHttpClient.layerUndici).
//
// The router is the one ours.mjs measures: models [m, m2], retry maxAttempts 3, health on; for failover
// [fail-first, m], one attempt per model, health off. effect, @effect/platform and @effect/ai come from the TOP-LEVEL
// node_modules (the copies dist/ resolves: one effect instance, one LanguageModel tag); `ai` from bench/node_modules,
// as the `ai` client imports it.
import { existsSync } from "node:fs"
import { resolve } from "node:path"
import { pathToFileURL } from "node:url"
import { promptFor } from "../lib/expected.mjs"
import { runClient } from "../lib/harness.mjs"
import { importTopLevel, REPO_ROOT } from "../lib/top-level.mjs"

globalThis.AI_SDK_LOG_WARNINGS = false

const dist = (path) => {
  const file = resolve(REPO_ROOT, "dist/src", path)
  if (!existsSync(file)) {
    throw new Error(`library not built: ${file} is missing (run \`npm run build\` at the top level)`)
  }
  return import(pathToFileURL(file).href)
}

runClient("bridges", async ({ url, variant = "effectai-fetch", workload }) => {
  const [bridge, http] = variant.split("-")
  const { Model, OpenAiCompatible } = await dist("index.js")
  const [Effect, Layer, ManagedRuntime, Redacted, Stream] = await Promise.all(
    ["./Effect", "./Layer", "./ManagedRuntime", "./Redacted", "./Stream"].map((m) => importTopLevel("effect", m))
  )
  let HttpLive
  if (http === "fetch") HttpLive = (await importTopLevel("@effect/platform", "./FetchHttpClient")).layer
  else if (http === "fetchr") HttpLive = (await dist("index.js")).FetchRouterHttpClient.layer
  else if (http === "nodehttp") HttpLive = (await dist("index.js")).RouterHttpClient.layer
  else if (http === "undici") HttpLive = (await dist("node/index.js")).NodeRouterHttpClient.layerUndici
  else if (http === "default" && bridge === "aisdk") HttpLive = undefined
  else throw new Error(`unknown variant ${variant}`)

  const endpoint = OpenAiCompatible.endpoint({ baseUrl: `${url}/v1`, apiKey: Redacted.make("sk-bench") })
  const options = workload === "failover"
    ? {
      models: [Model.make({ name: "fail-first", endpoint }), Model.make({ name: "m", endpoint })],
      retry: { maxAttempts: 1 },
      health: false
    }
    : { models: [Model.make({ name: "m", endpoint }), Model.make({ name: "m2", endpoint })], retry: { maxAttempts: 3 } }

  if (bridge === "effectai") {
    const [{ EffectAi }, LanguageModel] = await Promise.all([
      dist("ai/index.js"),
      importTopLevel("@effect/ai", "./LanguageModel")
    ])
    const rt = ManagedRuntime.make(Layer.provide(EffectAi.layerRouter(options), HttpLive))
    await rt.runPromise(Effect.void)
    const generateEff = LanguageModel.generateText({ prompt: "hi" }).pipe(Effect.map((r) => r.text))
    const generate = () => rt.runPromise(generateEff)
    const stream = (n) =>
      rt.runPromise(
        LanguageModel.streamText({ prompt: promptFor(n) }).pipe(
          Stream.runFold({ parts: [], chunks: 0 }, (acc, part) => {
            if (part.type === "text-delta" && part.delta.length > 0) {
              acc.parts.push(part.delta)
              acc.chunks++
            }
            return acc
          }),
          Effect.map((acc) => ({ text: acc.parts.join(""), chunks: acc.chunks }))
        )
      )
    return { generate, stream, failover: generate, close: () => rt.dispose() }
  }

  if (bridge === "aisdk") {
    const [{ AiSdk }, { generateText, streamText }] = await Promise.all([dist("ai-sdk/index.js"), import("ai")])
    const router = AiSdk.make({ chains: { main: options }, httpClient: HttpLive })
    const model = router("main")
    const generate = async () => (await generateText({ model, prompt: "hi", maxRetries: 0 })).text
    const stream = async (n) => {
      let streamError
      const r = streamText({
        model,
        prompt: promptFor(n),
        maxRetries: 0,
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
    return { generate, stream, failover: generate, close: () => router.dispose() }
  }

  throw new Error(`unknown variant ${variant} (effectai-fetch | aisdk-fetch | effectai-undici | aisdk-undici)`)
})
