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

/** A checked policy (failure-rate rule off unless given). */
export const policy = (options: Health.Options = {}) => {
  const p = healthInternal.resolvePolicy({ failureRate: false, ...options })
  if (!("consecutiveFailures" in p)) throw p
  return p
}
/** A deployment, and a transient failure to report against it. */
export const [model] = models("m")
export const failure: Health.Report = { _tag: "Failure", kind: "transient", tag: "ServerError" }

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
        const admission = yield* store.admit(model!, p, now)
        expect(admission._tag).toBe("Admitted")
        const transition = yield* store.report(
          model!,
          p,
          now,
          failure,
          admission._tag === "Admitted" && admission.probe ? "probe" : "admitted"
        )
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
      }, "none")
      yield* store.report(model!, p, 200, {
        _tag: "Failure",
        kind: "transient",
        tag: "RateLimited",
        retryAfterMillis: 10
      }, "none")
      expect((yield* store.snapshot(300))[0]).toMatchObject({ reopensAt: 60_100, trips: 4, state: "open" })
      expect((yield* onServer).length).toBeGreaterThan(0)
    }))

  it.scoped("half-open: the probe is taken once; a released probe lets the next caller probe; success closes", () =>
    Effect.gen(function*() {
      const { onServer, store } = yield* makeStore()
      const p = policy({ consecutiveFailures: 1, cooldown: "1 second" })
      yield* store.admit(model!, p, 0)
      const tripped = yield* store.report(model!, p, 0, failure, "admitted")
      expect(tripped).toEqual({
        from: "closed",
        to: "open",
        reason: "1 failure in a row, last ServerError",
        reopensAt: 1000
      })
      expect(yield* store.admit(model!, p, 999)).toEqual({
        _tag: "Skipped",
        reason: "circuit open: 1 failure in a row, last ServerError",
        until: 1000
      })
      const first = yield* store.admit(model!, p, 1000)
      const second = yield* store.admit(model!, p, 1000)
      expect(first).toEqual({ _tag: "Admitted", probe: true })
      expect(second).toEqual({ _tag: "Skipped", reason: "half-open: another call is probing it", until: 1250 })
      expect((yield* store.snapshot(1000))[0]).toMatchObject({ state: "half-open", probing: true, inFlight: 1 })
      yield* store.report(model!, p, 1000, { _tag: "Released" }, "probe")
      expect(yield* store.admit(model!, p, 1000)).toEqual({ _tag: "Admitted", probe: true })
      expect(yield* store.report(model!, p, 1001, { _tag: "Success" }, "probe")).toEqual({
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
      yield* store.admit(model!, p, 0)
      yield* store.report(model!, p, 0, failure, "admitted")
      expect((yield* store.admit(model!, p, 1000))._tag).toBe("Admitted")
      expect((yield* store.admit(model!, p, 1000 + healthInternal.probeLeaseMillis - 1))._tag).toBe("Skipped")
      expect(yield* store.admit(model!, p, 1000 + healthInternal.probeLeaseMillis)).toEqual({
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
      yield* store.admit(other!, fatal, 0)
      expect(
        yield* store.report(
          other!,
          fatal,
          0,
          { _tag: "Failure", kind: "fatal", tag: "AuthenticationFailed" },
          "admitted"
        )
      ).toEqual({ from: "closed", to: "open", reason: "AuthenticationFailed", reopensAt: 600_000 })

      const p = policy({
        consecutiveFailures: 100,
        failureRate: { threshold: 0.5, window: "10 seconds", minRequests: 4 },
        cooldown: "5 seconds"
      })
      const outcome = (now: number, ok: boolean) =>
        Effect.zipRight(
          store.admit(model!, p, now),
          store.report(model!, p, now, ok ? { _tag: "Success" } : failure, "admitted")
        )
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
      const last = yield* Effect.zipRight(
        store.admit(model!, p, 11_500),
        store.report(model!, p, 11_500, failure, "admitted")
      )
      expect(last).toEqual({ from: "closed", to: "open", reason: "75% of 4 requests failed in 10s", reopensAt: 16_500 })
      expect(byModel(yield* store.snapshot(11_500))).toMatchObject({ state: "open", recentRequests: 0, trips: 1 })
      expect((yield* onServer).length).toBeGreaterThan(0)
    }))
}
