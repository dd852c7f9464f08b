/**
 * The routing plan: models in order × retries per model. Runs one attempt at a time, records the trail, applies the
 * retry policy, `Retry-After`, the per-attempt timeout and the total deadline, and decides when to fall back. The
 * attempt itself (non-streaming call, or opening a stream) is a parameter, so both share this machinery.
 *
 * @internal
 */
// Why this steps the policy's Schedule itself instead of handing it to `Effect.retry` or `ExecutionPlan`: not speed
// (bench/micro/plan.mjs, medians of 11 rounds, 2026-11-30: a call whose first attempt succeeds spends 8.7 µs here,
// 13.2 µs in Effect.retry with the same Schedule and 21.1 µs in ExecutionPlan, about 1% of a 460 µs call; a call retried
// once spends 55 µs here and 49 µs in Effect.retry). It is the decisions taken between the Schedule's answer and the
// sleep, which `Effect.retry` does not expose: a `Retry-After` longer than the backoff replaces it, one over the cap or
// one that would pass the deadline falls back at once instead of sleeping, and the trail records each attempt's outcome
// and wait before the wait starts.
import * as Cause from "effect/Cause"
import type * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Random from "effect/Random"
import * as ScheduleDecision from "effect/ScheduleDecision"
import * as Intervals from "effect/ScheduleIntervals"
import * as Scope from "effect/Scope"
import type * as Tracer from "effect/Tracer"
import type { Attempt } from "../Attempt.js"
import type { ChatRequest } from "../ChatRequest.js"
import type { Usage } from "../ChatResponse.js"
import type * as Health from "../Health.js"
import type { Entry, Group, Model, Weighted } from "../Model.js"
import { isGroup } from "../Model.js"
import type { Call } from "../Provider.js"
import type { RetryPolicy } from "../RetryPolicy.js"
import * as RouterError from "../RouterError.js"
import * as construct from "./construct.js"
import * as costs from "./cost.js"
import { formatMillis } from "./format.js"
import * as health from "./health.js"
import type * as hedge from "./hedge.js"
import * as limits from "./limits.js"
import type * as selection from "./selection.js"
import * as telemetry from "./telemetry.js"

/** @internal */
export interface PlanConfig {
  /** The priority list: models and groups of deployments. */
  readonly models: ReadonlyArray<Entry>
  /** What the groups' strategies remember across calls. */
  readonly selection: selection.State
  /** Hedged requests, when the router has them on. */
  readonly hedge: hedge.State | undefined
  /** Tried instead of the rest of the list when a model's content filter refuses the request. */
  readonly contentPolicyFallbacks: ReadonlyArray<Entry> | undefined
  /** The router's budgets, when it has any. */
  readonly budget: BudgetConfig | undefined
  readonly retry: RetryPolicy
  readonly fallbackOn: ReadonlySet<RouterError.AttemptErrorTag>
  readonly attemptTimeoutMillis: number | undefined
  readonly deadlineMillis: number | undefined
  readonly onAttempt: ((attempt: Attempt) => void | Effect.Effect<void>) | undefined
  /** Whether spans are worth creating (a tracer other than the built-in no-export one is installed). */
  readonly traced: boolean
  /** Spans and metrics (see `internal/telemetry.ts`). */
  readonly telemetry: telemetry.State
  /** Deployment health: asked before each attempt, told after it (absent when the router has health off). */
  readonly health: HealthConfig | undefined
}

/** @internal */
export interface BudgetConfig {
  readonly perCall: number | undefined
  readonly perPeriod:
    | { readonly name: string; readonly limit: number; readonly periodMillis: number; readonly budgets: Health.Budgets }
    | undefined
}

/** @internal */
export interface HealthConfig {
  readonly store: Health.Store
  readonly policy: health.Policy
  /** The store's synchronous admission and report, when it keeps its records in this process (`health.syncOf`). */
  readonly sync: health.SyncStore | undefined
}

/**
 * What a failed attempt says about its deployment.
 *
 * @internal
 */
export const healthReport = (error: RouterError.AttemptError): Health.Report => {
  const kind = RouterError.failureModes[error._tag].health
  return kind === "ignored"
    ? released
    : { _tag: "Failure", kind, tag: error._tag, retryAfterMillis: error.retryAfterMillis }
}

const released: Health.Report = { _tag: "Released" }
const succeeded: Health.Report = { _tag: "Success" }

/**
 * What the requests of one hedged call share: the trail, the deployments any of them has sent to (a hedge goes
 * elsewhere: not to one the call is waiting on, nor to one that already failed it), the call's start (its deadline)
 * and, once one has won, which.
 *
 * @internal
 */
export interface HedgeShared {
  readonly trail: Array<Attempt>
  readonly tried: Set<Model>
  readonly startedAt: number
  won: number | undefined
  /** Requests sent by the hedges (not the first request). */
  hedgesSent: number
}

