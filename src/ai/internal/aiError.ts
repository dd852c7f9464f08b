/**
 * The router's errors as `@effect/ai` `AiError`s: each failure mode to the closest one, with our typed error as its
 * `cause`, and back.
 *
 * @internal
 */
import * as AiError from "@effect/ai/AiError"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import { endpointUrl } from "../../internal/bridge.js"
import type * as Model from "../../Model.js"
import * as RouterError from "../../RouterError.js"

const module = "effect-llm-router"

const requestDetails = (url: string): typeof AiError.HttpRequestDetails.Type => ({
  method: "POST",
  url,
  urlParams: [],
  hash: Option.none(),
  // Never the request's headers: they hold the key.
  headers: {}
})

/**
 * Our error as the closest `AiError`, keeping it as the `cause` (`HttpResponseError` declares no `cause` field; it
 * gets the standard `Error.cause`, which `Data.Error` sets from the same property).
 */
export const toAiError =
  (models: ReadonlyArray<Model.Entry>, method: string) => (error: RouterError.AnyError): AiError.AiError => {
    const description = error.message
    const url = endpointUrl(models, error) ?? module
    const transport = () =>
      new AiError.HttpRequestError({
        module,
        method,
        reason: "Transport",
        request: requestDetails(url),
        description,
        cause: error
      }, { disableValidation: true })
    const unknown = () => new AiError.UnknownError({ module, method, description, cause: error })
    const malformedOutput = () => new AiError.MalformedOutput({ module, method, description, cause: error })
    switch (error._tag) {
      case "InvalidRequest":
      case "RouterConfigError":
        return new AiError.MalformedInput({ module, method, description, cause: error })
      case "NetworkError":
        return transport()
      case "MalformedResponse":
      case "ResponseRejected":
        return malformedOutput()
      case "DeadlineExceeded":
      case "NoModelAvailable":
      case "BudgetExceeded":
        return unknown()
      case "StreamInterrupted":
        switch (error.reason) {
          case "cut":
          case "stall":
            return transport()
          case "truncated":
          case "malformed":
            return malformedOutput()
          case "in-band-error":
            return unknown()
        }
      // falls through (unreachable: the switch above is exhaustive)
      default: {
        // A failure mode of one attempt: a status means the server answered with it.
        if (error.status === undefined) {
          return error._tag === "Timeout" ? transport() : unknown()
        }
        return new AiError.HttpResponseError(
          {
            module,
            method,
            reason: "StatusCode",
            request: requestDetails(url),
            response: { status: error.status, headers: {} },
            description,
            ...(error.body === undefined ? {} : { body: error.body }),
            cause: error
          } as ConstructorParameters<typeof AiError.HttpResponseError>[0],
          { disableValidation: true }
        )
      }
    }
  }

/** The router's error an `AiError` carries as its cause, if it carries one. */
export const routerError = (error: unknown): Option.Option<RouterError.AnyError> => {
  if (!AiError.isAiError(error)) return Option.none()
  const cause = Predicate.hasProperty(error, "cause") ? error.cause : undefined
  return RouterError.isRouterError(cause) ? Option.some(cause) : Option.none()
}

/** `AiError`s that carry one of ours become ours; everything else is unchanged. */
export const unwrap = <E>(error: E): E | RouterError.AnyError => {
  const ours = routerError(error)
  return Option.isSome(ours) ? ours.value : error
}
