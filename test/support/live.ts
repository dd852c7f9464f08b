/**
 * Helpers for live tests against a loopback server.
 */
import { FetchHttpClient } from "@effect/platform"
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { quietLogs } from "./logs.js"

/** The router logs a warning before each retry sleep; the tests assert on the trail instead. */
export const quiet = quietLogs

/** Runs a scoped test effect on the given HTTP client layer, with retry warnings silenced. */
export const runWith =
  (client: Layer.Layer<HttpClient.HttpClient>) =>
  <A, E>(effect: Effect.Effect<A, E, Scope.Scope | HttpClient.HttpClient>): Effect.Effect<A, E> =>
    quiet(Effect.provide(Effect.scoped(effect), client))

/** `runWith` on the platform's fetch client. */
export const run = runWith(FetchHttpClient.layer)

export const promise = <A>(f: () => Promise<A>) => Effect.promise(f)