/** @internal */
export interface Success<A> {
  readonly value: A
  readonly model: Model
  readonly trail: ReadonlyArray<Attempt>
  /**
   * A stream's admission, still held (its first content gave the verdict; its end settles it with `ends: true`);
   * undefined when the request already ended or health is off.
   */
  readonly held: health.Permit | undefined
  /** Whether the model served as a deployment of a group (the response names it). */
  readonly inGroup: boolean
  /** A stream's end: its group deployment's request is no longer in flight (for `least-in-flight`). */
  readonly onEnd: (() => void) | undefined
  /** Traced: the serving attempt's span, which a stream ends when it ends. */
  readonly span?: Tracer.Span | undefined
}

/**
 * An attempt: succeeds with a value, or fails with the attempt's error. What it opens it releases in `scope`, which
 * stays open on success (a stream's body is read later) and is closed at once on failure.
 *
 * @internal
 */
export type AttemptFn<A> = (
  call: Call,
  model: Model,
  scope: Scope.Scope
) => Effect.Effect<A, RouterError.AttemptError>

const applyOverrides = (request: ChatRequest, model: Model): ChatRequest =>
  Object.keys(model.overrides).length === 0 ? request : { ...request, ...model.overrides }

const siblingsOf = (models: ReadonlyArray<Entry>, index: number, current: Model) => {
  const out: Array<{ readonly model: string; readonly provider: string }> = []
  for (let i = index + 1; i < models.length; i++) {
    const m = models[i]!
    if (!isGroup(m) && m.endpoint === current.endpoint) out.push({ model: m.name, provider: m.provider })
  }
  return out
}

// An upstream router (GPTRouter) answering that none of the models it was sent is healthy.
const noModelsPattern = /no models? (is |are )?available/i

/**
 * The error that ends a call. When the last model tried sits behind an upstream router that reported no healthy
 * model, nothing in the list can serve: that is `NoModelAvailable`, not one model's outage.
 */
const finalError = (
  error: RouterError.AttemptError,
  trail: ReadonlyArray<Attempt>
): RouterError.RouterError =>
  error._tag === "ServiceUnavailable" && error.body !== undefined && noModelsPattern.test(error.body)
    ? new RouterError.NoModelAvailable({
      reason: `${error.provider}/${error.model} (HTTP ${error.status ?? "?"}): ${error.body}`,
      trail
    }, { disableValidation: true })
    : RouterError.withTrail(error, trail)

/** A cut by the deadline, told apart from the attempt's own timeout. */
class DeadlineCut {
  readonly _tag = "DeadlineCut"
}

interface Ctx<A> extends telemetry.SpanHolder {
  readonly config: PlanConfig
  readonly request: ChatRequest
  readonly stream: boolean
  readonly attemptFn: AttemptFn<A>
  readonly timeoutPhase: "attempt" | "first-token"
  readonly clock: Clock.Clock
  /** The usage a successful non-streaming answer reports (to correct the admission's estimate, and for its cost). */
  readonly usageOf: ((value: A) => Usage | undefined) | undefined
  readonly deadlineAt: number
  readonly trail: Array<Attempt>
  /** A hedged call: what its requests share, and which request this is (0: the first; then the hedges). */
  readonly hedged: { readonly shared: HedgeShared; readonly request: number } | undefined
  /** The last error of a model that was really tried: what the call fails with when the list runs out. */
  lastError: RouterError.AttemptError | undefined
  /** In this pass over the list: whether a request was sent, and the earliest instant a skipped deployment reopens. */
  sent: boolean
  earliestReopen: number
  /** Waited so far for skipped deployments to reopen (bounded by the health policy's `maxWait`). */
  waitedMillis: number
  /** The list being tried: the priority list, or the content-policy fallbacks once a content filter refused. */
  list: ReadonlyArray<Entry>
  /** The largest declared context window a `ContextLengthExceeded` came from: smaller ones are skipped. */
  exceededWindow: number
  /** Whether a model was skipped because the request does not fit its context window. */
  unfit: boolean
}

type Outcome<A> = Effect.Effect<Success<A> & { readonly scope: Scope.CloseableScope }, RouterError.RouterError>

const record = <A>(ctx: Ctx<A>, fields: ConstructorParameters<typeof Attempt>[0]): Effect.Effect<void> => {
  const attempt = construct.attempt(fields)
  ctx.trail.push(attempt)
  const told = ctx.config.telemetry.active
    ? telemetry.recorded(ctx.config.telemetry, attempt, ctx, ctx.stream, ctx.clock)
    : undefined
  const onAttempt = ctx.config.onAttempt
  if (onAttempt === undefined) return told ?? Effect.void
  // A callback's failure or defect must not change the routed call's outcome.
  const called = Effect.catchAllCause(
    Effect.suspend(() => {
      const result = onAttempt(attempt)
      return Effect.isEffect(result) ? result : Effect.void
    }),
    (cause) => Effect.logDebug("onAttempt callback failed", cause)
  )
  return told === undefined ? called : Effect.zipRight(told, called)
}

