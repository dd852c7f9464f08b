/**
 * Deployment health: the circuit breaker's transitions, and the in-memory store that keeps them. The transitions are
 * plain functions over one deployment's record, so a store on another medium (Redis) applies the same rules.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Health from "../Health.js"
import type { Model } from "../Model.js"
import * as RouterError from "../RouterError.js"
import * as costs from "./cost.js"
import { formatMillis } from "./format.js"
import * as limits from "./limits.js"

/**
 * The breaker's options, checked and in milliseconds.
 *
 * @internal
 */
export interface Policy {
  readonly consecutiveFailures: number
  readonly rateThreshold: number
  readonly rateWindowMillis: number
  readonly rateMinRequests: number
  readonly cooldownMillis: number
  readonly cooldownFactor: number
  readonly maxCooldownMillis: number
  readonly fatalCooldownMillis: number
  readonly probeIntervalMillis: number
  readonly maxWaitMillis: number
}

/** @internal */
export const defaults = {
  consecutiveFailures: 5,
  failureRate: { threshold: 0.5, window: Duration.seconds(60), minRequests: 10 },
  cooldown: Duration.seconds(5),
  cooldownFactor: 2,
  maxCooldown: Duration.minutes(5),
  fatalCooldown: Duration.minutes(10),
  maxWait: Duration.seconds(30)
} as const

const millis = (
  value: Duration.DurationInput | undefined,
  fallback: Duration.Duration,
  option: string,
  positive: boolean
): number | RouterError.RouterConfigError => {
  const decoded = value === undefined ? Option.some(fallback) : Duration.decodeUnknown(value)
  const ms = Option.isSome(decoded) ? Duration.toMillis(decoded.value) : NaN
  if (!(positive ? ms > 0 : ms >= 0) || !Number.isFinite(ms)) {
    return new RouterError.RouterConfigError({
      option,
      reason: `must be a ${positive ? "positive" : "non-negative"} finite duration (got ${String(value)})`
    })
  }
  return ms
}

/**
 * Checks the health options; a bad one is a `RouterConfigError` naming it.
 *
 * @internal
 */
export const resolvePolicy = (options: Health.Options): Policy | RouterError.RouterConfigError => {
  const fail = (option: string, reason: string) => new RouterError.RouterConfigError({ option, reason })
  const consecutiveFailures = options.consecutiveFailures ?? defaults.consecutiveFailures
  if (!Number.isInteger(consecutiveFailures) || consecutiveFailures < 1) {
    return fail("health.consecutiveFailures", `must be an integer ≥ 1 (got ${consecutiveFailures})`)
  }
  const rate = options.failureRate === false ? undefined : options.failureRate ?? defaults.failureRate
  const rateThreshold = rate?.threshold ?? 1
  if (rate !== undefined && !(rateThreshold > 0 && rateThreshold <= 1)) {
    return fail("health.failureRate.threshold", `must be in (0, 1] (got ${rateThreshold})`)
  }
  const rateMinRequests = rate?.minRequests ?? 1
  if (!Number.isInteger(rateMinRequests) || rateMinRequests < 1) {
    return fail("health.failureRate.minRequests", `must be an integer ≥ 1 (got ${rateMinRequests})`)
  }
  const rateWindowMillis = rate === undefined
    ? 0
    : millis(rate.window, defaults.failureRate.window, "health.failureRate.window", true)
  if (typeof rateWindowMillis !== "number") return rateWindowMillis
  const cooldownMillis = millis(options.cooldown, defaults.cooldown, "health.cooldown", true)
  if (typeof cooldownMillis !== "number") return cooldownMillis
  const cooldownFactor = options.cooldownFactor ?? defaults.cooldownFactor
  if (!(Number.isFinite(cooldownFactor) && cooldownFactor >= 1)) {
    return fail("health.cooldownFactor", `must be a number ≥ 1 (got ${cooldownFactor})`)
  }
  const maxCooldownMillis = millis(options.maxCooldown, defaults.maxCooldown, "health.maxCooldown", true)
  if (typeof maxCooldownMillis !== "number") return maxCooldownMillis
  if (maxCooldownMillis < cooldownMillis) {
    return fail("health.maxCooldown", "must not be below health.cooldown")
  }
  const fatalCooldownMillis = millis(options.fatalCooldown, defaults.fatalCooldown, "health.fatalCooldown", true)
  if (typeof fatalCooldownMillis !== "number") return fatalCooldownMillis
  const maxWaitMillis = options.maxWait === false
    ? 0
    : millis(options.maxWait, defaults.maxWait, "health.maxWait", false)
  if (typeof maxWaitMillis !== "number") return maxWaitMillis
  return {
    consecutiveFailures,
    rateThreshold,
    rateWindowMillis,
    rateMinRequests,
    cooldownMillis,
    cooldownFactor,
    maxCooldownMillis,
    fatalCooldownMillis,
    // A caller that finds a probe in flight looks again this much later (when every deployment is skipped).
    probeIntervalMillis: Math.min(250, cooldownMillis),
    maxWaitMillis
  }
}

