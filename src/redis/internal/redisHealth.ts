/**
 * The health table on Redis, failing open to this process's memory.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import { Redis } from "ioredis"
import type { RedisOptions } from "ioredis"
import { createHash, randomUUID } from "node:crypto"
import type * as Health from "../../Health.js"
import * as costs from "../../internal/cost.js"
import { formatMillis } from "../../internal/format.js"
import * as health from "../../internal/health.js"
import type { Model } from "../../Model.js"
import * as RouterError from "../../RouterError.js"
import type { Options } from "../RedisHealthStore.js"
import * as scripts from "./scripts.js"

/** @internal */
export const defaultPrefix = "effect-llm-router:health:"

const toMillis = (
  value: Duration.DurationInput | undefined,
  fallback: number,
  name: string
): Effect.Effect<number, RouterError.RouterConfigError> => {
  if (value === undefined) return Effect.succeed(fallback)
  const decoded = Duration.decodeUnknown(value)
  const ms = Option.isSome(decoded) ? Duration.toMillis(decoded.value) : NaN
  return ms > 0 && Number.isFinite(ms) ? Effect.succeed(ms) : Effect.fail(
    new RouterError.RouterConfigError({
      option: `RedisHealthStore.${name}`,
      reason: `must be a positive finite duration (got ${String(value)})`
    })
  )
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
const flushScript = script(scripts.flush)

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

/**
 * What this process keeps of a deployment's record (admission `"local"`): enough to admit a closed deployment, or skip
 * an open one, without asking Redis. `version` orders the copies (a message or a reply older than the copy is ignored);
 * `readAt` (real time) is when this process last read the record itself.
 */
interface Copy {
  readonly version: number
  readonly state: Health.State
  readonly openUntil: number
  readonly notBefore: number
  readonly consecutive: number
  readonly reason: string | undefined
  readonly readAt: number
}

/** The record's tail of a script's reply (`mirrored` in scripts.ts), from `offset`. */
const copyOf = (fields: ReadonlyArray<string>, offset: number, readAt: number): Copy | undefined => {
  if (fields.length < offset + 6) return undefined
  const reason = fields[offset + 5]!
  return {
    version: Number(fields[offset]),
    state: fields[offset + 1] as Health.State,
    openUntil: Number(fields[offset + 2]),
    notBefore: Number(fields[offset + 3]),
    consecutive: Number(fields[offset + 4]),
    reason: reason === "" ? undefined : reason,
    readAt
  }
}

/** A local admission's lease: it names no slot on the server. */
const localLease = "local"
const localAdmission: Health.Admission = { _tag: "Admitted", probe: false, lease: localLease }

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
export const make = (options: Options): Effect.Effect<Health.Store, RouterError.RouterConfigError, Scope.Scope> =>
  Effect.gen(function*() {
    const prefix = options.prefix ?? defaultPrefix
    const timeout = yield* toMillis(options.commandTimeout, 50, "commandTimeout")
    const expiry = yield* toMillis(options.expiry, 3_600_000, "expiry")
    const recheck = yield* toMillis(options.recheckInterval, 1000, "recheckInterval")
    const sync = yield* toMillis(options.syncInterval, 1000, "syncInterval")
    const admission = options.admission ?? "local"
    if (admission !== "local" && admission !== "redis") {
      return yield* new RouterError.RouterConfigError({
        option: "RedisHealthStore.admission",
        reason: `must be "local" or "redis" (got ${String(admission)})`
      })
    }
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

    // Admission "local": this process's copy of the records, current while it listens to the store's channel (every
    // script that changes what a copy keeps publishes the record there), and re-read from Redis at least every `sync`.
    const channel = admission === "local" ? `${prefix}events` : ""
    const copies = new Map<string, Copy>()
    let listening = false
    const keep = (id: string, copy: Copy | undefined, fromReply: boolean): void => {
      if (copy === undefined) return
      const held = copies.get(id)
      // A reply is this process's own read (it may create the copy); a message only updates a copy it holds.
      if (
        fromReply
          ? held === undefined || copy.version >= held.version
          : held !== undefined && copy.version > held.version
      ) {
        copies.set(id, fromReply ? copy : { ...copy, readAt: held!.readAt })
      }
    }
    // Requests admitted on the copy and not ended yet (for the snapshot), and their successes not yet written.
    const inFlightHere = new Map<string, number>()
    interface Pending {
      policy: health.Policy
      times: Array<number>
    }
    const pending = new Map<string, Pending>()
    const flushOne = (id: string): Promise<unknown> | undefined => {
      const p = pending.get(id)
      if (p === undefined) return undefined
      pending.delete(id)
      return evalScript(client, flushScript, [recordKey(id), windowKey(id), ids], [
        p.policy.rateWindowMillis,
        channel,
        id,
        ...p.times
      ]).then((reply) => keep(id, copyOf(reply as Array<string>, 0, Date.now()), false), noop)
    }
    const flushAll = (): Array<Promise<unknown>> => {
      const sent: Array<Promise<unknown>> = []
      for (const id of [...pending.keys()]) {
        const p = flushOne(id)
        if (p !== undefined) sent.push(p)
      }
      return sent
    }
    // Called once the channel is listened to (the layer waits for it, as for the client, a bounded time).
    let listened: () => void = noop
    if (channel !== "") {
      yield* Effect.acquireRelease(
        Effect.sync(() => {
          // The channel's connection: a subscriber cannot send other commands.
          const subscriber = client.duplicate({ lazyConnect: true, autoResubscribe: false, enableOfflineQueue: true })
          subscriber.on("error", noop)
          subscriber.on("ready", () => {
            subscriber.subscribe(channel).then(() => {
              // What was read while nobody listened may have missed a message.
              copies.clear()
              listening = true
              listened()
            }, noop)
          })
          subscriber.on("close", () => {
            listening = false
            copies.clear()
          })
          subscriber.on("message", (_channel: string, message: string) => {
            try {
              const fields = JSON.parse(message) as Array<string>
              keep(fields[0]!, copyOf(fields, 1, 0), false)
            } catch {
              // Not one of ours.
            }
          })
          subscriber.connect().catch(noop)
          const timer = setInterval(flushAll, sync)
          timer.unref()
          return { subscriber, timer }
        }),
        ({ subscriber, timer }) =>
          Effect.zipRight(
            Effect.sync(() => clearInterval(timer)),
            // The successes not written yet, before the client closes (bounded like any command).
            Effect.ensuring(
              bounded(() => Promise.all(flushAll()), timeout, undefined),
              Effect.sync(() => {
                listening = false
                subscriber.disconnect()
              })
            )
          )
      )
      yield* Effect.async<void>((resume) => {
        if (listening || client.status !== "ready") return resume(Effect.void)
        const timer = setTimeout(() => listened(), Math.max(1000, timeout))
        listened = () => {
          listened = noop
          clearTimeout(timer)
          resume(Effect.void)
        }
        return Effect.sync(() => {
          listened = noop
          clearTimeout(timer)
        })
      })
    }

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
      model.limits?.requestsPerMinute ?? "",
      channel
    ]

    const store: Health.Store = {
      admit: (model, policy, now, tokens) => {
        const id = health.deploymentId(model)
        if (listening && available && !health.hasLimits(model)) {
          const copy = copies.get(id)
          if (copy !== undefined && Date.now() - copy.readAt < sync) {
            if (now < copy.notBefore) return Effect.succeed(health.waitSkip(copy.notBefore))
            if (copy.state === "open" && now < copy.openUntil) {
              return Effect.succeed(health.openSkip(copy.reason, copy.openUntil))
            }
            if (copy.state === "closed") {
              inFlightHere.set(id, (inFlightHere.get(id) ?? 0) + 1)
              return Effect.succeed(localAdmission)
            }
          }
        }
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
              health.slotLeaseMillis,
              channel
            ]),
          (reply) => {
            const admission = parseAdmission(reply)
            keep(id, copyOf(reply as Array<string>, admission._tag === "Admitted" ? 3 : 4, Date.now()), true)
            return admission
          },
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
      report: (model, policy, now, outcome, permit) => {
        const id = health.deploymentId(model)
        if (permit.lease === localLease) {
          if (permit.ends) {
            const n = inFlightHere.get(id) ?? 0
            if (n <= 1) inFlightHere.delete(id)
            else inFlightHere.set(id, n - 1)
          }
          const copy = copies.get(id)
          // A request admitted on the copy took nothing on the server: its release changes nothing there, and its
          // success, while the record is closed with no failure counted, only adds to the failure-rate window, which
          // is written with the next failure, snapshot or `sync` tick.
          if (outcome._tag === "Released") return Effect.succeed(health.unchanged[copy?.state ?? "closed"])
          if (
            outcome._tag === "Success" && listening && available && copy !== undefined && copy.state === "closed" &&
            copy.consecutive === 0
          ) {
            const p = pending.get(id)
            if (p === undefined) pending.set(id, { policy, times: [now] })
            else {
              p.policy = policy
              p.times.push(now)
              if (p.times.length >= 2 * scripts.maxWindow) p.times = p.times.slice(-scripts.maxWindow)
            }
            return Effect.succeed(health.unchanged.closed)
          }
        }
        if (outcome._tag !== "Failure" && !permit.probe && available) {
          // Only a probe's verdict or a failure can change the breaker's state: the call need not wait for this one.
          // It is still sent now, ahead of any later command on the connection (which Redis runs in order), so the
          // next admission sees its slot freed and its tokens settled.
          void flushOne(id)
          evalScript(client, reportScript, keysOf(id), reportArgs(model, policy, now, outcome, permit)).then(
            (reply) => keep(id, copyOf(reply as Array<string>, 4, Date.now()), true),
            noop
          )
          return Effect.succeed(health.unchanged[copies.get(id)?.state ?? "closed"])
        }
        return viaRedis(
          () => {
            // The successes not written yet go first (the same connection keeps the order): a failure is weighed
            // against them.
            void flushOne(id)
            return evalScript(client, reportScript, keysOf(id), reportArgs(model, policy, now, outcome, permit))
          },
          (reply) => {
            keep(id, copyOf(reply as Array<string>, 4, Date.now()), true)
            return parseTransition(reply)
          },
          () => local.report(model, policy, now, outcome, permit)
        )
      },
      snapshot: (now) =>
        viaRedis(
          () => {
            flushAll()
            return evalScript(client, snapshotScript, [ids], [`${prefix}d:`, `${prefix}w:`, now, `${prefix}l:`])
          },
          (reply) =>
            parseSnapshot(reply, now).map((d) => {
              const here = inFlightHere.get(d.id)
              return here === undefined ? d : { ...d, inFlight: d.inFlight + here }
            }),
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