const deadlineExceeded = <A>(ctx: Ctx<A>, model?: Model) =>
  new RouterError.DeadlineExceeded({
    deadlineMillis: ctx.config.deadlineMillis ?? 0,
    ...(model === undefined ? {} : { model: model.name, provider: model.provider }),
    trail: [...ctx.trail]
  }, { disableValidation: true })

/**
 * Runs the plan. On success the attempt's scope is returned open, owned by the caller.
 *
 * Written as a chain of continuations rather than a generator: a routed call that succeeds at once runs a handful of
 * effects, and this is on the path of every call. The clock is read once from context and then synchronously.
 *
 * @internal
 */
export const run = <A>(
  config: PlanConfig,
  request: ChatRequest,
  stream: boolean,
  attemptFn: AttemptFn<A>,
  timeoutPhase: "attempt" | "first-token",
  usageOf?: (value: A) => Usage | undefined,
  hedged?: { readonly shared: HedgeShared; readonly request: number }
): Outcome<A> =>
  Effect.clockWith((clock) => {
    const startedAt = hedged?.shared.startedAt ?? clock.unsafeCurrentTimeMillis()
    const ctx: Ctx<A> = {
      config,
      request,
      stream,
      attemptFn,
      timeoutPhase,
      clock,
      usageOf,
      deadlineAt: config.deadlineMillis === undefined ? Infinity : startedAt + config.deadlineMillis,
      trail: hedged?.shared.trail ?? [],
      hedged,
      lastError: undefined,
      sent: false,
      earliestReopen: Infinity,
      waitedMillis: 0,
      list: config.models,
      exceededWindow: 0,
      unfit: false,
      attemptSpan: undefined,
      attemptModel: undefined
    }
    return tryModel(ctx, 0)
  })

const tryModel = <A>(ctx: Ctx<A>, index: number): Outcome<A> => {
  const models = ctx.list
  if (index >= models.length) return endOfList(ctx)
  const entry = models[index]!
  // A hedge goes to a deployment the call is not already waiting on.
  if (ctx.hedged !== undefined && ctx.hedged.request > 0 && !isGroup(entry) && ctx.hedged.shared.tried.has(entry)) {
    return tryModel(ctx, index + 1)
  }
  if (isGroup(entry)) {
    const policy = entry.retry ?? ctx.config.retry
    const run: GroupRun = { group: entry, spent: new Set(), round: new Set(), pending: undefined }
    return tryGroup(ctx, index, run, policy, 1, policy.schedule.initial)
  }
  const policy = entry.retry ?? ctx.config.retry
  return tryAttempt(ctx, perModel(ctx, index, entry, policy, undefined, undefined), 1, policy.schedule.initial)
}

const perModel = <A>(
  ctx: Ctx<A>,
  index: number,
  model: Model,
  policy: RetryPolicy,
  group: GroupRun | undefined,
  deployment: Weighted | undefined
): PerModel => {
  const request = applyOverrides(ctx.request, model)
  return {
    index,
    model,
    policy,
    maxRetryAfterMillis: Duration.toMillis(policy.maxRetryAfter),
    request,
    // Estimated only where a limit or a context window counts tokens.
    tokens: (ctx.config.health !== undefined && model.limits?.tokensPerMinute !== undefined) ||
        model.contextWindow !== undefined
      ? limits.estimateTokens(request)
      : 0,
    cost: ctx.config.budget?.perCall !== undefined && model.price !== undefined
      ? costs.estimate(model.price, request)
      : 0,
    siblings: group === undefined ? siblingsOf(ctx.list, index, model) : [],
    isLast: index === ctx.list.length - 1,
    group,
    deployment
  }
}

/**
 * One call's progress through a group: the deployments given up on (a failure no retry fixes), those sent to or
 * skipped in this round, and the retry a failure earned while another deployment was tried at once instead (taken,
 * after its wait, if that one is unavailable too).
 */
interface GroupRun {
  readonly group: Group
  readonly spent: Set<Weighted>
  readonly round: Set<Weighted>
  pending: { readonly attemptNo: number; readonly state: unknown; readonly at: number } | undefined
}

const candidatesOf = (run: GroupRun): ReadonlyArray<Weighted> =>
  run.group.deployments.filter((d) => !run.spent.has(d) && !run.round.has(d))

/**
 * The next attempt of a group: a deployment picked by its strategy among those not given up on nor tried in this
 * round. None left: a retry that is due (after its wait) starts a new round; otherwise the next entry of the list.
 */
const tryGroup = <A>(
  ctx: Ctx<A>,
  index: number,
  run: GroupRun,
  policy: RetryPolicy,
  attemptNo: number,
  scheduleState: unknown
): Outcome<A> => {
  let candidates = candidatesOf(run)
  const hedged = ctx.hedged
  if (hedged !== undefined && hedged.request > 0) {
    candidates = candidates.filter((d) => !hedged.shared.tried.has(d.model))
  }
  if (candidates.length === 0) {
    const pending = run.pending
    run.pending = undefined
    run.round.clear()
    if (pending === undefined || pending.at >= ctx.deadlineAt) return tryModel(ctx, index + 1)
    return Effect.zipRight(
      Effect.sleep(Duration.millis(Math.max(0, pending.at - ctx.clock.unsafeCurrentTimeMillis()))),
      Effect.suspend(() => tryGroup(ctx, index, run, policy, pending.attemptNo, pending.state))
    )
  }
  return Effect.flatMap(Random.next, (r1) =>
    Effect.flatMap(Random.next, (r2) => {
      const { selection } = ctx.config
      const picked = selection.pick(
        run.group,
        selection.available(candidates, ctx.clock.unsafeCurrentTimeMillis()),
        r1,
        r2
      )
      return tryAttempt(ctx, perModel(ctx, index, picked.model, policy, run, picked), attemptNo, scheduleState)
    }))
}