// FNV-1a, 32 bits: tells keys apart in a deployment's id without putting the key, or anything that recovers it, there.
const fingerprint = (text: string): string => {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193)
  }
  return (hash >>> 0).toString(16).padStart(8, "0")
}

const ids = new WeakMap<Model, string>()

/**
 * A deployment's id: provider, model name, base URL, and a fingerprint of the key.
 *
 * @internal
 */
export const deploymentId = (model: Model): string => {
  let id = ids.get(model)
  if (id === undefined) {
    const [url, hidden] = shownUrl(model.endpoint.baseUrl)
    const parts = model.endpoint.secrets.map((s) => Redacted.value(s))
    if (hidden !== "") parts.push(hidden)
    const key = parts.join("\u0000")
    id = `${model.provider}/${model.name}@${url}${key.length === 0 ? "" : `#${fingerprint(key)}`}`
    ids.set(model, id)
  }
  return id
}

// A base URL as an id may show it: without credentials, query or fragment (a key is sometimes put there), which only
// count in the fingerprint.
const shownUrl = (raw: string): readonly [string, string] => {
  try {
    const url = new URL(raw)
    if (url.username === "" && url.password === "" && url.search === "" && url.hash === "") return [raw, ""]
    const hidden = `${url.username}:${url.password}${url.search}${url.hash}`
    url.username = ""
    url.password = ""
    url.search = ""
    url.hash = ""
    return [url.toString(), hidden]
  } catch {
    return [raw, ""]
  }
}

/**
 * One deployment's record.
 *
 * @internal
 */
export interface Record {
  readonly model: string
  readonly provider: string
  state: Health.State
  /** Transient failures since the last success. */
  consecutive: number
  /** Trips since the deployment last closed: each one's cooldown is longer. */
  trips: number
  /** Open: until when. */
  openUntil: number
  /** A server's Retry-After: no request before this instant, whatever the state. */
  notBefore: number
  probing: boolean
  /** When the probe was taken: a probe never reported (its process died) is given up after `probeLeaseMillis`. */
  probeSince: number
  inFlight: number
  /** Outcomes in the failure-rate window. */
  window: OutcomeWindow
  reason: string | undefined
  /** The policy it was last admitted under (the snapshot prunes the window with it). */
  policy?: Policy | undefined
  /** The limits it was last admitted under. */
  limits: Health.Limits
  /** The per-minute buckets (`limits.ts`): level in units, and when it was read; undefined: never used (full). */
  requests: number | undefined
  requestsAt: number
  tokens: number | undefined
  tokensAt: number
}

const newRecord = (model: Model): Record => ({
  model: model.name,
  provider: model.provider,
  state: "closed",
  consecutive: 0,
  trips: 0,
  openUntil: 0,
  notBefore: 0,
  probing: false,
  probeSince: 0,
  inFlight: 0,
  window: new OutcomeWindow(),
  reason: undefined,
  policy: undefined,
  limits: model.limits ?? noLimits,
  requests: undefined,
  requestsAt: 0,
  tokens: undefined,
  tokensAt: 0
})

const noLimits: Health.Limits = {}

/**
 * How long a probe may stay unreported before another call may probe (the probing call or its process died).
 *
 * @internal
 */
export const probeLeaseMillis = 120_000

/**
 * How long a request's slot under `maxConcurrent` is held in a shared store when its end is never reported (its process
 * died): longer than any request or stream should last.
 *
 * @internal
 */
export const slotLeaseMillis = 600_000

// The failure-rate window keeps at most this many outcomes: enough for any threshold, bounded under any load.
const maxWindow = 1024

/**
 * The outcomes in the failure-rate window, oldest first, as a ring: recording one (on every attempt of a healthy
 * deployment) allocates nothing and moves nothing, and the failures are counted as they come and go.
 *
 * @internal
 */
export class OutcomeWindow {
  private at: Float64Array | undefined = undefined
  private failed: Uint8Array | undefined = undefined
  private head = 0
  size = 0
  failures = 0

