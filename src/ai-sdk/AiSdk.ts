/**
 * The router as a Vercel AI SDK provider (language-model specification v3, the one `ai` 6 uses): `generateText`,
 * `streamText` and `generateObject` of the `ai` package run through routing with `model: router("my-chain")`, from
 * plain promise code. Each chain is a router's options (or just its list of models) configured on the provider.
 *
 * - One Effect runtime per provider, holding the HTTP client, disposed with `router.dispose()`; one router per chain,
 *   built on its first call and kept, so deployment health carries across calls.
 * - `doGenerate` runs `generate`, `doStream` runs `stream`. A stream opens (the SDK's `doStream` resolves) once a model
 *   answers: falling back happens before that, and a failure before it rejects like a stock provider's failed
 *   request. Stream parts follow the specification: `stream-start`, `response-metadata` naming the model that served,
 *   text start/delta/end, tool-input start/delta/end and `tool-call`, `finish` with reason and usage. A failure after
 *   content started is an `error` part (the text already delivered stays delivered, once), then the open blocks' ends
 *   and a `finish` with reason `error`.
 * - The call's abort signal interrupts the fiber, which closes the connection.
 * - Every failure is an `APICallError` with `isRetryable: false` (the router already retried and fell back; the SDK
 *   must not retry on top of it, so `maxRetries: 0` is the right setting) whose `cause` is the router's typed error,
 *   trail included ({@link routerError} finds it), `statusCode` and `responseBody` the failed attempt's, and `data`
 *   `{ _tag, trail }` as JSON. A chain name the provider does not know throws `NoSuchModelError`; a chain whose
 *   options are invalid rejects its calls with the `RouterConfigError`.
 * - `providerMetadata["effect-llm-router"]` of a result (and of the stream's `finish`) holds `{ model, provider,
 *   trail }`, the trail as JSON.
 *
 * @since 0.3.0
 */
import type { LanguageModelV3, ProviderV3 } from "@ai-sdk/provider"
import type * as HttpClient from "@effect/platform/HttpClient"
import type * as Layer from "effect/Layer"
import type * as Model from "../Model.js"
import type * as Router from "../Router.js"
import type * as RouterError from "../RouterError.js"
import * as internal from "./internal/provider.js"

/**
 * What a provider is built from.
 *
 * @since 0.3.0
 * @category models
 */
export interface Options {
  /** The chains a model id can name: a router's options, or just its priority list (models and groups). */
  readonly chains: Readonly<Record<string, Router.Options | ReadonlyArray<Model.Entry>>>
  /**
   * The HTTP client of the routers: `RouterHttpClient.layer` by default (`node:http` on Node, `fetch` on any other
   * runtime); or any other layer, such as `NodeRouterHttpClient.layerUndici` from `effect-llm-router/node` or the
   * platform's `FetchHttpClient.layer`.
   */
  readonly httpClient?: Layer.Layer<HttpClient.HttpClient> | undefined
  /** The provider name the SDK reports (`effect-llm-router` by default). */
  readonly name?: string | undefined
}

/**
 * An AI SDK provider whose models are the configured chains.
 *
 * @since 0.3.0
 * @category models
 */
export interface Provider extends ProviderV3 {
  /** The chain as a language model; throws `NoSuchModelError` for a chain the provider does not know. */
  (chain: string): LanguageModelV3
  languageModel(chain: string): LanguageModelV3
  /** Stops the provider's runtime and releases its HTTP client. */
  readonly dispose: () => Promise<void>
}

/**
 * Builds a provider.
 *
 * @example
 * ```ts
 * import { Redacted } from "effect"
 * import { generateText, streamText } from "ai"
 * import { Model, OpenAiCompatible } from "effect-llm-router"
 * import { AiSdk } from "effect-llm-router/ai-sdk"
 *
 * const openai = OpenAiCompatible.endpoint({
 *   baseUrl: "https://api.openai.com/v1",
 *   apiKey: Redacted.make(process.env.OPENAI_API_KEY ?? "")
 * })
 *
 * const router = AiSdk.make({
 *   chains: {
 *     fast: {
 *       models: [Model.make({ name: "gpt-4o-mini", endpoint: openai }), Model.make({ name: "gpt-4o", endpoint: openai })],
 *       timeout: { firstToken: "10 seconds", deadline: "1 minute" }
 *     }
 *   }
 * })
 *
 * export async function main() {
 *   // maxRetries: 0: the router already retried and fell back.
 *   const { text, providerMetadata } = await generateText({ model: router("fast"), prompt: "Hello", maxRetries: 0 })
 *   console.log(text, providerMetadata?.["effect-llm-router"]?.model)
 *
 *   const result = streamText({ model: router("fast"), prompt: "Tell me a story", maxRetries: 0 })
 *   for await (const delta of result.textStream) process.stdout.write(delta)
 *
 *   await router.dispose()
 * }
 * ```
 *
 * @since 0.3.0
 * @category constructors
 */
export const make: (options: Options) => Provider = internal.make

/**
 * The router's typed error (with its trail) behind an error the SDK threw or streamed: the `cause` of an
 * `APICallError`, also through the SDK's `RetryError` and other wrappers; `undefined` when there is none.
 *
 * @example
 * ```ts
 * import { generateText, type LanguageModel } from "ai"
 * import { Attempt } from "effect-llm-router"
 * import { AiSdk } from "effect-llm-router/ai-sdk"
 *
 * export async function answer(model: LanguageModel) {
 *   try {
 *     return (await generateText({ model, prompt: "Hello", maxRetries: 0 })).text
 *   } catch (error) {
 *     const ours = AiSdk.routerError(error)
 *     if (ours?._tag === "RateLimited") return `busy, retry in ${ours.retryAfterMillis ?? 0} ms`
 *     if (ours !== undefined && "trail" in ours) console.error(Attempt.formatTimeline(ours.trail ?? []))
 *     throw error
 *   }
 * }
 * ```
 *
 * @since 0.3.0
 * @category errors
 */
export const routerError: (error: unknown) => RouterError.AnyError | undefined = internal.routerError
