/**
 * Logging in tests. The router logs a warning before each retry sleep; printed, those lines bury the test report.
 * `it.effect` and `it.scoped` already run without the default logger (@effect/vitest's test environment), but
 * `it.live`, `it.scopedLive` and `Effect.runPromise` log to the console: give those `quietLogs`, or `captureLogs()`
 * when the test asserts on what was logged.
 */
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"

/** One log line as a test reads it back. */
export interface LogLine {
  readonly level: string
  readonly message: string
  readonly annotations: Record<string, unknown>
}

/**
 * A logger in place of the default one that keeps every line in `lines` instead of printing it.
 */
export const captureLogs = (): { readonly lines: ReadonlyArray<LogLine>; readonly layer: Layer.Layer<never> } => {
  const lines: Array<LogLine> = []
  const logger = Logger.make(({ annotations, logLevel, message }) => {
    lines.push({
      level: logLevel.label,
      message: Array.isArray(message) ? message.map(String).join(" ") : String(message),
      annotations: Object.fromEntries(annotations)
    })
  })
  return { lines, layer: Logger.replace(Logger.defaultLogger, logger) }
}

/** The default logger replaced by one that prints nothing. */
export const quietLogsLayer: Layer.Layer<never> = Logger.replace(Logger.defaultLogger, Logger.none)

/** Runs `effect` with its log lines dropped rather than printed. */
export const quietLogs = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.provide(effect, quietLogsLayer)