  /** A window holding these outcomes, oldest first (the Redis store's snapshot). */
  static from(entries: Iterable<{ readonly at: number; readonly failed: boolean }>): OutcomeWindow {
    const window = new OutcomeWindow()
    for (const entry of entries) window.push(entry.at, entry.failed)
    return window
  }

  push(at: number, failed: boolean): void {
    if (this.at === undefined || this.failed === undefined) {
      this.at = new Float64Array(maxWindow)
      this.failed = new Uint8Array(maxWindow)
    }
    if (this.size === maxWindow) this.shift()
    const i = (this.head + this.size) % maxWindow
    this.at[i] = at
    this.failed[i] = failed ? 1 : 0
    this.size++
    if (failed) this.failures++
  }

  /** Drops the outcomes at or before `cutoff`. */
  prune(cutoff: number): void {
    while (this.size > 0 && this.at![this.head]! <= cutoff) this.shift()
  }

  clear(): void {
    this.head = 0
    this.size = 0
    this.failures = 0
  }

  private shift(): void {
    this.failures -= this.failed![this.head]!
    this.head = (this.head + 1) % maxWindow
    this.size--
  }
}

const prune = (record: Record, policy: Policy, now: number): void => record.window.prune(now - policy.rateWindowMillis)

/**
 * Whether the deployment's limits leave room for a request of `tokens` now: undefined when they do, else the skip
 * naming the limit that frees last.
 *
 * @internal
 */
export const limited = (
  record: Record,
  policy: Policy,
  now: number,
  tokens: number
): Extract<Health.Admission, { readonly _tag: "Skipped" }> | undefined => {
  const { maxConcurrent, requestsPerMinute, tokensPerMinute } = record.limits
  let skip: Extract<Health.Admission, { readonly _tag: "Skipped" }> | undefined
  if (maxConcurrent !== undefined && record.inFlight >= maxConcurrent) {
    // Nothing says when a request in flight ends: look again shortly.
    skip = {
      _tag: "Skipped",
      reason: `at its concurrency limit (${maxConcurrent} in flight)`,
      until: now + policy.probeIntervalMillis,
      limit: "concurrency"
    }
  }
  if (requestsPerMinute !== undefined) {
    const current = limits.level(requestsPerMinute, record.requests, record.requestsAt, now)
    if (current < limits.scale) {
      const until = limits.roomAt(requestsPerMinute, current, limits.scale, now)
      if (skip === undefined || skip.until! < until) {
        skip = {
          _tag: "Skipped",
          reason: `at its limit of ${requestsPerMinute} requests per minute`,
          until,
          limit: "requests"
        }
      }
    }
  }
  if (tokensPerMinute !== undefined) {
    const current = limits.level(tokensPerMinute, record.tokens, record.tokensAt, now)
    const need = limits.needed(tokensPerMinute, tokens)
    if (current < need) {
      const until = limits.roomAt(tokensPerMinute, current, need, now)
      if (skip === undefined || skip.until! < until) {
        skip = {
          _tag: "Skipped",
          reason: `at its limit of ${tokensPerMinute} tokens per minute (this request: about ${tokens})`,
          until,
          limit: "tokens"
        }
      }
    }
  }
  return skip
}

/** Takes a request's place under the limits. */
const take = (record: Record, now: number, tokens: number): void => {
  record.inFlight++
  const { requestsPerMinute, tokensPerMinute } = record.limits
  if (requestsPerMinute !== undefined) {
    record.requests = limits.level(requestsPerMinute, record.requests, record.requestsAt, now) - limits.scale
    record.requestsAt = now
  }
  if (tokensPerMinute !== undefined) {
    record.tokens = limits.level(tokensPerMinute, record.tokens, record.tokensAt, now) - tokens * limits.scale
    record.tokensAt = now
  }
}

/**
 * A deployment skipped because a server's Retry-After still runs.
 *
 * @internal
 */
export const waitSkip = (until: number): Health.Admission => ({
  _tag: "Skipped",
  reason: "the server asked to wait (Retry-After)",
  until
})

/**
 * A deployment skipped because its breaker is open (`reason`: why it opened).
 *
 * @internal
 */
export const openSkip = (reason: string | undefined, until: number): Health.Admission => ({
  _tag: "Skipped",
  reason: `circuit open: ${reason ?? "failures"}`,
  until
})

/**
 * Does the deployment declare a limit (which a shared store must count for every request)?
 *
 * @internal
 */
export const hasLimits = (model: Model): boolean => {
  const l = model.limits
  return l !== undefined &&
    (l.maxConcurrent !== undefined || l.requestsPerMinute !== undefined || l.tokensPerMinute !== undefined)
}

