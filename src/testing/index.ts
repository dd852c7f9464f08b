/**
 * The test kit, runtime-agnostic part: the script vocabulary of the simulated upstream and a fake `HttpClient` that
 * plays the same scripts on the Effect clock, for `TestClock` tests. The loopback server is in
 * `effect-llm-router/testing/node`.
 *
 * @since 0.1.0
 */

/**
 * Scripted upstream behaviour, per model and per attempt.
 *
 * @since 0.1.0
 */
export * as UpstreamScript from "./UpstreamScript.js"

/**
 * An in-memory `HttpClient` that plays the same scripts on the Effect clock, so `TestClock` drives every latency.
 *
 * @since 0.1.0
 */
export * as FakeHttpClient from "./FakeHttpClient.js"
