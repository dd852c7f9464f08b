/**
 * Node-only pieces of effect-llm-router.
 *
 * @since 0.1.0
 */

/**
 * Node HTTP client layers (undici).
 *
 * @since 0.1.0
 */
export * as NodeRouterHttpClient from "./NodeRouterHttpClient.js"