/**
 * May a request go to this deployment now? Takes the half-open probe when it is the one to probe, and the request's
 * place under the deployment's limits.
 *
 * @internal
 */
export const admit = (record: Record, policy: Policy, now: number, tokens: number): Health.Admission => {
  if (now < record.notBefore) return waitSkip(record.notBefore)
  if (record.state === "open") {
    if (now < record.openUntil) return openSkip(record.reason, record.openUntil)
    record.state = "half-open"
  }
  const probe = record.state === "half-open"
  if (probe && record.probing && now - record.probeSince < probeLeaseMillis) {
    return {
      _tag: "Skipped",
      reason: "half-open: another call is probing it",
      until: now + policy.probeIntervalMillis
    }
  }
  const skip = limited(record, policy, now, tokens)
  if (skip !== undefined) return skip
  if (probe) {
    record.probing = true
    record.probeSince = now
  }
  take(record, now, tokens)
  return probe ? admittedProbe : admitted
}

const admittedProbe: Health.Admission = { _tag: "Admitted", probe: true }
const admitted: Health.Admission = { _tag: "Admitted", probe: false }

const trip = (record: Record, policy: Policy, now: number, cooldownMillis: number, reason: string): void => {
  record.state = "open"
  record.trips++
  record.consecutive = 0
  record.window.clear()
  record.reason = reason
  // A new trip extends the reopening instant, never shortens it.
  record.openUntil = Math.max(record.openUntil, now + cooldownMillis)
}

/** @internal */
export type Permit = Health.Permit

/**
 * Ends an admission: frees its slot, and corrects its token reservation to what the response reported.
 *
 * @internal
 */
export const settle = (record: Record, now: number, permit: Permit): void => {
  record.inFlight = Math.max(0, record.inFlight - 1)
  const tokensPerMinute = record.limits.tokensPerMinute
  if (tokensPerMinute !== undefined && permit.usedTokens !== undefined && record.tokens !== undefined) {
    record.tokens = Math.min(
      tokensPerMinute * limits.scale,
      limits.level(tokensPerMinute, record.tokens, record.tokensAt, now) +
        (permit.reservedTokens - permit.usedTokens) * limits.scale
    )
    record.tokensAt = now
  }
}

/**
 * Applies what a request ended with. Returns the state after it.
 *
 * @internal
 */
export const report = (
  record: Record,
  policy: Policy,
  now: number,
  outcome: Health.Report,
  permit: Permit
): Health.State => {
  if (permit.ends) settle(record, now, permit)
  if (permit.probe) record.probing = false
  switch (outcome._tag) {
    case "Released":
      return record.state
    case "Success": {
      if (record.state === "half-open" && permit.probe) {
        record.state = "closed"
        record.trips = 0
        record.reason = undefined
      }
      record.consecutive = 0
      if (policy.rateWindowMillis > 0) {
        prune(record, policy, now)
        record.window.push(now, false)
      }
      return record.state
    }
    case "Failure": {
      if (outcome.retryAfterMillis !== undefined) {
        record.notBefore = Math.max(record.notBefore, now + outcome.retryAfterMillis)
      }
      const growth = Math.pow(policy.cooldownFactor, record.trips)
      const cooldown = Math.min(policy.maxCooldownMillis, policy.cooldownMillis * growth)
      if (outcome.kind === "fatal") {
        trip(record, policy, now, Math.max(policy.fatalCooldownMillis, cooldown), outcome.tag)
        return record.state
      }
      if (record.state !== "closed") {
        // Only the probe decides a half-open deployment: its failure opens it again, longer. A request admitted before
        // the trip that ends badly now adds nothing.
        if (permit.probe) trip(record, policy, now, cooldown, `probe failed: ${outcome.tag}`)
        return record.state
      }
      record.consecutive++
      if (record.consecutive >= policy.consecutiveFailures) {
        trip(
          record,
          policy,
          now,
          cooldown,
          `${record.consecutive} failure${record.consecutive === 1 ? "" : "s"} in a row, last ${outcome.tag}`
        )
        return record.state
      }
      if (policy.rateWindowMillis > 0) {
        prune(record, policy, now)
        record.window.push(now, true)
        const total = record.window.size
        if (total >= policy.rateMinRequests) {
          const failed = record.window.failures
          if (failed / total >= policy.rateThreshold) {
            trip(
              record,
              policy,
              now,
              cooldown,
              `${Math.round((failed / total) * 100)}% of ${total} requests failed in ${
                formatMillis(policy.rateWindowMillis)
              }`
            )
          }
        }
      }
      return record.state
    }
  }
}