/**
 * The list ran out after skips (a model that fails as the last one ends the call itself). When a model was tried,
 * the call fails with its error. When every deployment was skipped, the call waits for the earliest reopening if that
 * comes before the deadline and within the health policy's `maxWait`, then goes over the list again; otherwise it
 * fails with `NoModelAvailable`, naming when the earliest one reopens.
 */
const endOfList = <A>(ctx: Ctx<A>): Outcome<A> => {
  if (ctx.lastError !== undefined) return Effect.fail(finalError(ctx.lastError, [...ctx.trail]))
  const now = ctx.clock.unsafeCurrentTimeMillis()
  const reopen = ctx.earliestReopen
  const wait = Math.max(0, reopen - now)
  const maxWait = ctx.config.health?.policy.maxWaitMillis ?? 0
  if (!ctx.sent && Number.isFinite(reopen) && reopen < ctx.deadlineAt && ctx.waitedMillis + wait <= maxWait) {
    ctx.waitedMillis += wait
    ctx.earliestReopen = Infinity
    return Effect.zipRight(
      Effect.logDebug(`Every deployment is unavailable: waiting ${formatMillis(wait)} for the first to reopen`),
      Effect.zipRight(Effect.sleep(Duration.millis(wait)), Effect.suspend(() => tryModel(ctx, 0)))
    )
  }
  return Effect.fail(
    new RouterError.NoModelAvailable({
      reason: Number.isFinite(reopen)
        ? `every deployment is unavailable (circuit open or cooling down); the first reopens in ${formatMillis(wait)}${
          reopen >= ctx.deadlineAt ? ", after the deadline" : ""
        }`
        : ctx.unfit
        ? "the request does not fit the context window of any model left (see the trail)"
        : "every deployment is unavailable (circuit open or cooling down)",
      ...(Number.isFinite(reopen) ? { reopensAt: reopen } : {}),
      trail: [...ctx.trail]
    }, { disableValidation: true })
  )
}

interface PerModel {
  readonly index: number
  readonly model: Model
  readonly policy: RetryPolicy
  readonly maxRetryAfterMillis: number
  readonly request: ChatRequest
  /** The request's token estimate, reserved at admission (0 when no limit counts tokens). */
  readonly tokens: number
  /** The request's estimated cost on this model (0 when no per-call budget or no price). */
  readonly cost: number
  readonly siblings: ReadonlyArray<{ readonly model: string; readonly provider: string }>
  readonly isLast: boolean
  /** The group this attempt belongs to, and its deployment there. */
  readonly group: GroupRun | undefined
  readonly deployment: Weighted | undefined
}

const tryAttempt = <A>(ctx: Ctx<A>, m: PerModel, attemptNo: number, scheduleState: unknown): Outcome<A> => {
  const attemptStart = ctx.clock.unsafeCurrentTimeMillis()
  if (ctx.deadlineAt - attemptStart <= 0) return Effect.fail(deadlineExceeded(ctx))
  ctx.attemptModel = m.model
  const budget = ctx.config.budget
  if (budget !== undefined) {
    const perCall = budget.perCall
    if (perCall !== undefined && m.cost > perCall) {
      const reason = `its estimated cost (${round(m.cost)}) exceeds the per-call budget (${perCall})`
      return skip(ctx, m, attemptNo, scheduleState, attemptStart, { _tag: "Skipped", reason, until: undefined })
    }
    const perPeriod = budget.perPeriod
    if (perPeriod !== undefined && m.model.price !== undefined) {
      // Spent for this period: nothing more is sent until it resets.
      return Effect.flatMap(
        perPeriod.budgets.spent(perPeriod.name, attemptStart, perPeriod.periodMillis),
        (spent) =>
          spent >= perPeriod.limit
            ? Effect.fail(
              new RouterError.BudgetExceeded({
                budget: perPeriod.name,
                limit: perPeriod.limit,
                spent,
                resetsAt: costs.periodOf(attemptStart, perPeriod.periodMillis).end,
                trail: [...ctx.trail]
              }, { disableValidation: true })
            )
            : admitAttempt(ctx, m, attemptNo, scheduleState, attemptStart)
      )
    }
  }
  return admitAttempt(ctx, m, attemptNo, scheduleState, attemptStart)
}

const round = (amount: number): number => Math.round(amount * 1e6) / 1e6

