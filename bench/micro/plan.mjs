// The routing plan (src/internal/plan.ts, built to dist/: a chain of continuations stepping the retry policy's
// Schedule by hand) against Effect's own modules doing the same routing: `Effect.retry` with the same Schedule plus a
// fallback to the next model, and `ExecutionPlan` (one step per model, the same Schedule). The attempt is a fake
// effect (no HTTP), so the figure is the machinery's own cost per routed call.
//
//   npm run build
//   node --expose-gc bench/micro/plan.mjs [--rounds 7] [--ms 400]
//
// Both sides: two models, the policy the bench's ours client uses (`RetryPolicy.exponential({ maxAttempts: 3 })`,
// its Schedule as it is, jitter included), retried while the error's tag is in the policy's retryOn, falling back on
// the router's fallback tags; an attempt gets a scope of its own, closed at once when it fails and after the call
// when it succeeds (what the router does for a non-streaming call). Sleeps are made free on both sides (a Clock
// whose `sleep` is `Effect.void`) so that the Schedule's 4 s waits do not dominate; warnings are filtered
// (minimum log level Error). Both are set once in a Runtime, and every call runs with its `runSync` (nothing in
// it is asynchronous).
//
// Variants, per path:
//   success: the first attempt succeeds        retry: the first attempt fails with a ServerError, the second succeeds
//   plan          plan.run (records the trail of Attempts, reads the clock, the retryOn/fallback/deadline checks)
//   Effect.retry  Effect.retry(attempt(model), { schedule, while }) then Effect.catchIf(fallbackOn) to the next model
//   ExecutionPlan Effect.withExecutionPlan(attempt, ExecutionPlan.make({ provide: model 1, schedule, while }, ...))
// The Effect-module variants keep no trail: they do less than the plan.
//
// effect comes from the TOP-LEVEL node_modules (the copy dist/ uses).
import { pathToFileURL } from "node:url"
import { importTopLevel, REPO_ROOT } from "../lib/top-level.mjs"
import { assert, header, measure, ratio, report } from "./lib.mjs"

const [Clock, Context, Effect, ExecutionPlan, Exit, Logger, LogLevel, Runtime, Scope] = await Promise.all(
  ["./Clock", "./Context", "./Effect", "./ExecutionPlan", "./Exit", "./Logger", "./LogLevel", "./Runtime", "./Scope"]
    .map((m) => importTopLevel("effect", m))
)
const plan = await import(pathToFileURL(`${REPO_ROOT}/dist/src/internal/plan.js`).href)
const { Model, OpenAiCompatible, RetryPolicy } = await import(pathToFileURL(`${REPO_ROOT}/dist/src/index.js`).href)

const endpoint = OpenAiCompatible.endpoint({ baseUrl: "http://127.0.0.1:1/v1" })
const models = [Model.make({ name: "m", endpoint }), Model.make({ name: "m2", endpoint })]
const policy = RetryPolicy.exponential({ maxAttempts: 3 })
const fallbackOn = new Set(["RateLimited", "ServerError", "ServiceUnavailable", "Timeout", "NetworkError"])
const config = {
  models,
  retry: policy,
  fallbackOn,
  attemptTimeoutMillis: undefined,
  deadlineMillis: undefined,
  onAttempt: undefined,
  traced: false,
  telemetry: { spans: false, metrics: false, captureContent: false, active: false }
}
const request = { messages: [{ role: "user", content: "hi" }] }
const value = { text: "ok" }
// One error object, shared by both sides (building a tagged error captures a stack: not what is measured here).
const serverError = { _tag: "ServerError", provider: "openai", model: "m", attempt: 1, status: 500 }

