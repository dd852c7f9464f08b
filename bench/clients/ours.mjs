// effect-llm-router (this repository), built to dist/ by `npm run build`. Two variants:
//   --variant fetch    Layer.provide(RouterLive, FetchHttpClient.layer)          (client name "ours-fetch")
//   --variant undici   Layer.provide(RouterLive, NodeRouterHttpClient.layerUndici) (client name "ours-undici")
// and each with `-nohealth` (`--variant undici-nohealth`: client "ours-undici-nohealth"), the same router built with
// `health: false`: the cost of deployment health on the healthy path (latency, throughput, …).
//
// effect and @effect/platform are imported from the TOP-LEVEL node_modules (the copy dist/ resolves), not from
// bench/node_modules, so that the library and this client share one effect instance (Context tags, Stream, …).
// This client needs no bench/node_modules at all. The runner skips it when dist/src/index.js is missing.
//
// One ManagedRuntime per process, built once and reused for every call. The failover workload builds its runtime
// with a two-model list whose first model (`fail-first`) gets a 503 from the upstream, no retry of that model and
// zero backoff, so the figure is the router's own cost to move to the next model.
import { existsSync } from "node:fs"
import { resolve } from "node:path"
import { pathToFileURL } from "node:url"
import { promptFor } from "../lib/expected.mjs"
import { runClient } from "../lib/harness.mjs"
import { importTopLevel, REPO_ROOT } from "../lib/top-level.mjs"

const DIST_MAIN = resolve(REPO_ROOT, "dist/src/index.js")
const DIST_NODE = resolve(REPO_ROOT, "dist/src/node/index.js")

runClient("ours", async ({ url, variant: variantArg = "fetch", workload, spec }) => {
  const [variant, flag] = variantArg.split("-")
  if (flag !== undefined && flag !== "nohealth") throw new Error(`unknown variant ${variantArg}`)
  const health = flag === "nohealth" ? false : undefined
  if (!existsSync(DIST_MAIN)) {
    throw new Error(`library not built: ${DIST_MAIN} is missing (run \`npm run build\` at the top level)`)
  }
  // Effect's modules one by one, as the library itself imports them: `effect`'s index loads every module (about
  // 40 MB of RSS here), a cost of how a program imports Effect, not of the router.
  const [Effect, Layer, ManagedRuntime, Redacted, Stream] = await Promise.all(
    ["./Effect", "./Layer", "./ManagedRuntime", "./Redacted", "./Stream"].map((m) => importTopLevel("effect", m))
  )
  const { Router, Model, OpenAiCompatible } = await import(pathToFileURL(DIST_MAIN).href)

  let HttpLive
  if (variant === "fetch") {
    // The module, not `@effect/platform`'s index: the index loads every platform module (HttpApi, MsgPack, …),
    // about 40 MB of RSS that neither variant uses; the undici variant does not load the platform's index at all.
    const FetchHttpClient = await importTopLevel("@effect/platform", "./FetchHttpClient")
    HttpLive = FetchHttpClient.layer
  } else if (variant === "undici") {
    const { NodeRouterHttpClient } = await import(pathToFileURL(DIST_NODE).href)
    HttpLive = NodeRouterHttpClient.layerUndici
  } else {
    throw new Error(`unknown variant ${variant} (fetch | undici)`)
  }

  const endpoint = OpenAiCompatible.endpoint({ baseUrl: `${url}/v1`, apiKey: Redacted.make("sk-bench") })
  const hi = { messages: [{ role: "user", content: "hi" }] }

  if (workload === "outage-503" || workload === "outage-hang") {
    // One fresh runtime per configuration and concurrency (the harness builds a concurrency's four at once), so that
    // each starts with a closed breaker and trips it itself. The dead deployment is model `down` (503 on every
    // request) or `hang` (no answer until the attempt timeout aborts it); `m` answers. One attempt per model: with the
    // default policy (4 attempts, backoff) every call with health off would wait out the retries of the dead model.
    // An attempt timeout when the spec has `attemptMs` (outage-hang: 50 ms, on every router of the phase).
    if (health === false) throw new Error(`${workload}: measures health on and off itself; use ours-${variant}`)
    const dead = workload === "outage-503" ? "down" : "hang"
    const timeout = spec.attemptMs !== undefined ? { attempt: `${spec.attemptMs} millis` } : undefined
    const configs = {
      base: { models: ["m"], health: undefined },
      on: { models: [dead, "m"], health: {} },
      off: { models: [dead, "m"], health: false },
      short: { models: [dead, "m"], health: { cooldown: `${spec.shortCooldownMs} millis` } }
    }
    const { Router: RouterTag } = Router
    const healthEff = Effect.flatMap(RouterTag, (r) => r.health)
    const generateEff = Router.generate(hi).pipe(Effect.map((r) => r.text))
    const outage = async (config) => {
      const c = configs[config]
      if (c === undefined) throw new Error(`unknown outage configuration ${config}`)
      const rt = ManagedRuntime.make(Layer.provide(
        Router.layer({
          models: c.models.map((name) => Model.make({ name, endpoint })),
          retry: { maxAttempts: 1 },
          timeout,
          health: c.health
        }),
        HttpLive
      ))
      await rt.runPromise(Effect.void)
      return {
        generate: () => rt.runPromise(generateEff),
        /** The dead deployment's breaker state ("closed" | "open" | "half-open"), and its trips. */
        deadHealth: async () => {
          const ds = await rt.runPromise(healthEff)
          const d = ds.find((x) => x.model === dead)
          return d === undefined ? undefined : { state: d.state, trips: d.trips }
        },
        close: () => rt.dispose()
      }
    }
    return { dead, outage, generate: () => Promise.reject(new Error("outage workloads only")) }
  }

  const RouterLive = workload === "failover"
    ? Router.layer({
      models: [Model.make({ name: "fail-first", endpoint }), Model.make({ name: "m", endpoint })],
      // One attempt per model: the 503 moves straight on to the next model, no backoff.
      retry: { maxAttempts: 1 },
      // The failover itself is measured: with health on, the dead model would be skipped after its first failures
      // (what the outage workloads measure).
      health: false
    })
    : Router.layer({
      models: [Model.make({ name: "m", endpoint }), Model.make({ name: "m2", endpoint })],
      retry: { maxAttempts: 3 },
      health
    })
  const rt = ManagedRuntime.make(Layer.provide(RouterLive, HttpLive))
  await rt.runPromise(Effect.void)

  const generateEff = Router.generate(hi).pipe(Effect.map((r) => r.text))
  const generate = () => rt.runPromise(generateEff)

  const stream = (n) =>
    rt.runPromise(
      Router.stream({ messages: [{ role: "user", content: promptFor(n) }] }).pipe(
        Stream.runFold({ parts: [], chunks: 0 }, (acc, c) => {
          if (c._tag === "TextDelta" && c.text.length > 0) {
            acc.parts.push(c.text)
            acc.chunks++
          }
          return acc
        }),
        Effect.map((acc) => ({ text: acc.parts.join(""), chunks: acc.chunks }))
      )
    )

  return { generate, stream, failover: generate, close: () => rt.dispose() }
})
