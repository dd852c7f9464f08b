/**
 * The health table on Redis, failing open to this process's memory.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { Redis } from "ioredis"
import type { RedisOptions } from "ioredis"
import { createHash, randomUUID } from "node:crypto"
import type * as Health from "../../Health.js"
import * as costs from "../../internal/cost.js"
import { formatMillis } from "../../internal/format.js"
import * as health from "../../internal/health.js"
import type { Model } from "../../Model.js"
import type { Options } from "../RedisHealthStore.js"
import * as scripts from "./scripts.js"

/** @internal */
export const defaultPrefix = "effect-llm-router:health:"

const toMillis = (value: Duration.DurationInput | undefined, fallback: number, name: string): number => {
  if (value === undefined) return fallback
  const ms = Duration.toMillis(value)
  if (!(ms > 0 && Number.isFinite(ms))) throw new RangeError(`RedisHealthStore: ${name} must be a positive duration`)
  return ms
}

interface Script {
  readonly text: string
  readonly sha: string
}
const script = (text: string): Script => ({ text, sha: createHash("sha1").update(text).digest("hex") })
const admitScript = script(scripts.admit)
const reportScript = script(scripts.report)
const snapshotScript = script(scripts.snapshot)
const chargeScript = script(scripts.charge)

const evalScript = (
  client: Redis,
  s: Script,
  keys: ReadonlyArray<string>,
  args: ReadonlyArray<string | number>
): Promise<unknown> =>
  client.evalsha(s.sha, keys.length, ...keys, ...args).catch((error: unknown) =>
    error instanceof Error && error.message.startsWith("NOSCRIPT")
      ? client.eval(s.text, keys.length, ...keys, ...args)
      : Promise.reject(error)
  )

const parseAdmission = (reply: unknown): Health.Admission => {
  const r = reply as Array<string>
  return r[0] === "A"
    ? { _tag: "Admitted", probe: r[1] === "1", lease: r[2]! }
    : {
      _tag: "Skipped",
      reason: r[1]!,
      until: Number(r[2]),
      ...(r[3] === undefined || r[3] === "" ? {} : { limit: r[3] as Health.Limit })
    }
}

const optionalNumber = (text: string | undefined): number | undefined => text === undefined ? undefined : Number(text)

const parseTransition = (reply: unknown): Health.Transition => {
  const [from, to, reason, openUntil] = reply as [Health.State, Health.State, string, string]
  return {
    from,
    to,
    reason: to === "open" && reason !== "" ? reason : undefined,
    reopensAt: to === "open" ? Number(openUntil) : undefined
  }
}

const parseSnapshot = (reply: unknown, now: number): ReadonlyArray<Health.Deployment> =>
  (reply as Array<[string, Array<string>, Array<string>, number]>).map(([id, flat, window, inFlight]) => {
    const f: Record<string, string> = {}
    for (let i = 0; i + 1 < flat.length; i += 2) f[flat[i]!] = flat[i + 1]!
    const limits: Health.Limits = {
      ...(f.lc === undefined ? {} : { maxConcurrent: Number(f.lc) }),
      ...(f.lr === undefined ? {} : { requestsPerMinute: Number(f.lr) }),
      ...(f.lt === undefined ? {} : { tokensPerMinute: Number(f.lt) })
    }
    const record: health.Record = {
      model: f.m ?? "",
      provider: f.p ?? "",
      state: (f.st ?? "closed") as Health.State,
      consecutive: Number(f.c ?? 0),
      trips: Number(f.t ?? 0),
      openUntil: Number(f.ou ?? 0),
      notBefore: Number(f.nb ?? 0),
      probing: f.pr === "1",
      probeSince: Number(f.ps ?? 0),
      inFlight: Number(inFlight),
      window: health.OutcomeWindow.from(
        window.map((entry) => ({ at: Number(entry.slice(0, entry.indexOf(":"))), failed: entry.endsWith(":1") }))
      ),
      reason: f.r,
      limits,
      requests: optionalNumber(f.rq),
      requestsAt: Number(f.rqa ?? 0),
      tokens: optionalNumber(f.tk),
      tokensAt: Number(f.tka ?? 0)
    }
    // The script pruned the window already.
    return health.toSnapshot(id, record, undefined, now)
  }).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))

// The failure-rate window in words (the trip reason's), once per policy rather than on every report.
const windowTexts = new WeakMap<health.Policy, string>()
const windowText = (policy: health.Policy): string => {
  let text = windowTexts.get(policy)
  if (text === undefined) {
    text = formatMillis(policy.rateWindowMillis)
    windowTexts.set(policy, text)
  }
  return text
}

