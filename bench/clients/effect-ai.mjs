// @effect/ai + @effect/ai-openai: OpenAiClient layer + OpenAiLanguageModel on FetchHttpClient, one ManagedRuntime.
// Note: OpenAiLanguageModel (0.41) speaks the OpenAI Responses API (POST /v1/responses), not Chat Completions;
// the upstream serves both with the same text, but the Responses wire format is larger per delta.
// Failover: effect's ExecutionPlan over two AiModel layers (first model 1 attempt, then the second model).
import { LanguageModel } from "@effect/ai"
import { OpenAiClient, OpenAiLanguageModel } from "@effect/ai-openai"
import { FetchHttpClient } from "@effect/platform"
import { Effect, ExecutionPlan, Layer, ManagedRuntime, Redacted, Stream } from "effect"
import { promptFor } from "../lib/expected.mjs"
import { runClient } from "../lib/harness.mjs"

runClient("effect-ai", async ({ url }) => {
  const ClientLive = OpenAiClient.layer({ apiKey: Redacted.make("sk-bench"), apiUrl: `${url}/v1` }).pipe(
    Layer.provide(FetchHttpClient.layer)
  )
  const rt = ManagedRuntime.make(OpenAiLanguageModel.layer({ model: "m" }).pipe(Layer.provideMerge(ClientLive)))
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

  const plan = ExecutionPlan.make(
    { provide: OpenAiLanguageModel.model("fail-first"), attempts: 1 },
    { provide: OpenAiLanguageModel.model("m"), attempts: 1 }
  )
  const failoverEff = generateEff.pipe(Effect.withExecutionPlan(plan))
  const failover = () => rt.runPromise(failoverEff)

  return { generate, stream, failover, close: () => rt.dispose() }
})