const admitAttempt = <A>(
  ctx: Ctx<A>,
  m: PerModel,
  attemptNo: number,
  scheduleState: unknown,
  attemptStart: number
): Outcome<A> => {
  const window = m.model.contextWindow
  if (window !== undefined && (m.tokens > window || window <= ctx.exceededWindow)) {
    // Nothing is sent where the request cannot fit; this says nothing about the deployment's health.
    ctx.unfit = true
    const reason = m.tokens > window
      ? `the request (about ${m.tokens} tokens) exceeds its context window (${window})`
      : `its context window (${window}) is not larger than the one the request exceeded (${ctx.exceededWindow})`
    return skip(ctx, m, attemptNo, scheduleState, attemptStart, { _tag: "Skipped", reason, until: undefined })
  }
  const health = ctx.config.health
  // From the admission until the attempt's report is registered nothing may interrupt: an admission never reported
  // would leave a probe taken, or a place under the limits, for good. Only the attempt itself, and what follows its
  // report, are interruptible. Without health too the attempt runs in this mask: what follows it (its scope closed or
  // handed over, the trail) is then sure to run, with no `onExit` of its own.
  if (health === undefined) {
    return Effect.uninterruptibleMask((restore) =>
      send(ctx, m, attemptNo, scheduleState, attemptStart, undefined, restore)
    )
  }
  const sync = health.sync
  if (sync !== undefined) {
    // A store in this process admits at once, inside the mask (no effect around it).
    return Effect.uninterruptibleMask((restore) => {
      const admission = sync.admit(m.model, health.policy, attemptStart, m.tokens)
      return admission._tag === "Admitted"
        ? send(ctx, m, attemptNo, scheduleState, attemptStart, admission, restore)
        : restore(skip(ctx, m, attemptNo, scheduleState, attemptStart, admission))
    })
  }
  return Effect.uninterruptibleMask((restore) =>
    Effect.flatMap(
      health.store.admit(m.model, health.policy, attemptStart, m.tokens),
      (admission) =>
        admission._tag === "Admitted"
          ? send(ctx, m, attemptNo, scheduleState, attemptStart, admission, restore)
          : restore(skip(ctx, m, attemptNo, scheduleState, attemptStart, admission))
    )
  )
}

type Restore = <X, E, R>(effect: Effect.Effect<X, E, R>) => Effect.Effect<X, E, R>

/**
 * Adds a served request's cost to the router's budget for the period.
 *
 * @internal
 */
export const charge = (config: PlanConfig, cost: number, now: number): Effect.Effect<void> => {
  const perPeriod = config.budget?.perPeriod
  return perPeriod === undefined || cost <= 0
    ? Effect.void
    : Effect.asVoid(perPeriod.budgets.charge(perPeriod.name, now, perPeriod.periodMillis, cost))
}

/**
 * A deployment's breaker changed state: a log line, an event on the current span when traced (and `event`), and the
 * transitions metric when on.
 *
 * @internal
 */
export const announce = (
  model: Model,
  transition: Health.Transition,
  now: number,
  telemetryState: telemetry.State,
  event = true
): Effect.Effect<void> => {
  const reopens = transition.reopensAt === undefined ? "" : `; reopens in ${formatMillis(transition.reopensAt - now)}`
  const reason = transition.reason === undefined ? "" : ` (${transition.reason})`
  const log = Effect.logInfo(
    `Deployment ${model.provider}/${model.name}: ${transition.from} → ${transition.to}${reason}${reopens}`
  ).pipe(Effect.annotateLogs({ model: model.name, provider: model.provider, from: transition.from, to: transition.to }))
  if (!telemetryState.active) return log
  return Effect.zipRight(log, telemetry.breakerChanged(telemetryState, model, transition, now, event))
}

/** The deployment's health said no: nothing is sent, the trail says why, and the next model is tried. */
const skip = <A>(
  ctx: Ctx<A>,
  m: PerModel,
  attemptNo: number,
  scheduleState: unknown,
  now: number,
  admission: Extract<Health.Admission, { readonly _tag: "Skipped" }>
): Outcome<A> => {
  const until = admission.until
  if (until !== undefined) ctx.earliestReopen = Math.min(ctx.earliestReopen, until)
  const note = until === undefined ? admission.reason : `${admission.reason}; reopens in ${formatMillis(until - now)}`
  const run = m.group
  if (run !== undefined) {
    run.round.add(m.deployment!)
    // Remembered across calls, so that the group's next picks go elsewhere while it is unavailable.
    ctx.config.selection.statsOf(m.model).unavailableUntil = until ?? now
  }
  return Effect.zipRight(
    record(ctx, {
      index: ctx.trail.length + 1,
      attempt: attemptNo,
      model: m.model.name,
      provider: m.model.provider,
      ...(run === undefined ? {} : { deployment: health.deploymentId(m.model) }),
      startedAt: now,
      endedAt: now,
      outcome: "skipped",
      note,
      ...(until === undefined ? {} : { reopensAt: until }),
      ...(admission.limit === undefined ? {} : { limit: admission.limit })
    }),
    Effect.suspend(() =>
      run === undefined
        ? tryModel(ctx, m.index + 1)
        : tryGroup(ctx, m.index, run, m.policy, attemptNo, scheduleState)
    )
  )
}