const errorText = (cause: unknown): string => cause instanceof Error ? cause.message : String(cause)

const timedOut = Symbol("timedOut")
type Outcome<A> = { readonly ok: true; readonly value: A } | { readonly ok: false; readonly cause: unknown }

/**
 * Runs `promise()` with a bound in real time (never the Effect clock: a TestClock must not stall it). A result that comes
 * after the bound goes to `late`.
 */
const bounded = <A>(
  promise: () => Promise<A>,
  millis: number,
  late: ((value: A) => void) | undefined
): Effect.Effect<Outcome<A>> =>
  Effect.async<Outcome<A>>((resume) => {
    let settled = false
    const timer = setTimeout(() => {
      settled = true
      resume(Effect.succeed({ ok: false, cause: timedOut }))
    }, millis)
    let p: Promise<A>
    try {
      p = promise()
    } catch (cause) {
      p = Promise.reject(cause)
    }
    p.then(
      (value) => {
        if (settled) return late?.(value)
        settled = true
        clearTimeout(timer)
        resume(Effect.succeed({ ok: true, value }))
      },
      (cause: unknown) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        resume(Effect.succeed({ ok: false, cause }))
      }
    )
  })

const noop = () => {}

/**
 * Waits (in real time, at most `millis`) until the client is ready or its first attempt failed (a server that is down
 * does not hold up the layer: the first operation fails at once and goes on local state); starts a lazy client.
 */
const awaitReady = (client: Redis, millis: number): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    if (client.status === "ready") return resume(Effect.void)
    if (client.status === "wait") client.connect().catch(noop)
    let settled = false
    const done = () => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      client.removeListener("ready", done)
      client.removeListener("error", done)
      resume(Effect.void)
    }
    const timer = setTimeout(done, millis)
    client.once("ready", done)
    client.once("error", done)
    return Effect.sync(done)
  })