/**
 * A deployment's record as the public snapshot shows it.
 *
 * @internal
 */
export const toSnapshot = (id: string, record: Record, policy: Policy | undefined, now: number): Health.Deployment => {
  if (policy !== undefined && policy.rateWindowMillis > 0) prune(record, policy, now)
  const state = record.state === "open" && now >= record.openUntil ? "half-open" : record.state
  const reopensAt = Math.max(state === "open" ? record.openUntil : 0, record.notBefore)
  return {
    id,
    model: record.model,
    provider: record.provider,
    state,
    consecutiveFailures: record.consecutive,
    recentRequests: record.window.size,
    recentFailures: record.window.failures,
    trips: record.trips,
    reopensAt: reopensAt > now ? reopensAt : undefined,
    inFlight: record.inFlight,
    probing: record.probing,
    reason: record.reason,
    limits: record.limits,
    remainingRequests: remaining(record.limits.requestsPerMinute, record.requests, record.requestsAt, now),
    remainingTokens: remaining(record.limits.tokensPerMinute, record.tokens, record.tokensAt, now)
  }
}

const remaining = (limit: number | undefined, stored: number | undefined, at: number, now: number) =>
  limit === undefined ? undefined : Math.floor(limits.level(limit, stored, at, now) / limits.scale)

/**
 * A store's admission and report as plain functions, for a store that keeps its records in this process: the router
 * calls them in place of `admit` and `report`, with no effect to build and run around either.
 *
 * @internal
 */
export interface SyncStore {
  readonly admit: (model: Model, policy: Policy, now: number, tokens: number) => Health.Admission
  readonly report: (
    model: Model,
    policy: Policy,
    now: number,
    outcome: Health.Report,
    permit: Permit
  ) => Health.Transition
}

// Keyed by the store object itself: a store built from ours (`{ ...store, admit }`) is another object, whose own
// `admit` and `report` are used.
const syncStores = new WeakMap<Health.Store, SyncStore>()

/**
 * The store's synchronous admission and report, when it is an in-memory store as `makeMemory` made it.
 *
 * @internal
 */
export const syncOf = (store: Health.Store): SyncStore | undefined => syncStores.get(store)

/**
 * The in-memory store: one record per deployment, in this process.
 *
 * @internal
 */
export const makeMemory = (): Health.Store => {
  const records = new Map<string, Record>()
  const policies = new Map<string, Policy>()
  // On the path of every attempt: a model's record is found by identity first (no id to build, no string hashing).
  const byModel = new WeakMap<Model, Record>()
  const recordOf = (model: Model): Record => {
    let record = byModel.get(model)
    if (record !== undefined) return record
    const id = deploymentId(model)
    record = records.get(id)
    if (record === undefined) {
      record = newRecord(model)
      records.set(id, record)
    }
    byModel.set(model, record)
    return record
  }
  const sync: SyncStore = {
    admit: (model, policy, now, tokens) => {
      const record = recordOf(model)
      if (record.policy !== policy) {
        record.policy = policy
        policies.set(deploymentId(model), policy)
      }
      record.limits = model.limits ?? noLimits
      return admit(record, policy, now, tokens)
    },
    report: (model, policy, now, outcome, permit) => {
      const record = recordOf(model)
      const from = record.state
      const to = report(record, policy, now, outcome, permit)
      return from === to && to !== "open" ? unchanged[to] : {
        from,
        to,
        reason: to === "open" ? record.reason : undefined,
        reopensAt: to === "open" ? record.openUntil : undefined
      }
    }
  }
  const store: Health.Store = {
    admit: (model, policy, now, tokens) => Effect.sync(() => sync.admit(model, policy, now, tokens)),
    report: (model, policy, now, outcome, permit) =>
      Effect.sync(() => sync.report(model, policy, now, outcome, permit)),
    snapshot: (now) =>
      Effect.sync(() => [...records].map(([id, record]) => toSnapshot(id, record, policies.get(id), now))),
    budgets: costs.makeMemory()
  }
  syncStores.set(store, sync)
  return store
}

/**
 * A report that changed nothing (the usual case) returns one of these rather than a new object.
 *
 * @internal
 */
export const unchanged: { readonly [S in Health.State]: Health.Transition } = {
  closed: { from: "closed", to: "closed", reason: undefined, reopensAt: undefined },
  "half-open": { from: "half-open", to: "half-open", reason: undefined, reopensAt: undefined },
  open: { from: "open", to: "open", reason: undefined, reopensAt: undefined }
}
