/**
 * The router as an `@effect/ai` `LanguageModel`. Needs `@effect/ai` 0.37 or later (the Effect 3 line).
 *
 * @since 0.3.0
 */

/**
 * A `LanguageModel` backed by the router, and the way back from `AiError` to the router's typed errors.
 *
 * @since 0.3.0
 */
export * as EffectAi from "./EffectAi.js"
