/**
 * Cost: a model's price applied to a response's usage, or to a request's estimate; the budget per period kept in
 * memory (a store without budgets of its own, and the Redis store's fallback).
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type { ChatRequest } from "../ChatRequest.js"
import type * as Health from "../Health.js"
import type { Price } from "../Model.js"
import * as RouterError from "../RouterError.js"
import { estimateTokens } from "./limits.js"

/** The cost of a usage at a price (per million tokens). @internal */
export const of = (price: Price, usage: { readonly promptTokens: number; readonly completionTokens: number }) =>
  (usage.promptTokens * price.input + usage.completionTokens * price.output) / 1_000_000

/**
 * A request's cost before it is sent: its prompt's estimate at the input price, its `max_tokens` at the output price.
 *
 * @internal
 */
export const estimate = (price: Price, request: ChatRequest): number => {
  const completion = request.max_tokens ?? 0
  return of(price, { promptTokens: estimateTokens(request) - completion, completionTokens: completion })
}

/** Checks a price; a bad one is a `RouterConfigError` naming it. @internal */
export const checkPrice = (price: Price | undefined, option: string): RouterError.RouterConfigError | undefined => {
  if (price === undefined) return undefined
  for (const key of ["input", "output"] as const) {
    const value = price?.[key]
    if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
      return new RouterError.RouterConfigError({
        option: `${option}.${key}`,
        reason: `must be a finite price ≥ 0 per million tokens (got ${String(value)})`
      })
    }
  }
  return undefined
}

/**
 * The period of `now` for a budget: periods are aligned on the epoch (a day's budget resets at midnight UTC).
 *
 * @internal
 */
export const periodOf = (now: number, periodMillis: number) => {
  const start = Math.floor(now / periodMillis) * periodMillis
  return { start, end: start + periodMillis }
}

/**
 * Budgets in this process's memory: what each has spent in its current period.
 *
 * @internal
 */
export const makeMemory = (): Health.Budgets => {
  const spent = new Map<string, { readonly start: number; amount: number }>()
  const current = (name: string, now: number, periodMillis: number) => {
    const { start } = periodOf(now, periodMillis)
    let entry = spent.get(name)
    if (entry === undefined || entry.start !== start) {
      entry = { start, amount: 0 }
      spent.set(name, entry)
    }
    return entry
  }
  return {
    spent: (name, now, periodMillis) => Effect.sync(() => current(name, now, periodMillis).amount),
    charge: (name, now, periodMillis, amount) =>
      Effect.sync(() => {
        const entry = current(name, now, periodMillis)
        entry.amount += amount
        return entry.amount
      })
  }
}
