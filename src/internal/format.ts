/**
 * Text shared by error messages, the trail's formatters and log lines.
 *
 * @internal
 */

/**
 * `1.5s` from 1500, `250ms` from 250.
 *
 * @internal
 */
export const formatMillis = (millis: number): string =>
  millis >= 1000 ? `${Number((millis / 1000).toFixed(3))}s` : `${Math.round(millis)}ms`

/**
 * A failure mode's tag as words: `RateLimited` → `rate limited`.
 *
 * @internal
 */
export const tagInWords = (tag: string): string => tag.replace(/(?<=[a-z])(?=[A-Z])/g, " ").toLowerCase()
