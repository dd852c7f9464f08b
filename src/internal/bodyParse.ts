/**
 * A response body's text as JSON or as URL parameters, for the client layers' responses (`FetchRouterHttpClient`,
 * `NodeRouterHttpClient`): a body that does not parse is the response's own decode error.
 *
 * @internal
 */
import * as UrlParams from "@effect/platform/UrlParams"
import * as Effect from "effect/Effect"

/** The text as JSON (an empty body is `null`, as in the platform's responses). @internal */
export const json = <E>(
  text: Effect.Effect<string, E>,
  decodeError: (cause: unknown) => E
): Effect.Effect<unknown, E> =>
  Effect.flatMap(text, (body) => {
    try {
      return Effect.succeed(body === "" ? null : JSON.parse(body) as unknown)
    } catch (cause) {
      return Effect.fail(decodeError(cause))
    }
  })

/** The text as URL parameters. @internal */
export const urlParams = <E>(
  text: Effect.Effect<string, E>,
  decodeError: (cause: unknown) => E
): Effect.Effect<UrlParams.UrlParams, E> =>
  Effect.flatMap(text, (body) => {
    try {
      return Effect.succeed(UrlParams.fromInput(new URLSearchParams(body)))
    } catch (cause) {
      return Effect.fail(decodeError(cause))
    }
  })
