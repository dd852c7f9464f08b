/**
 * `npx tsx scratchpad/ai-sdk.ts`: the router as a Vercel AI SDK provider, driven by the `ai` package from plain
 * promise code, against a simulated upstream started in-process (no network, no keys).
 *
 * 1. `generateText` on a chain whose first model answers 503: the second one serves, and the metadata says so.
 * 2. `streamText` with `for await`: the first model goes silent before its first token, the second streams.
 * 3. `streamText` aborted after a few tokens: the connection is closed (the simulated upstream counts it).
 * 4. `streamText` cut after its first tokens: an `error` part carrying our `StreamInterrupted`, the text kept once.
 */
import { generateText, streamText } from "ai"
import { Redacted } from "effect"
import { AiSdk } from "../src/ai-sdk/index.js"
import { Attempt, Model, OpenAiCompatible, RetryPolicy } from "../src/index.js"
import * as SimulatedUpstream from "../src/testing/SimulatedUpstream.js"
import * as Script from "../src/testing/UpstreamScript.js"

const KEY = "sk-scratchpad-0123456789"
const out = (text: string) => process.stdout.write(text)

const upstream = await SimulatedUpstream.start({
  apiKey: KEY,
  maxLifetimeMs: 60_000,
  script: {
    a: [
      Script.unavailable(),
      Script.hang({ stage: "first-token" }),
      Script.succeed({ chunks: Array.from({ length: 100 }, (_, i) => `${i + 1} `), chunkDelayMs: 30 }),
      Script.cut({ text: "Once upon a time, a router met a flaky model", afterChunks: 4, chunkDelayMs: 30 })
    ],
    b: [
      Script.succeed({ text: "Hello from b, since a answered 503." }),
      Script.succeed({ text: "Streamed by b, after a went silent.", chunkDelayMs: 30 })
    ]
  }
})
const endpoint = OpenAiCompatible.endpoint({ baseUrl: upstream.openAiBaseUrl, apiKey: Redacted.make(KEY) })
const router = AiSdk.make({
  chains: {
    main: {
      models: [Model.make({ name: "a", endpoint }), Model.make({ name: "b", endpoint })],
      retry: RetryPolicy.none,
      timeout: { firstToken: "500 millis" },
      health: false
    }
  }
})

try {
  out("1. generateText\n")
  const result = await generateText({ model: router("main"), prompt: "Hello", maxRetries: 0 })
  const route = result.providerMetadata?.["effect-llm-router"] as { trail: ReadonlyArray<unknown> } | undefined
  out(`${result.text} (model ${result.response.modelId}, ${route?.trail.length} attempts)\n\n`)

  out("2. streamText with for await, falling back before the first token\n")
  const story = streamText({ model: router("main"), prompt: "Tell me something", maxRetries: 0 })
  for await (const delta of story.textStream) out(delta)
  out(` (model ${(await story.response).modelId})\n\n`)

  out("3. streamText aborted after five tokens\n")
  const controller = new AbortController()
  const closedBefore = upstream.closedConnections()
  const closed = upstream.waitForClose()
  const counting = streamText({
    model: router("main"),
    prompt: "Count to 100",
    maxRetries: 0,
    abortSignal: controller.signal,
    onError: () => {}
  })
  let tokens = 0
  for await (const delta of counting.textStream) {
    out(delta)
    if (++tokens === 5) controller.abort()
  }
  await closed
  out(`\n   the upstream saw ${upstream.closedConnections() - closedBefore} connection closed by the client\n\n`)

  out("4. streamText cut after its first tokens\n")
  const cut = streamText({ model: router("main"), prompt: "Tell me a story", maxRetries: 0, onError: () => {} })
  for await (const part of cut.fullStream) {
    if (part.type === "text-delta") out(part.text)
    if (part.type === "error") {
      const ours = AiSdk.routerError(part.error)
      if (ours?._tag === "StreamInterrupted") {
        out(
          `\n   error part: StreamInterrupted (${ours.reason}) after ${ours.text.length} characters from ${ours.model}\n`
        )
        out(`${Attempt.formatTimeline(ours.trail ?? [])}\n`)
      }
    }
  }
} finally {
  await router.dispose()
  await upstream.close()
}
