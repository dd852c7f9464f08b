/**
 * `npx tsx scratchpad/effect-ai.ts`: the router as an @effect/ai `LanguageModel`, against a simulated upstream started
 * in-process (no network, no keys).
 *
 * 1. `generateObject` with a schema: model a is rate limited, so b serves the object; the trail shows the way there.
 * 2. A toolkit round trip with `Chat`: the model asks for a tool, the handler answers, the next turn sends both back.
 * 3. `streamText`: a hangs before its first token, so b streams; then a stream cut after its first tokens fails with
 *    the partial text, handled by our own tag after `EffectAi.unwrapError`.
 */
import { Chat, LanguageModel, Tool, Toolkit } from "@effect/ai"
import { Effect, Layer, Redacted, Schema, Stream } from "effect"
import { EffectAi } from "../src/ai/index.js"
import { Attempt, Model, OpenAiCompatible, RouterHttpClient } from "../src/index.js"
import * as SimulatedUpstream from "../src/testing/SimulatedUpstream.js"
import * as Script from "../src/testing/UpstreamScript.js"

const KEY = "sk-scratchpad-0123456789"
const out = (text: string) => Effect.sync(() => process.stdout.write(text))

const GetWeather = Tool.make("GetWeather", {
  description: "The current temperature in a city",
  parameters: { city: Schema.String },
  success: Schema.Struct({ celsius: Schema.Number })
})
const Tools = Toolkit.make(GetWeather)
const ToolsLive = Tools.toLayer({ GetWeather: ({ city }) => Effect.succeed({ celsius: city === "Paris" ? 21 : 12 }) })

const main = Effect.gen(function*() {
  const upstream = yield* SimulatedUpstream.make({
    apiKey: KEY,
    script: {
      a: [
        Script.rateLimited({ retryAfter: "0.2" }),
        Script.rateLimited(),
        Script.succeed({ toolCalls: [{ id: "call_1", name: "GetWeather", arguments: { city: "Paris" } }] }),
        Script.succeed({ text: "It is 21 degrees in Paris: take sunglasses." }),
        Script.hang({ stage: "first-token" }),
        Script.hang({ stage: "first-token" }),
        Script.cut({ text: "Once upon a time, a router met a flaky model", afterChunks: 4, chunkDelayMs: 40 })
      ],
      b: [
        Script.succeed({ text: JSON.stringify({ sky: "sunny", celsius: 24 }) }),
        Script.succeed({ text: "Streamed by b, after a went silent.", chunkDelayMs: 40 })
      ]
    }
  })
  const endpoint = OpenAiCompatible.endpoint({ baseUrl: upstream.openAiBaseUrl, apiKey: Redacted.make(KEY) })
  const LanguageModelLive = EffectAi.layerRouter({
    models: [Model.make({ name: "a", endpoint }), Model.make({ name: "b", endpoint })],
    retry: { maxAttempts: 2, initialDelay: "100 millis", minDelay: "100 millis", jitter: 0 },
    timeout: { firstToken: "500 millis" },
    health: false
  }).pipe(Layer.provide(RouterHttpClient.layer))

  const run = Effect.gen(function*() {
    yield* out("1. generateObject\n")
    const forecast = yield* LanguageModel.generateObject({
      prompt: "Tomorrow in Paris: sunny, 24 degrees.",
      schema: Schema.Struct({ sky: Schema.String, celsius: Schema.Number })
    })
    const route = EffectAi.route(forecast.content)!
    yield* out(`${JSON.stringify(forecast.value)} from ${route.provider}/${route.model}\n`)
    yield* out(`${Attempt.formatTimeline(route.trail)}\n\n`)

    yield* out("2. a toolkit round trip\n")
    const chat = yield* Chat.empty
    const first = yield* chat.generateText({ prompt: "Weather in Paris?", toolkit: Tools })
    yield* out(`tool calls: ${JSON.stringify(first.toolCalls.map((c) => [c.name, c.params]))}\n`)
    yield* out(`tool results: ${JSON.stringify(first.toolResults.map((r) => r.result))}\n`)
    const second = yield* chat.generateText({ prompt: "So?", toolkit: Tools })
    yield* out(`answer: ${second.text}\n\n`)

    yield* out("3. streamText, falling back before its first token\n")
    yield* LanguageModel.streamText({ prompt: "Tell me something" }).pipe(
      Stream.runForEach((part) => part.type === "text-delta" ? out(part.delta) : Effect.void)
    )
    yield* out("\n\n   and cut after its first tokens\n")
    yield* LanguageModel.streamText({ prompt: "Tell me a story" }).pipe(
      Stream.runForEach((part) => part.type === "text-delta" ? out(part.delta) : Effect.void),
      Effect.mapError(EffectAi.unwrapError),
      Effect.catchTag(
        "StreamInterrupted",
        (e) => out(`\n   StreamInterrupted (${e.reason}) after ${e.text.length} characters from ${e.model}\n`)
      )
    )
  })
  yield* run.pipe(Effect.provide(ToolsLive), Effect.provide(LanguageModelLive))
})

Effect.runPromise(Effect.scoped(main)).catch((error) => {
  console.error(error)
  process.exit(1)
})