const send = <A>(
  ctx: Ctx<A>,
  m: PerModel,
  attemptNo: number,
  scheduleState: unknown,
  attemptStart: number,
  admission: Extract<Health.Admission, { readonly _tag: "Admitted" }> | undefined,
  restore: Restore
): Outcome<A> => {
  const { config, trail } = ctx
  const model = m.model
  const remaining = ctx.deadlineAt - attemptStart
  ctx.sent = true
  // A group's deployment: its requests in flight and latency feed the group's strategy.
  const stats = m.group === undefined ? undefined : config.selection.statsOf(model)
  let inFlight = false
  const ended = () => {
    if (inFlight) {
      inFlight = false
      stats!.inFlight--
    }
  }
  if (stats !== undefined) {
    stats.inFlight++
    inFlight = true
  }
  const hedged = ctx.hedged
  if (hedged !== undefined) {
    hedged.shared.tried.add(model)
    if (hedged.request > 0) hedged.shared.hedgesSent++
  }
  const probe = admission?.probe === true
  const permit = (ends: boolean, usedTokens: number | undefined): health.Permit => ({
    probe,
    ends,
    ...(admission?.lease === undefined ? {} : { lease: admission.lease }),
    reservedTokens: m.tokens,
    ...(usedTokens === undefined ? {} : { usedTokens })
  })
  const tell = (
    report: Health.Report,
    ends = true,
    usedTokens: number | undefined = undefined
  ): Effect.Effect<Health.Transition | undefined> => {
    if (config.health === undefined) return Effect.succeed(undefined)
    const now = ctx.clock.unsafeCurrentTimeMillis()
    return Effect.tap(
      config.health.store.report(model, config.health.policy, now, report, permit(ends, usedTokens)),
      (transition) =>
        transition.from === transition.to ? Effect.void : announce(model, transition, now, config.telemetry)
    )
  }
  // The success's report, where it is hot: a store in this process is told at once, and nothing is left to run
  // unless the deployment's state changed (undefined).
  const tellNow = (
    report: Health.Report,
    ends: boolean,
    usedTokens: number | undefined
  ): Effect.Effect<unknown> | undefined => {
    const h = config.health
    if (h === undefined) return undefined
    if (h.sync === undefined) return tell(report, ends, usedTokens)
    const now = ctx.clock.unsafeCurrentTimeMillis()
    const transition = h.sync.report(model, h.policy, now, report, permit(ends, usedTokens))
    return transition.from === transition.to ? undefined : announce(model, transition, now, config.telemetry)
  }
  const call: Call = {
    model: model.name,
    provider: model.provider,
    attempt: attemptNo,
    request: m.request,
    stream: ctx.stream,
    siblings: m.siblings
  }
  const own = config.attemptTimeoutMillis ?? Infinity
  const limit = Math.min(own, remaining)
  const timedOut = () =>
    new RouterError.Timeout({
      provider: model.provider,
      model: model.name,
      attempt: attemptNo,
      phase: ctx.timeoutPhase,
      afterMillis: limit
    }, { disableValidation: true })

  return Effect.flatMap(Scope.make(), (scope) => {
    let attempt: Effect.Effect<A, RouterError.AttemptError | DeadlineCut> = ctx.attemptFn(call, model, scope)
    if (Number.isFinite(limit)) {
      attempt = Effect.timeoutFail(attempt, {
        duration: Duration.millis(limit),
        onTimeout: () => limit < own ? new DeadlineCut() : timedOut()
      })
    }
    if (config.traced) {
      attempt = telemetry.inAttemptSpan(config.telemetry, ctx, attempt, model, m.request, ctx.stream, {
        attempt: attemptNo,
        index: trail.length + 1,
        deployment: stats === undefined ? undefined : health.deploymentId(model),
        hedge: hedged?.request,
        probe
      })
    }
    const base = () => ({
      index: trail.length + 1,
      attempt: attemptNo,
      model: model.name,
      provider: model.provider,
      startedAt: attemptStart,
      endedAt: ctx.clock.unsafeCurrentTimeMillis(),
      ...(stats === undefined ? {} : { deployment: health.deploymentId(model) }),
      ...(hedged === undefined ? {} : { hedge: hedged.request }),
      ...(probe ? { probe: true } : {})
    })
    // The attempt's end, however it ends: a group deployment's request is no longer in flight (a stream's is, until
    // it ends).
    const cleanup = (exit: Exit.Exit<A, RouterError.AttemptError | DeadlineCut>): Effect.Effect<void> => {
      if (stats !== undefined) {
        if (!Exit.isSuccess(exit) || !ctx.stream) ended()
      }
      if (Exit.isSuccess(exit)) return Effect.void
      // Anything but success closes the scope now, which aborts the request. An interruption (the caller cancelled)
      // tells health nothing about the deployment.
      if (!Exit.isInterrupted(exit)) return Scope.close(scope, exit)
      const closed = config.health === undefined
        ? Scope.close(scope, exit)
        : Effect.zipRight(Scope.close(scope, exit), tell(released))
      // A hedged call's request that lost: the trail says so.
      if (hedged === undefined) telemetry.abandon(ctx, ctx.clock)
      return hedged === undefined ? closed : Effect.zipRight(
        closed,
        record(ctx, {
          ...base(),
          outcome: "cancelled",
          note: hedged.shared.won === undefined
            ? "the call was cancelled"
            : `request ${hedged.shared.won + 1} of the call won`
        })
      )
    }
    const onFailure = (failure: RouterError.AttemptError | DeadlineCut): Outcome<A> => {
      const fields = base()
      if (failure._tag === "DeadlineCut") {
        return Effect.zipRight(
          tell(released),
          restore(Effect.zipRight(
            record(ctx, { ...fields, outcome: "failed", error: timedOut(), note: "cut by the deadline" }),
            Effect.suspend(() => Effect.fail(deadlineExceeded(ctx, model)))
          ))
        )
      }
      ctx.lastError = failure
      return Effect.flatMap(
        tell(healthReport(failure)),
        (transition) =>
          restore(afterFailure(ctx, m, attemptNo, scheduleState, failure, fields, transition?.to === "open"))
      )
    }
    // A stream's first content is the verdict on the deployment, but its request goes on: the stream's end settles it.
    const onSuccess = (value: A): Outcome<A> => {
      cleanup(Exit.succeed(value))
      // A stream holds its admission until it ends only where a limit counts it (concurrency, or its tokens): a
      // shared store is spared a round trip per stream otherwise.
      const holds = ctx.stream && admission !== undefined &&
        (model.limits?.maxConcurrent !== undefined || model.limits?.tokensPerMinute !== undefined)
      const usage = ctx.stream ? undefined : ctx.usageOf?.(value)
      const cost = usage === undefined || model.price === undefined ? undefined : costs.of(model.price, usage)
      const fields = cost === undefined ? base() : { ...base(), cost }
      if (stats !== undefined) config.selection.observe(model, fields.endedAt - attemptStart)
      if (m.index === 0) config.hedge?.observe(fields.endedAt - attemptStart)
      const success = {
        value,
        model,
        trail,
        scope,
        held: holds ? { ...permit(true, undefined), probe: false } : undefined,
        inGroup: stats !== undefined,
        onEnd: stats !== undefined && ctx.stream ? ended : undefined,
        span: ctx.attemptSpan
      }
      // Health is told first, then the budget charged, then the trail and its callbacks.
      const told = ctx.stream ? tellNow(succeeded, !holds, undefined) : tellNow(succeeded, true, usage?.totalTokens)
      const charged = cost === undefined ? undefined : charge(config, cost, fields.endedAt)
      // Interrupted after its success (a hedge that lost by a hair, or the caller): nobody will own the scope. (What
      // `Effect.onInterrupt` does, without a mask of its own: this runs in the attempt's.)
      let out: Outcome<A> = Effect.matchCauseEffect(restore(record(ctx, { ...fields, outcome: "success" })), {
        onFailure: (cause) => {
          if (!Cause.isInterruptedOnly(cause)) return Effect.failCause(cause)
          telemetry.abandon(ctx, ctx.clock)
          return Effect.zipRight(Scope.close(scope, Exit.void), Effect.failCause(cause))
        },
        onSuccess: () => Effect.succeed(success)
      })
      if (charged !== undefined) out = Effect.zipRight(charged, out)
      return told === undefined ? out : Effect.zipRight(told, out)
    }
    // What `Effect.onExit` then `Effect.matchEffect` did, in one step: the whole runs in the attempt's mask (see
    // `admitAttempt`), so this handler runs however the attempt ends, and only `restore` lets an interruption in.
    return Effect.matchCauseEffect(restore(attempt), {
      onSuccess,
      onFailure: (cause) => {
        const exit = Exit.failCause(cause)
        return Effect.matchEffect(
          Effect.matchCauseEffect(cleanup(exit), {
            onFailure: (cause2) => Effect.failCause(Cause.sequential(cause, cause2)),
            onSuccess: () => exit
          }),
          { onFailure, onSuccess }
        )
      }
    })
  })
}

