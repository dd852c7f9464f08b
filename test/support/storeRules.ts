/**
 * The health store's rules at exact instants, as scenarios any `Health.Store` must pass: run on the in-memory store
 * by test/Health.test.ts and on Redis by test/RedisHealthStore.test.ts.
 */
import { expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Health from "../../src/Health.js"
import * as healthInternal from "../../src/internal/health.js"
import * as Model from "../../src/Model.js"
import * as OpenAiCompatible from "../../src/OpenAiCompatible.js"

const endpoint = OpenAiCompatible.endpoint({
  baseUrl: "http://127.0.0.1:1/v1",
  apiKey: Redacted.make("sk-store-rules-0123456789")
})
const models = (...names: ReadonlyArray<string>) => names.map((name) => Model.make({ name, endpoint }))
const limitedModels = (limits: Health.Limits) => [Model.make({ name: "limited", endpoint, limits })]

/** A checked policy (failure-rate rule off unless given). */
export const policy = (options: Health.Options = {}) => {
  const p = healthInternal.resolvePolicy({ failureRate: false, ...options })
  if (!("consecutiveFailures" in p)) throw p
  return p
}
/** A deployment, and a transient failure to report against it. */
export const [model] = models("m")
export const failure: Health.Report = { _tag: "Failure", kind: "transient", tag: "ServerError" }

/** What reports an admission's end (`ends`), or only a verdict on it (a stream's first content). */
export const permitOf = (
  admission: Health.Admission,
  options: { readonly ends?: boolean; readonly reservedTokens?: number; readonly usedTokens?: number } = {}
): Health.Permit => {
  if (admission._tag !== "Admitted") throw new Error(`expected an admission, got: ${admission.reason}`)
  return {
    probe: admission.probe,
    ends: options.ends ?? true,
    lease: admission.lease,
    reservedTokens: options.reservedTokens ?? 0,
    ...(options.usedTokens === undefined ? {} : { usedTokens: options.usedTokens })
  }
}
/** A report about no admission (a late verdict). */
export const verdictOnly: Health.Permit = { probe: false, ends: false, reservedTokens: 0 }

/** One request: admitted at `now` and ended there with `report`; fails the test when it is not admitted. */
export const request = (store: Health.Store, p: Health.Policy, now: number, report: Health.Report, m = model!) =>
  Effect.flatMap(store.admit(m, p, now, 0), (admission) => store.report(m, p, now, report, permitOf(admission)))

/**
 * A store to test, and where its table can be seen: for Redis the ids kept on the server, so that a silent fallback
 * to local memory fails the scenario.
 */
export type MakeStore = () => Effect.Effect<
  { readonly store: Health.Store; readonly onServer: Effect.Effect<ReadonlyArray<string>> },
  never,
  Scope.Scope
>

/** Registers the scenarios (call inside a `describe`). */
export const storeRules = (makeStore: MakeStore): void => {
  it.scoped("cooldowns grow by the factor on each trip, capped; a new trip never shortens the reopening", () =>
    Effect.gen(function*() {
      const { onServer, store } = yield* makeStore()
      const p = policy({ consecutiveFailures: 1, cooldown: "1 second", cooldownFactor: 3, maxCooldown: "5 seconds" })
      const reopenings: Array<number | undefined> = []
      let now = 0
      for (let trip = 0; trip < 4; trip++) {
        const admission = yield* store.admit(model!, p, now, 0)
        expect(admission._tag).toBe("Admitted")
        const transition = yield* store.report(model!, p, now, failure, permitOf(admission))
        expect(transition.to).toBe("open")
        const [snapshot] = yield* store.snapshot(now)
        reopenings.push(snapshot!.reopensAt)
        now = snapshot!.reopensAt!
      }
      expect(reopenings).toEqual([1000, 4000, 9000, 14_000])
      yield* store.report(model!, p, 100, {
        _tag: "Failure",
        kind: "transient",
        tag: "RateLimited",
        retryAfterMillis: 60_000
      }, verdictOnly)
      yield* store.report(model!, p, 200, {
        _tag: "Failure",
        kind: "transient",
        tag: "RateLimited",
        retryAfterMillis: 10
      }, verdictOnly)
      expect((yield* store.snapshot(300))[0]).toMatchObject({ reopensAt: 60_100, trips: 4, state: "open" })
      expect((yield* onServer).length).toBeGreaterThan(0)
    }))

  it.scoped("a fatal failure reported while open reopens at its own, later instant; no later report shortens it (LiteLLM #40130)", () =>
    Effect.gen(function*() {
      const { store } = yield* makeStore()
      const p = policy({ consecutiveFailures: 1, cooldown: "1 second", fatalCooldown: "10 seconds" })
      yield* request(store, p, 0, failure)
      expect((yield* store.snapshot(0))[0]).toMatchObject({ state: "open", reopensAt: 1000 })
      // A request admitted before the trip ends late, with a rejected key.
      yield* store.report(model!, p, 500, { _tag: "Failure", kind: "fatal", tag: "AuthenticationFailed" }, verdictOnly)
      expect((yield* store.snapshot(500))[0]).toMatchObject({ state: "open", reopensAt: 10_500 })
      // Then another late one, transient: the reopening stays.
      yield* store.report(model!, p, 600, failure, verdictOnly)
      expect((yield* store.snapshot(600))[0]).toMatchObject({ state: "open", reopensAt: 10_500 })
      expect(yield* store.admit(model!, p, 10_499, 0)).toMatchObject({ _tag: "Skipped", until: 10_500 })
    }))

  it.scoped("half-open: the probe is taken once; a released probe lets the next caller probe; success closes", () =>
    Effect.gen(function*() {
      const { onServer, store } = yield* makeStore()
      const p = policy({ consecutiveFailures: 1, cooldown: "1 second" })
      const tripped = yield* request(store, p, 0, failure)
      expect(tripped).toEqual({
        from: "closed",
        to: "open",
        reason: "1 failure in a row, last ServerError",
        reopensAt: 1000
      })
      expect(yield* store.admit(model!, p, 999, 0)).toEqual({
        _tag: "Skipped",
        reason: "circuit open: 1 failure in a row, last ServerError",
        until: 1000
      })
      const first = yield* store.admit(model!, p, 1000, 0)
      const second = yield* store.admit(model!, p, 1000, 0)
      expect(first).toMatchObject({ _tag: "Admitted", probe: true })
      expect(second).toEqual({ _tag: "Skipped", reason: "half-open: another call is probing it", until: 1250 })
      expect((yield* store.snapshot(1000))[0]).toMatchObject({ state: "half-open", probing: true, inFlight: 1 })
      yield* store.report(model!, p, 1000, { _tag: "Released" }, permitOf(first))
      const again = yield* store.admit(model!, p, 1000, 0)
      expect(again).toMatchObject({ _tag: "Admitted", probe: true })
      expect(yield* store.report(model!, p, 1001, { _tag: "Success" }, permitOf(again))).toEqual({
        from: "half-open",
        to: "closed",
        reason: undefined,
        reopensAt: undefined
      })
      expect((yield* store.snapshot(1001))[0]).toMatchObject({
        id: Health.deploymentId(model!),
        model: "m",
        provider: "openai",
        state: "closed",
        trips: 0,
        probing: false,
        inFlight: 0,
        reason: undefined,
        reopensAt: undefined
      })
      expect((yield* onServer).length).toBeGreaterThan(0)
    }))

  it.scoped("a probe never reported (its caller died) is given up after the lease", () =>
    Effect.gen(function*() {
      const { onServer, store } = yield* makeStore()
      const p = policy({ consecutiveFailures: 1, cooldown: "1 second" })
      yield* request(store, p, 0, failure)
      expect((yield* store.admit(model!, p, 1000, 0))._tag).toBe("Admitted")
      expect((yield* store.admit(model!, p, 1000 + healthInternal.probeLeaseMillis - 1, 0))._tag).toBe("Skipped")
      expect(yield* store.admit(model!, p, 1000 + healthInternal.probeLeaseMillis, 0)).toMatchObject({
        _tag: "Admitted",
        probe: true
      })
      expect((yield* onServer).length).toBeGreaterThan(0)
    }))

  it.scoped("fatal failures open at once for the fatal cooldown; a failure rate opens it; old outcomes leave", () =>
    Effect.gen(function*() {
      const { onServer, store } = yield* makeStore()
      const fatal = policy({ fatalCooldown: "10 minutes" })
      const [other] = models("fatal")
      expect(
        yield* request(store, fatal, 0, { _tag: "Failure", kind: "fatal", tag: "AuthenticationFailed" }, other)
      ).toEqual({ from: "closed", to: "open", reason: "AuthenticationFailed", reopensAt: 600_000 })

      const p = policy({
        consecutiveFailures: 100,
        failureRate: { threshold: 0.5, window: "10 seconds", minRequests: 4 },
        cooldown: "5 seconds"
      })
      const outcome = (now: number, ok: boolean) => request(store, p, now, ok ? { _tag: "Success" } : failure)
      yield* outcome(0, false)
      yield* outcome(1000, true)
      yield* outcome(2000, false)
      const byModel = (all: ReadonlyArray<Health.Deployment>) => all.find((d) => d.model === "m")
      expect(byModel(yield* store.snapshot(2000))).toMatchObject({
        state: "closed",
        recentRequests: 3,
        recentFailures: 2,
        consecutiveFailures: 1
      })
      yield* outcome(11_500, true)
      expect(byModel(yield* store.snapshot(11_500))).toMatchObject({ recentRequests: 2, recentFailures: 1 })
      yield* outcome(11_500, false)
      const last = yield* request(store, p, 11_500, failure)
      expect(last).toEqual({ from: "closed", to: "open", reason: "75% of 4 requests failed in 10s", reopensAt: 16_500 })
      expect(byModel(yield* store.snapshot(11_500))).toMatchObject({ state: "open", recentRequests: 0, trips: 1 })
      expect((yield* onServer).length).toBeGreaterThan(0)
    }))

  it.scoped("requests per minute: a burst of the limit, then one every 60 000 / limit ms, at exact instants", () =>
    Effect.gen(function*() {
      const { onServer, store } = yield* makeStore()
      const p = policy()
      const [limited] = limitedModels({ requestsPerMinute: 3 })
      const admit = (now: number) => store.admit(limited!, p, now, 0)
      for (let i = 0; i < 3; i++) expect((yield* admit(0))._tag).toBe("Admitted")
      expect(yield* admit(0)).toEqual({
        _tag: "Skipped",
        reason: "at its limit of 3 requests per minute",
        until: 20_000,
        limit: "requests"
      })
      expect((yield* admit(19_999))._tag).toBe("Skipped")
      expect((yield* admit(20_000))._tag).toBe("Admitted")
      expect(yield* admit(20_000)).toMatchObject({ _tag: "Skipped", until: 40_000 })
      // Refilled for 70 s: full again (3), never more.
      const [at90] = yield* store.snapshot(90_000)
      expect(at90).toMatchObject({ remainingRequests: 3, remainingTokens: undefined, limits: { requestsPerMinute: 3 } })
      expect((yield* onServer).length).toBeGreaterThan(0)
    }))

  it.scoped("tokens per minute: the estimate is reserved, then corrected to the usage; a huge request waits for a full bucket", () =>
    Effect.gen(function*() {
      const { onServer, store } = yield* makeStore()
      const p = policy()
      const [limited] = limitedModels({ tokensPerMinute: 1000 })
      const first = yield* store.admit(limited!, p, 0, 600)
      expect(first._tag).toBe("Admitted")
      // 400 left; 600 more come at 1000 a minute: 200 missing, 12 s.
      expect(yield* store.admit(limited!, p, 0, 600)).toEqual({
        _tag: "Skipped",
        reason: "at its limit of 1000 tokens per minute (this request: about 600)",
        until: 12_000,
        limit: "tokens"
      })
      // The answer used 100, not 600: 500 come back.
      yield* store.report(
        limited!,
        p,
        0,
        { _tag: "Success" },
        permitOf(first, { reservedTokens: 600, usedTokens: 100 })
      )
      expect((yield* store.snapshot(0))[0]).toMatchObject({ remainingTokens: 900, inFlight: 0 })
      const second = yield* store.admit(limited!, p, 0, 600)
      expect(second._tag).toBe("Admitted")
      // No usage reported (a failure): the estimate stands.
      yield* store.report(limited!, p, 0, failure, permitOf(second, { reservedTokens: 600 }))
      expect((yield* store.snapshot(0))[0]).toMatchObject({ remainingTokens: 300 })
      // A request over a whole minute's worth goes when the bucket is full (at 42 s), and leaves it in debt.
      expect(yield* store.admit(limited!, p, 0, 5000)).toMatchObject({ _tag: "Skipped", until: 42_000 })
      expect((yield* store.admit(limited!, p, 42_000, 5000))._tag).toBe("Admitted")
      expect((yield* store.snapshot(42_000))[0]).toMatchObject({ remainingTokens: -4000 })
      // The debt and 10 more tokens: 4010 tokens at 1000 a minute, 240.6 s.
      expect(yield* store.admit(limited!, p, 42_000, 10)).toMatchObject({ until: 282_600 })
      expect((yield* onServer).length).toBeGreaterThan(0)
    }))

  it.scoped("concurrency: a stream's verdict keeps its slot, its end frees it; a limited half-open deployment keeps its probe", () =>
    Effect.gen(function*() {
      const { onServer, store } = yield* makeStore()
      const p = policy({ consecutiveFailures: 1, cooldown: "1 second" })
      const [limited] = limitedModels({ maxConcurrent: 2 })
      const one = yield* store.admit(limited!, p, 0, 0)
      const two = yield* store.admit(limited!, p, 0, 0)
      expect(yield* store.admit(limited!, p, 0, 0)).toEqual({
        _tag: "Skipped",
        reason: "at its concurrency limit (2 in flight)",
        until: 250,
        limit: "concurrency"
      })
      // The first content of a stream: a verdict, the request goes on.
      yield* store.report(limited!, p, 10, { _tag: "Success" }, permitOf(one, { ends: false }))
      expect((yield* store.admit(limited!, p, 10, 0))._tag).toBe("Skipped")
      expect((yield* store.snapshot(10))[0]).toMatchObject({ inFlight: 2 })
      // The stream ends.
      yield* store.report(limited!, p, 20, { _tag: "Released" }, { ...permitOf(one), probe: false })
      const three = yield* store.admit(limited!, p, 20, 0)
      expect(three._tag).toBe("Admitted")
      // A late verdict trips it while both slots are held; at the reopening it is still full: nobody takes the probe
      // until a slot frees.
      yield* store.report(limited!, p, 30, failure, verdictOnly)
      const reopened = yield* store.admit(limited!, p, 1030, 0)
      expect(reopened).toMatchObject({ _tag: "Skipped", limit: "concurrency" })
      expect((yield* store.snapshot(1030))[0]).toMatchObject({ state: "half-open", probing: false, inFlight: 2 })
      yield* store.report(limited!, p, 1030, { _tag: "Released" }, permitOf(three))
      const probe = yield* store.admit(limited!, p, 1030, 0)
      expect(probe).toMatchObject({ _tag: "Admitted", probe: true })
      expect(yield* store.admit(limited!, p, 1030, 0)).toMatchObject({
        _tag: "Skipped",
        reason: "half-open: another call is probing it"
      })
      yield* store.report(limited!, p, 1040, { _tag: "Success" }, permitOf(probe))
      yield* store.report(limited!, p, 1040, { _tag: "Released" }, permitOf(two))
      expect((yield* store.snapshot(1040))[0]).toMatchObject({ state: "closed", inFlight: 0 })
      expect((yield* onServer).length).toBeGreaterThan(0)
    }))
}
