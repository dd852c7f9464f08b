/**
 * Hedged requests: under the TestClock on the FakeHttpClient, the exact instants hedges start, the winner and the
 * cancelled losers in the trail, the hedging budget backing the delay off, percentile delays and streams hedged only
 * until their first content; on loopback, the losing request's socket closes (call and stream, fetch and undici).
 */
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as Attempt from "../src/Attempt.js"
import * as FetchRouterHttpClient from "../src/FetchRouterHttpClient.js"
import * as Model from "../src/Model.js"
import * as NodeRouterHttpClient from "../src/node/NodeRouterHttpClient.js"
import * as OpenAiCompatible from "../src/OpenAiCompatible.js"
import * as RetryPolicy from "../src/RetryPolicy.js"
import * as Router from "../src/Router.js"
import type * as RouterError from "../src/RouterError.js"
import * as RouterHttpClient from "../src/RouterHttpClient.js"
import type * as Selection from "../src/Selection.js"
import * as FakeHttpClient from "../src/testing/FakeHttpClient.js"
import * as SimulatedUpstream from "../src/testing/SimulatedUpstream.js"
import * as S from "../src/testing/UpstreamScript.js"
import { promise, run, runWith } from "./support/live.js"

const KEY = "sk-hedge-test-0123456789"
const endpoint = OpenAiCompatible.endpoint({ baseUrl: FakeHttpClient.openAiBaseUrl, apiKey: Redacted.make(KEY) })
const hi = { messages: [{ role: "user" as const, content: "hi" }] }
const fake = (script: S.Script) => FakeHttpClient.layer({ script, apiKey: KEY })
const model = (name: string) => Model.make({ name, endpoint })

const arrivals = Effect.map(FakeHttpClient.requests, (rs) => rs.map((r) => `${r.model}@${r.receivedAt}`))
const fates = (trail: ReadonlyArray<Attempt.Attempt>) =>
  trail.map((a) => `${a.model}:${a.outcome}:${a.hedge}@${a.startedAt}-${a.endedAt}`)
const adjust = (millis: number) => TestClock.adjust(Duration.millis(millis))

const router = (models: ReadonlyArray<Model.Entry>, hedge: Selection.HedgeOptions) =>
  Router.make({ models, retry: RetryPolicy.none, hedge })

/** Runs `call` in a fiber and moves the clock `millis` on. */
const after = <A, E>(millis: number, call: Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.fork(call)
    yield* adjust(millis)
    return yield* Fiber.join(fiber)
  })

