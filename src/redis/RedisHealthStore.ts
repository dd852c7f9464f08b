/**
 * The health table (`Health.HealthStore`) on Redis, so that N processes routing to the same deployments share one
 * circuit breaker per deployment: once one process trips a deployment, the others skip it too.
 *
 * Each transition is one Lua script, applied atomically to a hash per deployment (and a list of its recent outcomes,
 * the failure-rate window), with the same rules as the in-memory store and with the router's own clock (`now` and the
 * policy travel as arguments). Keys are `prefix + "d:" | "w:" + deployment id` and `prefix + "ids"`; each expires
 * `expiry` after its last write, or later while its cooldown, a `Retry-After`, the window or a probe's lease still runs.
 * Needs a standalone Redis (or one behind Sentinel), not Redis Cluster.
 *
 * **Fail open.** Redis is never on the critical path of a call: each command is bounded by `commandTimeout` (50 ms by
 * default, measured in real time), a created client has no offline queue and no per-command retries, and reconnects
 * in the background. On an error or a timeout the operation is applied to this process's own in-memory table instead,
 * one warning is logged, and for `recheckInterval` every operation goes there directly; after that one operation tries
 * Redis again, and once Redis answers, one info line is logged and operations go to Redis again. What the process
 * recorded on its own meanwhile is dropped (Redis's table, or a fresh one if Redis lost it, takes over). A Redis
 * failure never fails a call.
 *
 * Cost: one round trip per operation, two per attempt (admit, report). Measured 2026-11-30 on loopback (redis-server
 * 7.0, 2 cores, load ~4): 125–155 µs per attempt sequentially, 77 µs per attempt at 32 concurrent calls, against 5 µs
 * for the in-memory store.
 *
 * @since 0.2.0
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type { Redis, RedisOptions } from "ioredis"
import * as Health from "../Health.js"
import * as internal from "./internal/redisHealth.js"

/**
 * Where and how to keep the table (all optional; the defaults are in brackets).
 *
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /** A client to use; the caller keeps it and closes it. Without one the store creates its own and closes it. */
  readonly client?: Redis | undefined
  /** The server of the created client, e.g. `redis://127.0.0.1:6379/0` [ioredis's default, `localhost:6379`]. */
  readonly url?: string | undefined
  /**
   * More settings of the created client. The store sets `enableOfflineQueue: false`, `maxRetriesPerRequest: 0`,
   * `lazyConnect: true` and a `commandTimeout`; these override them.
   */
  readonly redisOptions?: RedisOptions | undefined
  /** The prefix of every key [`"effect-llm-router:health:"`]. */
  readonly prefix?: string | undefined
  /** The longest a routed call waits for Redis, per operation, before going on local state [50 millis]. */
  readonly commandTimeout?: Duration.DurationInput | undefined
  /** How long a deployment's keys outlive their last write, at least [1 hour]. */
  readonly expiry?: Duration.DurationInput | undefined
  /** After Redis failed, how long operations go straight to local state before one tries Redis again [1 second]. */
  readonly recheckInterval?: Duration.DurationInput | undefined
}

/**
 * The default key prefix.
 *
 * @since 0.2.0
 * @category constants
 */
export const defaultPrefix: string = internal.defaultPrefix

/**
 * A store on Redis. Scoped: a client it creates is closed with the scope. Waits (at most a second) for the client to
 * connect, or to fail a first time: it builds even if Redis is down, and then starts on local state.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make: (options?: Options) => Effect.Effect<Health.Store, never, Scope.Scope> = (options = {}) =>
  internal.make(options)

/**
 * The health table on Redis for every router built with this layer in context.
 *
 * @example
 * ```ts
 * import { FetchHttpClient } from "@effect/platform"
 * import { Layer, Redacted } from "effect"
 * import { Model, OpenAiCompatible, Router } from "effect-llm-router"
 * import { RedisHealthStore } from "effect-llm-router/redis"
 *
 * const openai = OpenAiCompatible.endpoint({ baseUrl: "https://api.openai.com/v1", apiKey: Redacted.make("sk-...") })
 * export const RouterLive = Router.layer({
 *   models: [Model.make({ name: "gpt-4o", endpoint: openai }), Model.make({ name: "gpt-4o-mini", endpoint: openai })],
 *   health: { consecutiveFailures: 5, cooldown: "10 seconds" }
 * }).pipe(
 *   Layer.provide(RedisHealthStore.layer({ url: "redis://127.0.0.1:6379", commandTimeout: "50 millis" })),
 *   Layer.provide(FetchHttpClient.layer)
 * )
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (options?: Options): Layer.Layer<Health.HealthStore> =>
  Layer.scoped(Health.HealthStore, make(options))

/**
 * {@link layer} with the server and the key prefix read from `Config` (e.g. `Config.string("REDIS_URL")`).
 *
 * @since 0.2.0
 * @category layers
 */
export const layerConfig = (config: {
  readonly url: Config.Config<string>
  readonly prefix?: Config.Config<string> | undefined
}): Layer.Layer<Health.HealthStore, ConfigError.ConfigError> =>
  Layer.unwrapEffect(
    Effect.map(
      Config.all({ url: config.url, prefix: config.prefix ?? Config.succeed(internal.defaultPrefix) }),
      (options) => layer(options)
    )
  )
