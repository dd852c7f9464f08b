/**
 * The health table (`Health.HealthStore`) on Redis, so that N processes routing to the same deployments share one
 * circuit breaker per deployment: once one process trips a deployment, the others skip it too.
 *
 * Each transition is one Lua script, applied atomically to a hash per deployment (and a list of its recent outcomes,
 * the failure-rate window), with the same rules as the in-memory store and with the router's own clock (`now` and the
 * policy travel as arguments); a script that changes a breaker's state or its run of failures publishes the record on
 * `prefix + "events"`. Keys are `prefix + "d:" | "w:" | "l:" + deployment id` and `prefix + "ids"`; each expires
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
 * **Cost.** With admission `"local"` (the default), none on the healthy path: a deployment without limits whose
 * breaker is closed is admitted on this process's copy of its record, kept current by the store's messages (pub/sub),
 * and its successes are written together once a `syncInterval`. Measured 2026-11-30 on loopback (redis-server 7.0.15, 2
 * cores, load ~1, `bench/micro/redis-store.mjs`): −0.02 ms per call against the in-memory store (0.0017 scripts per
 * call), against +0.86 ms with admission `"redis"` (two scripts per call, each a round trip).
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
import type * as RouterError from "../RouterError.js"
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
  /**
   * Where an admission to a deployment without `limits` is decided [`"local"`].
   *
   * - `"local"`: on this process's copy of the deployment's record, when it says closed (admitted), open or waiting
   *   out a `Retry-After` (skipped). The copy is kept current by the store's messages (Redis pub/sub on a second
   *   connection: every change to a breaker's state or to its run of failures is published at once), and read again
   *   from Redis at least every `syncInterval`. Such a request's success, while the breaker is closed with no failure
   *   counted, is written to Redis with the next failure or snapshot, or within `syncInterval`. Everything else (the
   *   half-open probe, every failure, every deployment with limits) goes to Redis at once, as with `"redis"`. A call
   *   costs no round trip to Redis on the healthy path; another process hears of a trip within one message's delivery
   *   (a request admitted meanwhile still goes, as one admitted just before the trip would).
   * - `"redis"`: every admission and every report is a script on Redis (two per attempt).
   *
   * With either, a call waits for a report only when it can change the breaker (a failure, the probe's verdict); the
   * others are sent without waiting, ahead of the connection's next command.
   */
  readonly admission?: "local" | "redis" | undefined
  /** With admission `"local"`: how often successes are written, and how old a copy may get [1 second]. */
  readonly syncInterval?: Duration.DurationInput | undefined
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
 * connect, or to fail a first time, and then (at most a second more) to listen to the store's channel: it builds even
 * if Redis is down, and then starts on local state. Fails with `RouterConfigError` naming a bad option.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make: (
  options?: Options
) => Effect.Effect<Health.Store, RouterError.RouterConfigError, Scope.Scope> = (options = {}) => internal.make(options)

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
export const layer = (options?: Options): Layer.Layer<Health.HealthStore, RouterError.RouterConfigError> =>
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
}): Layer.Layer<Health.HealthStore, ConfigError.ConfigError | RouterError.RouterConfigError> =>
  Layer.unwrapEffect(
    Effect.map(
      Config.all({ url: config.url, prefix: config.prefix ?? Config.succeed(internal.defaultPrefix) }),
      (options) => layer(options)
    )
  )