describe("hedging: when hedges start, who wins, what the trail says", () => {
  it.effect("a's answer takes 1 s: the hedge to b starts at 100 ms, wins at 110 ms, and a is cancelled", () =>
    Effect.gen(function*() {
      const r = yield* router([model("a"), model("b")], { delay: "100 millis" })
      const response = yield* after(2000, r.generate(hi))
      expect(response.model).toBe("b")
      expect(fates(response.trail)).toEqual(["b:success:1@100-110", "a:cancelled:0@0-110"])
      expect(response.trail[1]!.note).toBe("request 2 of the call won")
      // The timeline reads in the order the requests started.
      expect(Attempt.formatTimeline(response.trail).split("\n").map((line) => line.trim().split(/\s+/).slice(0, 2)))
        .toEqual([["+0ms", "openai/a"], ["+100ms", "openai/b"]])
      expect(yield* arrivals).toEqual(["a@0", "b@100"])
      // A cancelled hedge says nothing about its deployment.
      expect((yield* r.health)[0]).toMatchObject({ consecutiveFailures: 0, inFlight: 0 })
    }).pipe(Effect.provide(fake({ a: [S.succeed({ headersDelayMs: 1000 })], b: [S.succeed({ headersDelayMs: 10 })] }))))

  it.effect("an answer before the delay starts no hedge; a failure before it ends the call without one", () =>
    Effect.gen(function*() {
      const r = yield* router([model("a"), model("b")], { delay: "100 millis" })
      const quick = yield* after(1000, r.generate(hi))
      expect(fates(quick.trail)).toEqual(["a:success:0@0-50"])
      const error = (yield* after(1000, Effect.flip(r.generate(hi)))) as RouterError.BadRequest
      expect(error._tag).toBe("BadRequest")
      expect(yield* arrivals).toEqual(["a@0", "a@1000"])
    }).pipe(Effect.provide(fake({ a: [S.succeed({ headersDelayMs: 50 }), S.fail(400)], b: [S.succeed()] }))))

  it.effect("a group hedges within itself first: the hedge goes to g2, not to the next entry", () =>
    Effect.gen(function*() {
      const group = Model.group({ strategy: "round-robin", deployments: [model("g1"), model("g2")] })
      const r = yield* router([group, model("b")], { delay: "100 millis" })
      const response = yield* after(2000, r.generate(hi))
      expect(response.model).toBe("g2")
      expect(yield* arrivals).toEqual(["g1@0", "g2@100"])
    }).pipe(Effect.provide(fake({
      g1: [S.succeed({ headersDelayMs: 1000 })],
      g2: [S.succeed({ headersDelayMs: 10 })],
      b: [S.succeed()]
    }))))

  it.effect("maxInFlight 3: hedges at 100 and 200 ms; the third wins; both others are cancelled", () =>
    Effect.gen(function*() {
      const r = yield* router([model("a"), model("b"), model("c")], { delay: "100 millis", maxInFlight: 3 })
      const response = yield* after(2000, r.generate(hi))
      expect(response.model).toBe("c")
      expect(yield* arrivals).toEqual(["a@0", "b@100", "c@200"])
      expect(response.trail.map((a) => `${a.model}:${a.outcome}`).sort()).toEqual([
        "a:cancelled",
        "b:cancelled",
        "c:success"
      ])
    }).pipe(Effect.provide(fake({
      a: [S.succeed({ headersDelayMs: 1000 })],
      b: [S.succeed({ headersDelayMs: 1000 })],
      c: [S.succeed({ headersDelayMs: 5 })]
    }))))

  it.effect("a hedge goes to a deployment this call has not tried: not back to the one that already failed it", () =>
    Effect.gen(function*() {
      const r = yield* router([model("a"), model("b"), model("c")], { delay: "100 millis" })
      // The first request: a fails at once, b is slow. The hedge at 100 ms skips both and goes to c.
      const response = yield* after(2000, r.generate(hi))
      expect(response.model).toBe("c")
      expect(yield* arrivals).toEqual(["a@0", "b@0", "c@100"])
    }).pipe(Effect.provide(fake({
      a: [S.unavailable(), S.succeed()],
      b: [S.succeed({ headersDelayMs: 1000 })],
      c: [S.succeed({ headersDelayMs: 10 })]
    }))))

  it.effect("a hedge that fails leaves the first request to finish: the call is served by a, the trail shows both", () =>
    Effect.gen(function*() {
      const r = yield* router([model("a"), model("b")], { delay: "100 millis" })
      const response = yield* after(2000, r.generate(hi))
      expect(response.model).toBe("a")
      expect(response.trail.map((x) => `${x.model}:${x.outcome}:${x.hedge}`)).toEqual(["b:failed:1", "a:success:0"])
    }).pipe(Effect.provide(fake({ a: [S.succeed({ headersDelayMs: 300 })], b: [S.unavailable()] }))))
})

