/**
 * effect-llm-router: one routed LLM call over an ordered list of models, with typed errors, retries, fallback and
 * safe streaming, for Effect applications.
 *
 * @since 0.1.0
 */

/**
 * The Anthropic Messages wire protocol.
 *
 * @since 0.3.0
 */
export * as Anthropic from "./Anthropic.js"

/**
 * The trail: one record per attempt of a routed call.
 *
 * @since 0.1.0
 */
export * as Attempt from "./Attempt.js"

/**
 * The values of a routed stream.
 *
 * @since 0.1.0
 */
export * as ChatChunk from "./ChatChunk.js"

/**
 * The chat request, in OpenAI Chat Completions vocabulary.
 *
 * @since 0.1.0
 */
export * as ChatRequest from "./ChatRequest.js"

/**
 * The routed call's answer.
 *
 * @since 0.1.0
 */
export * as ChatResponse from "./ChatResponse.js"

/**
 * LangChain's GPTRouter surface: `completionWithRetry` and endpoints from the environment.
 *
 * @since 0.2.0
 */
export * as Compat from "./Compat.js"

/**
 * An HTTP client layer on `globalThis.fetch`, faster than the platform's `FetchHttpClient.layer`.
 *
 * @since 0.3.0
 */
export * as FetchRouterHttpClient from "./FetchRouterHttpClient.js"

/**
 * The Google Gemini wire protocol (`generateContent`, `streamGenerateContent`).
 *
 * @since 0.3.0
 */
export * as Gemini from "./Gemini.js"

/**
 * The GPTRouter wire protocol.
 *
 * @since 0.1.0
 */
export * as GptRouter from "./GptRouter.js"

/**
 * Deployment health across calls: a circuit breaker per deployment, and the store that keeps it.
 *
 * @since 0.2.0
 */
export * as Health from "./Health.js"

/**
 * The entries of the priority list: a model (one deployment), or a group of deployments of one model.
 *
 * @since 0.1.0
 */
export * as Model from "./Model.js"

/**
 * The OpenAI Chat Completions wire protocol.
 *
 * @since 0.1.0
 */
export * as OpenAiCompatible from "./OpenAiCompatible.js"

/**
 * What a wire protocol implements.
 *
 * @since 0.1.0
 */
export * as Provider from "./Provider.js"

/**
 * Retry within one model.
 *
 * @since 0.1.0
 */
export * as RetryPolicy from "./RetryPolicy.js"

/**
 * The router service: `make`, `layer`, `generate`, `stream`.
 *
 * @since 0.1.0
 */
export * as Router from "./Router.js"

/**
 * How a group picks the deployment of each attempt.
 *
 * @since 0.3.0
 */
export * as Selection from "./Selection.js"

/**
 * Spans and metrics in the OpenTelemetry GenAI semantic conventions, and the router's own (names, metrics, options).
 *
 * @since 0.3.0
 */
export * as Telemetry from "./Telemetry.js"

/**
 * Typed errors, one per failure mode.
 *
 * @since 0.1.0
 */
export * as RouterError from "./RouterError.js"

/**
 * The router's default HTTP client: `node:http` on Node (taken from the runtime, no import), `fetch` elsewhere.
 *
 * @since 0.3.0
 */
export * as RouterHttpClient from "./RouterHttpClient.js"
