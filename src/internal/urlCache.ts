/**
 * A request's URL for the client layers' direct sends, remembered. `new URL` is a measurable part of a loopback call
 * and a router sends to a handful of URLs, so what each layer keeps of a plain URL (no URL parameters, no hash) is
 * computed once.
 *
 * @internal
 */
import * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as UrlParams from "@effect/platform/UrlParams"

const maxUrls = 512

/**
 * A resolver keeping `keep(url)` per plain URL (at most 512, then it starts again); a URL that does not parse is a
 * `RequestError` "InvalidUrl".
 *
 * @internal
 */
export const make = <A>(
  keep: (url: URL) => A
): (request: HttpClientRequest.HttpClientRequest) => A | HttpClientError.RequestError => {
  const kept = new Map<string, A>()
  return (request) => {
    const plain = request.urlParams.length === 0 && request.hash._tag === "None"
    if (plain) {
      const cached = kept.get(request.url)
      if (cached !== undefined) return cached
    }
    const url = UrlParams.makeUrl(request.url, request.urlParams, request.hash)
    if (url._tag === "Left") {
      return new HttpClientError.RequestError({ request, reason: "InvalidUrl", cause: url.left })
    }
    const value = keep(url.right)
    if (plain) {
      if (kept.size >= maxUrls) kept.clear()
      kept.set(request.url, value)
    }
    return value
  }
}
