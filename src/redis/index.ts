/**
 * The health table on Redis, shared by every process that routes to the same deployments. Needs `ioredis` 5.3 or later.
 *
 * @since 0.2.0
 */

/**
 * A `Health.HealthStore` on Redis that fails open to this process's memory.
 *
 * @since 0.2.0
 */
export * as RedisHealthStore from "./RedisHealthStore.js"