describe("hedging: the budget and the percentile delay", () => {
  it.effect("a hedge that loses doubles the next call's delay; one that wins halves it", () =>
    Effect.gen(function*() {
      const r = yield* router([model("a"), model("b")], { delay: "100 millis" })
      // a answers at 250 and 450 ms, b only 500 ms after it starts: a wins twice, the hedges lost. The delay doubles
      // to 200 ms, then 400 ms.
      for (let i = 0; i < 2; i++) yield* after(1000, r.generate(hi))
      // Now a takes 1 s: the hedge starts at 400 ms and wins.
      const third = yield* after(2000, r.generate(hi))
      expect(third.model).toBe("b")
      // Halved: 200 ms.
      yield* after(2000, r.generate(hi))
      expect(yield* arrivals).toEqual([
        "a@0",
        "b@100",
        "a@1000",
        "b@1200",
        "a@2000",
        "b@2400",
        "a@4000",
        "b@4200"
      ])
    }).pipe(Effect.provide(fake({
      a: [
        S.succeed({ headersDelayMs: 250 }),
        S.succeed({ headersDelayMs: 450 }),
        S.succeed({ headersDelayMs: 1000 }),
        S.succeed({ headersDelayMs: 1000 })
      ],
      b: [
        S.succeed({ headersDelayMs: 500 }),
        S.succeed({ headersDelayMs: 500 }),
        S.succeed({ headersDelayMs: 10 }),
        S.succeed({ headersDelayMs: 10 })
      ]
    }))))

  it.effect("a backed-off budget recovers: a slow call that the backoff kept from hedging halves the delay", () =>
    Effect.gen(function*() {
      const r = yield* router([model("a"), model("b")], { delay: "100 millis" })
      // Two hedges lose: the delay is 400 ms.
      for (let i = 0; i < 2; i++) yield* after(1000, r.generate(hi))
      // a answers in 300 ms: no hedge (400 ms), though one would have gone at 100: a chance missed, back to 200 ms.
      yield* after(1000, r.generate(hi))
      // A slow answer is hedged at 200 ms again.
      const fourth = yield* after(2000, r.generate(hi))
      expect(fourth.model).toBe("b")
      expect(yield* arrivals).toEqual(["a@0", "b@100", "a@1000", "b@1200", "a@2000", "a@3000", "b@3200"])
    }).pipe(Effect.provide(fake({
      a: [
        S.succeed({ headersDelayMs: 250 }),
        S.succeed({ headersDelayMs: 450 }),
        S.succeed({ headersDelayMs: 300 }),
        S.succeed({ headersDelayMs: 1000 })
      ],
      b: [S.succeed({ headersDelayMs: 500 }), S.succeed({ headersDelayMs: 500 }), S.succeed({ headersDelayMs: 10 })]
    }))))

  it.effect("a percentile delay: `initial` until 16 latencies are known, then their 90th percentile", () =>
    Effect.gen(function*() {
      const r = yield* router([model("a"), model("b")], { delay: { percentile: 90, initial: "1 second" } })
      // 16 calls answered by a in 10, 20, …, 160 ms: no hedge (initial 1 s).
      for (let i = 0; i < 16; i++) yield* after(500, r.generate(hi))
      expect((yield* arrivals).filter((x) => x.startsWith("b"))).toEqual([])
      // The 90th percentile of 10..160 is 150 ms: a slow answer is hedged at 150 ms.
      const start = 16 * 500
      yield* after(2000, r.generate(hi))
      expect((yield* arrivals).slice(16)).toEqual([`a@${start}`, `b@${start + 150}`])
    }).pipe(Effect.provide(fake({
      a: [...Array.from({ length: 16 }, (_, i) => S.succeed({ headersDelayMs: 10 * (i + 1) })), S.hang()],
      b: [S.succeed()]
    }))))
})

describe("hedging: streams", () => {
  it.effect("a stream is hedged until its first content: b's content wins, a is cancelled, nothing is spliced", () =>
    Effect.gen(function*() {
      const r = yield* router([model("a"), model("b")], { delay: "100 millis" })
      const chunks = yield* after(3000, Stream.runCollect(r.stream(hi)))
      const all = Chunk.toReadonlyArray(chunks)
      expect(all[0]).toMatchObject({ _tag: "Started", model: "b" })
      const text = all.flatMap((c) => (c._tag === "TextDelta" ? [c.text] : [])).join("")
      expect(text).toBe("from b")
      const started = all[0]!
      expect(started._tag === "Started" && fates(started.trail)).toEqual([
        "b:success:1@100-120",
        "a:cancelled:0@0-120"
      ])
    }).pipe(Effect.provide(fake({
      a: [S.succeed({ text: "from a", firstTokenDelayMs: 1000 })],
      b: [S.succeed({ text: "from b", firstTokenDelayMs: 20 })]
    }))))
})

