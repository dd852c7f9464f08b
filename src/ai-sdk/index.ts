/**
 * The router as a Vercel AI SDK provider. Needs `@ai-sdk/provider` 3 (the specification `ai` 6 uses).
 *
 * @since 0.3.0
 */

/**
 * An AI SDK provider whose models are chains of the router, and the way back to the router's typed errors.
 *
 * @since 0.3.0
 */
export * as AiSdk from "./AiSdk.js"