// A Clock whose sleep costs nothing; the time is real.
const base = Clock.make()
const freeSleepClock = {
  [Clock.ClockTypeId]: Clock.ClockTypeId,
  unsafeCurrentTimeMillis: () => base.unsafeCurrentTimeMillis(),
  unsafeCurrentTimeNanos: () => base.unsafeCurrentTimeNanos(),
  currentTimeMillis: base.currentTimeMillis,
  currentTimeNanos: base.currentTimeNanos,
  scheduler: () => base.scheduler(),
  sleep: () => Effect.void
}
// One runtime carrying that clock and the log level, built once (as a program's ManagedRuntime is): setting them
// around every call would cost more than some of what is measured.
const runtime = Effect.runSync(
  Logger.withMinimumLogLevel(Effect.withClock(Effect.runtime(), freeSleepClock), LogLevel.Error)
)
const run = Runtime.runSync(runtime)

// The fake attempt: fails the first `failures` times of each routed call, then succeeds. `state` is per call.
const attempt = (state) =>
  Effect.suspend(() => state.n++ < state.failures ? Effect.fail(serverError) : Effect.succeed(value))

// ours: as the router's generate does it.
const viaPlan = (failures) => () => {
  const state = { n: 0, failures }
  return run(Effect.flatMap(
    plan.run(config, request, false, () => attempt(state), "attempt"),
    (success) => Effect.as(Scope.close(success.scope, Exit.void), success.value)
  ))
}

// The same attempt in a scope of its own, closed at once on failure, after the call on success.
const scopedAttempt = (state, model) =>
  Effect.flatMap(Scope.make(), (scope) =>
    Effect.map(
      Effect.onExit(attempt(state, model), (exit) => Exit.isSuccess(exit) ? Effect.void : Scope.close(scope, exit)),
      (v) => ({ value: v, model, scope })
    ))
const retryWhile = (e) => policy.retryOn.has(e._tag)
const withModel = (state, model) =>
  Effect.retry(scopedAttempt(state, model), { schedule: policy.schedule, while: retryWhile })
const viaRetry = (failures) => () => {
  const state = { n: 0, failures }
  return run(Effect.flatMap(
    Effect.catchIf(withModel(state, models[0]), (e) => fallbackOn.has(e._tag), () => withModel(state, models[1])),
    (success) => Effect.as(Scope.close(success.scope, Exit.void), success.value)
  ))
}

class CurrentModel extends Context.Tag("bench/CurrentModel")() {}
const executionPlan = ExecutionPlan.make(
  { provide: Context.make(CurrentModel, models[0]), schedule: policy.schedule, while: retryWhile },
  { provide: Context.make(CurrentModel, models[1]), schedule: policy.schedule, while: retryWhile }
)
const viaExecutionPlan = (failures) => () => {
  const state = { n: 0, failures }
  return run(Effect.flatMap(
    Effect.withExecutionPlan(Effect.flatMap(CurrentModel, (model) => scopedAttempt(state, model)), executionPlan),
    (success) => Effect.as(Scope.close(success.scope, Exit.void), success.value)
  ))
}

// The floor: the attempt alone in its scope, no retry, no fallback.
const bare = () => {
  const state = { n: 0, failures: 0 }
  return run(
    Effect.flatMap(scopedAttempt(state, models[0]), (s) => Effect.as(Scope.close(s.scope, Exit.void), s.value))
  )
}

const variants = {
  "floor: attempt alone": bare,
  "success: plan": viaPlan(0),
  "success: Effect.retry": viaRetry(0),
  "success: ExecutionPlan": viaExecutionPlan(0),
  "retry: plan": viaPlan(1),
  "retry: Effect.retry": viaRetry(1),
  "retry: ExecutionPlan": viaExecutionPlan(1)
}
for (const [name, fn] of Object.entries(variants)) assert(fn() === value, `${name} did not return the value`)

header("Routing machinery per routed call (fake attempt, two models, exponential({ maxAttempts: 3 }))")
const results = await measure(variants)
console.log(report(results, { perUnit: "call" }))
for (const path of ["success", "retry"]) {
  for (const other of ["Effect.retry", "ExecutionPlan"]) {
    const a = `${path}: plan`
    const b = `${path}: ${other}`
    console.log(
      `${path}: ${other} / plan: wall ${ratio(results, a, b).text}; CPU ${ratio(results, a, b, "cpuUs").text}`
    )
  }
}
