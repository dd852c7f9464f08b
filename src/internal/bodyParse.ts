/**
 * What the client layers' responses share (`FetchRouterHttpClient`, `RouterHttpClient`, `NodeRouterHttpClient`): the
 * body's text as JSON or as URL parameters (a body that does not parse is the response's own decode error), and how a
 * response shows itself.
 *
 * @internal
 */
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as UrlParams from "@effect/platform/UrlParams"
import * as Effect from "effect/Effect"
import * as Inspectable from "effect/Inspectable"
import * as Option from "effect/Option"

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

/**
 * A response as `toJSON` shows it: only what is already known (inspecting a response must not start reading its body),
 * its body when it was read as text.
 *
 * @internal
 */
export const inspect = (response: HttpClientResponse.HttpClientResponse, text: string | undefined): unknown => ({
  _id: "@effect/platform/HttpClientResponse",
  request: response.request.toJSON(),
  status: response.status,
  headers: Inspectable.redact(response.headers),
  remoteAddress: Option.none<string>().toJSON(),
  ...(text === undefined ? {} : { body: text })
})