/** @internal */
export const make = (options: Options): Effect.Effect<Health.Store, never, Scope.Scope> =>
  Effect.gen(function*() {
    const prefix = options.prefix ?? defaultPrefix
    const timeout = toMillis(options.commandTimeout, 50, "commandTimeout")
    const expiry = toMillis(options.expiry, 3_600_000, "expiry")
    const recheck = toMillis(options.recheckInterval, 1000, "recheckInterval")
    const client = options.client ?? (yield* Effect.acquireRelease(
      Effect.sync(() => {
        const settings: RedisOptions = {
          // The request path never waits for Redis: a command on a client that is not connected fails at once, and a
          // slow one is abandoned by the caller after `timeout`. The client still waits a while for its reply (an
          // admission granted late is given back) but not forever.
          enableOfflineQueue: false,
          maxRetriesPerRequest: 0,
          commandTimeout: Math.max(10_000, timeout * 20),
          lazyConnect: true,
          ...options.redisOptions
        }
        const created = options.url === undefined ? new Redis(settings) : new Redis(options.url, settings)
        // Errors are reported through the commands that fail; the client reconnects in the background.
        created.on("error", noop)
        return created
      }),
      (created) => Effect.sync(() => created.disconnect())
    ))
    yield* awaitReady(client, Math.max(1000, timeout))

    const ids = `${prefix}ids`
    const recordKey = (id: string) => `${prefix}d:${id}`
    const windowKey = (id: string) => `${prefix}w:${id}`
    const slotsKey = (id: string) => `${prefix}l:${id}`
    // A budget's spending in one period (periods aligned on the epoch).
    const budgetKey = (name: string, now: number, periodMillis: number) =>
      `${prefix}b:${name}:${periodMillis}:${costs.periodOf(now, periodMillis).start}`
    const keysOf = (id: string) => [recordKey(id), windowKey(id), ids, slotsKey(id)]
    // Each admission's slot is a lease named by this store and a counter.
    const instance = randomUUID().slice(0, 8)
    let leases = 0

    let local = health.makeMemory()
    let available = true
    let nextTry = 0

    const viaRedis = <A>(
      op: () => Promise<unknown>,
      parse: (reply: unknown) => A,
      fallback: () => Effect.Effect<A>,
      late?: (reply: unknown) => void
    ): Effect.Effect<A> =>
      Effect.suspend(() => {
        if (!available && Date.now() < nextTry) return fallback()
        return Effect.flatMap(bounded(op, timeout, late), (outcome) => {
          if (outcome.ok) {
            let value: A
            try {
              value = parse(outcome.value)
            } catch (cause) {
              return down({ cause }, fallback)
            }
            if (available) return Effect.succeed(value)
            available = true
            // What this process recorded while Redis was away is dropped: Redis's table is the one that counts.
            local = health.makeMemory()
            return Effect.as(
              Effect.logInfo("Redis health store answers again; deployment health is shared again"),
              value
            )
          }
          return down(outcome, fallback)
        })
      })

    const down = <A>(outcome: { readonly cause: unknown }, fallback: () => Effect.Effect<A>): Effect.Effect<A> => {
      nextTry = Date.now() + recheck
      if (!available) return fallback()
      available = false
      const why = outcome.cause === timedOut ? `no answer within ${formatMillis(timeout)}` : errorText(outcome.cause)
      return Effect.zipRight(
        Effect.logWarning(
          `Redis health store unavailable (${why}); routing on this process's own health table until it answers`
        ),
        fallback()
      )
    }

    const reportArgs = (
      model: Model,
      policy: health.Policy,
      now: number,
      outcome: Health.Report,
      permit: health.Permit
    ): Array<string | number> => [
      now,
      policy.consecutiveFailures,
      policy.rateThreshold,
      policy.rateWindowMillis,
      policy.rateMinRequests,
      policy.cooldownMillis,
      policy.cooldownFactor,
      policy.maxCooldownMillis,
      policy.fatalCooldownMillis,
      outcome._tag === "Success" ? "S" : outcome._tag === "Failure" ? "F" : "R",
      outcome._tag === "Failure" ? outcome.kind : "",
      outcome._tag === "Failure" ? outcome.tag : "",
      outcome._tag === "Failure" && outcome.retryAfterMillis !== undefined ? outcome.retryAfterMillis : "",
      permit.probe ? "1" : "0",
      health.deploymentId(model),
      model.name,
      model.provider,
      windowText(policy),
      expiry,
      health.probeLeaseMillis,
      permit.ends ? "1" : "0",
      permit.lease ?? "",
      permit.reservedTokens,
      permit.usedTokens ?? "",
      model.limits?.tokensPerMinute ?? "",
      model.limits?.requestsPerMinute ?? ""
    ]

    const store: Health.Store = {
      admit: (model, policy, now, tokens) => {
        const id = health.deploymentId(model)
        const limits = model.limits ?? {}
        return viaRedis(
          () =>
            evalScript(client, admitScript, keysOf(id), [
              now,
              policy.probeIntervalMillis,
              health.probeLeaseMillis,
              id,
              model.name,
              model.provider,
              policy.rateWindowMillis,
              expiry,
              limits.maxConcurrent ?? "",
              limits.requestsPerMinute ?? "",
              limits.tokensPerMinute ?? "",
              tokens,
              `${instance}:${++leases}`,
              health.slotLeaseMillis
            ]),
          parseAdmission,
          () => local.admit(model, policy, now, tokens),
          // An admission Redis granted after the caller stopped waiting (and went on local state) is given back, so a
          // probe nobody holds does not keep the deployment skipped for the probe's lease.
          (reply) => {
            const admission = parseAdmission(reply)
            if (admission._tag !== "Admitted") return
            evalScript(
              client,
              reportScript,
              keysOf(id),
              reportArgs(model, policy, now, { _tag: "Released" }, {
                probe: admission.probe,
                ends: true,
                lease: admission.lease,
                reservedTokens: tokens
              })
            ).catch(noop)
          }
        )
      },
      report: (model, policy, now, outcome, permit) =>
        viaRedis(
          () =>
            evalScript(
              client,
              reportScript,
              keysOf(health.deploymentId(model)),
              reportArgs(model, policy, now, outcome, permit)
            ),
          parseTransition,
          () => local.report(model, policy, now, outcome, permit)
        ),
      snapshot: (now) =>
        viaRedis(
          () => evalScript(client, snapshotScript, [ids], [`${prefix}d:`, `${prefix}w:`, now, `${prefix}l:`]),
          (reply) => parseSnapshot(reply, now),
          () => local.snapshot(now)
        ),
      budgets: {
        spent: (name, now, periodMillis) =>
          viaRedis(
            () => client.get(budgetKey(name, now, periodMillis)),
            (reply) => (reply === null ? 0 : Number(reply)),
            () => local.budgets!.spent(name, now, periodMillis)
          ),
        charge: (name, now, periodMillis, amount) =>
          viaRedis(
            () =>
              evalScript(client, chargeScript, [budgetKey(name, now, periodMillis)], [
                amount,
                costs.periodOf(now, periodMillis).end - now
              ]),
            (reply) => Number(reply),
            () => local.budgets!.charge(name, now, periodMillis, amount)
          )
      }
    }
    return store
  })