describe("hedging: bad options", () => {
  it.each([
    [{ delay: 0 }, "hedge.delay"],
    [{ delay: "soon" }, "hedge.delay"],
    [{ delay: { percentile: 0, initial: "1 second" } }, "hedge.delay.percentile"],
    [{ delay: { percentile: 95, initial: -5 } }, "hedge.delay.initial"],
    [{ delay: "1 second", maxInFlight: 1 }, "hedge.maxInFlight"]
  ] as ReadonlyArray<readonly [Selection.HedgeOptions, string]>)(
    "%o is a RouterConfigError naming %s",
    (hedge, option) => {
      const error = Effect.runSync(
        Effect.flip(Router.make({ models: [model("a")], hedge })).pipe(
          Effect.provide(FakeHttpClient.layer({ script: {} }))
        )
      ) as RouterError.RouterConfigError
      expect(error._tag).toBe("RouterConfigError")
      expect(error.option).toBe(option)
    }
  )
})

for (
  const [name, runIt] of [
    ["fetch", run],
    ["fetchr", runWith(FetchRouterHttpClient.layer)],
    ["node:http", runWith(Layer.orDie(RouterHttpClient.layerNodeHttp))],
    ["undici", runWith(NodeRouterHttpClient.layerUndici)]
  ] as const
) {
  describe(`hedging on loopback (${name}): the losing request's socket closes`, () => {
    it.live("a call: the slow first request is aborted when the hedge wins", () =>
      runIt(Effect.gen(function*() {
        const upstream = yield* SimulatedUpstream.make({
          script: { slow: [S.hang()], fast: [S.succeed({ headersDelayMs: 10 })] }
        })
        const live = OpenAiCompatible.endpoint({ baseUrl: upstream.openAiBaseUrl, apiKey: Redacted.make(KEY) })
        const r = yield* Router.make({
          models: [Model.make({ name: "slow", endpoint: live }), Model.make({ name: "fast", endpoint: live })],
          retry: RetryPolicy.none,
          hedge: { delay: "50 millis" }
        })
        const response = yield* r.generate(hi)
        expect(response.model).toBe("fast")
        yield* promise(() => upstream.waitForClosedConnections(1, 2_000))
        expect(upstream.closedConnections()).toBeGreaterThanOrEqual(1)
        expect(response.trail.find((a) => a.model === "slow")?.outcome).toBe("cancelled")
      })))

    it.live("a stream: the first to deliver content wins; the other's socket closes and none of its text arrives", () =>
      runIt(Effect.gen(function*() {
        const upstream = yield* SimulatedUpstream.make({
          script: {
            slow: [S.succeed({ text: "slow words", firstTokenDelayMs: 5_000 })],
            fast: [S.succeed({ text: "fast words", firstTokenDelayMs: 10 })]
          }
        })
        const live = OpenAiCompatible.endpoint({ baseUrl: upstream.openAiBaseUrl, apiKey: Redacted.make(KEY) })
        const r = yield* Router.make({
          models: [Model.make({ name: "slow", endpoint: live }), Model.make({ name: "fast", endpoint: live })],
          retry: RetryPolicy.none,
          hedge: { delay: "50 millis" }
        })
        const chunks = Chunk.toReadonlyArray(yield* Stream.runCollect(r.stream(hi)))
        const text = chunks.flatMap((c) => (c._tag === "TextDelta" ? [c.text] : [])).join("")
        expect(text).toBe("fast words")
        yield* promise(() => upstream.waitForClosedConnections(1, 2_000))
        expect(upstream.closedConnections()).toBeGreaterThanOrEqual(1)
      })))
  })
}