const afterFailure = <A>(
  ctx: Ctx<A>,
  m: PerModel,
  attemptNo: number,
  scheduleState: unknown,
  error: RouterError.AttemptError,
  fields: Omit<ConstructorParameters<typeof Attempt>[0], "outcome">,
  opened: boolean
): Outcome<A> => {
  const { model, policy } = m
  const attemptEnd = fields.endedAt
  if (error._tag === "ContextLengthExceeded" && model.contextWindow !== undefined) {
    ctx.exceededWindow = Math.max(ctx.exceededWindow, model.contextWindow)
  }
  // A content filter's refusal moves to the content-policy list instead of the rest of this one.
  const contentList = ctx.config.contentPolicyFallbacks
  const toContentList = error._tag === "ContentFiltered" && contentList !== undefined && ctx.list !== contentList
  const canFallBack = toContentList || (!m.isLast && ctx.config.fallbackOn.has(error._tag))
  const attemptRecord = { ...fields, error }

  const giveUp = (note: string | undefined): Outcome<A> =>
    canFallBack
      ? Effect.zipRight(
        record(ctx, {
          ...attemptRecord,
          outcome: "fallback",
          ...(toContentList
            ? { note: "refused by its content filter: the content-policy fallbacks are tried" }
            : note === undefined
            ? {}
            : { note })
        }),
        Effect.suspend(() => {
          if (!toContentList) return tryModel(ctx, m.index + 1)
          ctx.list = contentList
          return tryModel(ctx, 0)
        })
      )
      : Effect.zipRight(
        record(ctx, { ...attemptRecord, outcome: "failed", ...(note === undefined ? {} : { note }) }),
        // Suspended: the trail is copied after `record` has added this attempt.
        Effect.suspend(() => Effect.fail(finalError(error, [...ctx.trail])))
      )

  // In a group: another deployment, not given up on nor tried in this round, takes the next attempt at once.
  const run = m.group
  const deployment = m.deployment
  const another = () => run!.group.deployments.some((d) => d !== deployment && !run!.spent.has(d) && !run!.round.has(d))
  if (!policy.retryOn.has(error._tag)) {
    if (run !== undefined) {
      run.spent.add(deployment!)
      if (!toContentList && ctx.config.fallbackOn.has(error._tag) && another()) {
        return Effect.zipRight(
          record(ctx, { ...attemptRecord, outcome: "fallback", note: "next deployment of the group" }),
          Effect.suspend(() => tryGroup(ctx, m.index, run, policy, attemptNo + 1, scheduleState))
        )
      }
    }
    return giveUp(opened ? "its circuit opened" : undefined)
  }
  return Effect.flatMap(policy.schedule.step(attemptEnd, error, scheduleState as never), ([nextState, , decision]) => {
    if (ScheduleDecision.isDone(decision)) {
      return giveUp(attemptNo > 1 ? `retries spent after ${attemptNo} attempts` : undefined)
    }
    let wait = Math.max(0, Math.round(Intervals.start(decision.intervals) - attemptEnd))
    if (run !== undefined) {
      run.round.add(deployment!)
      if (another()) {
        // The wait is kept for when every other deployment turns out unavailable too.
        run.pending = {
          attemptNo: attemptNo + 1,
          state: nextState,
          at: attemptEnd + Math.max(wait, error.retryAfterMillis ?? 0)
        }
        return Effect.zipRight(
          record(ctx, { ...attemptRecord, outcome: "retry", waitMillis: 0, note: "next deployment of the group" }),
          Effect.suspend(() => tryGroup(ctx, m.index, run, policy, attemptNo + 1, nextState))
        )
      }
    }
    // Its breaker just opened: a retry would only be skipped, so move on now instead of waiting for it.
    if (opened) return giveUp("its circuit opened")
    let skip: string | undefined
    const retryAfter = error.retryAfterMillis
    if (retryAfter !== undefined) {
      if (retryAfter > m.maxRetryAfterMillis) {
        skip = `server asked to wait ${formatMillis(retryAfter)}, over the ${formatMillis(m.maxRetryAfterMillis)} cap`
      } else {
        // The server's wait wins over a shorter backoff; jitter never shortens it.
        wait = Math.max(wait, retryAfter)
      }
    }
    if (skip === undefined && attemptEnd + wait >= ctx.deadlineAt) {
      const note = `waiting ${formatMillis(wait)} would pass the deadline`
      if (!canFallBack) {
        // Nothing else to try within the deadline: the deadline ends the call (now, rather than after a sleep that
        // could not lead to an attempt), and this attempt's error is in the trail.
        return Effect.zipRight(
          record(ctx, { ...attemptRecord, outcome: "failed", note }),
          Effect.suspend(() => Effect.fail(deadlineExceeded(ctx)))
        )
      }
      skip = note
    }
    if (skip !== undefined) return giveUp(skip)
    return record(ctx, { ...attemptRecord, outcome: "retry", waitMillis: wait }).pipe(
      Effect.zipRight(
        Effect.logWarning(
          `Retrying ${model.provider}/${model.name} in ${formatMillis(wait)} after ${error._tag} (attempt ${attemptNo})`
        ).pipe(Effect.annotateLogs({
          model: model.name,
          provider: model.provider,
          attempt: attemptNo,
          error: error._tag,
          waitMillis: wait
        }))
      ),
      Effect.zipRight(Effect.sleep(Duration.millis(wait))),
      Effect.zipRight(Effect.suspend(() => {
        if (run === undefined) return tryAttempt(ctx, m, attemptNo + 1, nextState)
        // A new round over the group's deployments.
        run.round.clear()
        run.pending = undefined
        return tryGroup(ctx, m.index, run, policy, attemptNo + 1, nextState)
      }))
    )
  })
}
