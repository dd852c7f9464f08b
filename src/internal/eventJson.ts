/**
 * The JSON of one server-sent event, as every protocol's stream decoder reads it: the value, or {@link notJson}, which
 * {@link notJsonOutcome} turns into the decoder's `Malformed` outcome.
 *
 * @internal
 */
import type { EventOutcome } from "../Provider.js"

/** @internal */
export const notJson: unique symbol = Symbol("effect-llm-router/notJson")

/** An event's data parsed as JSON, or {@link notJson}. @internal */
export const eventJson = (data: string): unknown => {
  try {
    return JSON.parse(data)
  } catch {
    return notJson
  }
}

/** What a decoder answers for an event whose data is not JSON. @internal */
export const notJsonOutcome = (data: string): EventOutcome => ({
  _tag: "Malformed",
  reason: `event is not JSON: ${data.slice(0, 80)}`
})
