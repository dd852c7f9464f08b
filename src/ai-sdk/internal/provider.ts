/**
 * The router as an AI SDK provider (language-model specification v3): one `ManagedRuntime` per provider holding the
 * HTTP client, one router per chain built on first use and kept (its deployment health carries across calls),
 * `doGenerate` and `doStream` run on that runtime with the call's abort signal interrupting the fiber.
 *
 * @internal
 */
import type {
  LanguageModelV3,
  LanguageModelV3CallOptions,
  LanguageModelV3Content,
  LanguageModelV3FinishReason,
  LanguageModelV3GenerateResult,
  LanguageModelV3StreamPart,
  LanguageModelV3StreamResult,
  LanguageModelV3Usage,
  SharedV3ProviderMetadata
} from "@ai-sdk/provider"
import { APICallError, NoSuchModelError } from "@ai-sdk/provider"
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Exit from "effect/Exit"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { Attempt } from "../../Attempt.js"
import type { ChatChunk } from "../../ChatChunk.js"
import type * as ChatRequest from "../../ChatRequest.js"
import type { ChatResponse } from "../../ChatResponse.js"
import * as bridge from "../../internal/bridge.js"
import * as Router from "../../Router.js"
import * as RouterError from "../../RouterError.js"
import * as RouterHttpClient from "../../RouterHttpClient.js"
import type { Options, Provider } from "../AiSdk.js"
import { toRequest } from "./request.js"

const defaultName = "effect-llm-router"

const usageOf = (
  usage: { readonly promptTokens: number; readonly completionTokens: number } | undefined
): LanguageModelV3Usage => ({
  inputTokens: { total: usage?.promptTokens, noCache: undefined, cacheRead: undefined, cacheWrite: undefined },
  outputTokens: { total: usage?.completionTokens, text: undefined, reasoning: undefined }
})

const finishReasonOf = (reason: bridge.FinishReason, raw: string | null | undefined): LanguageModelV3FinishReason => ({
  unified: reason === "unknown" ? "other" : reason,
  raw: raw ?? undefined
})

const routeMetadata = (model: string, provider: string, trail: ReadonlyArray<Attempt>): SharedV3ProviderMetadata => ({
  [bridge.metadataKey]: { model, provider, trail: bridge.trailToJson(trail) as any }
})

/** Our error as the SDK's `APICallError`: never retryable (the router retried already), ours as the cause. */
export const toApiCallError = (
  router: Router.Service,
  chain: string,
  request: ChatRequest.ChatRequest,
  error: RouterError.AnyError
): APICallError =>
  new APICallError({
    message: error.message,
    url: bridge.endpointUrl(router.models, error) ?? `${defaultName}:${chain}`,
    requestBodyValues: request,
    ...("status" in error && error.status !== undefined ? { statusCode: error.status } : {}),
    ...("body" in error && error.body !== undefined ? { responseBody: error.body } : {}),
    isRetryable: false,
    cause: error,
    data: {
      _tag: error._tag,
      ...("trail" in error && error.trail !== undefined ? { trail: bridge.trailToJson(error.trail) } : {})
    }
  })

/** The router's error in an error the SDK threw or streamed: its cause, or a cause of its cause, or a retry's. */
export const routerError = (error: unknown): RouterError.AnyError | undefined => {
  const seen = new Set<unknown>()
  const queue: Array<unknown> = [error]
  while (queue.length > 0) {
    const next = queue.shift()
    if (next === null || typeof next !== "object" || seen.has(next)) continue
    seen.add(next)
    if (RouterError.isRouterError(next)) return next
    const { cause, errors, lastError } = next as { cause?: unknown; errors?: unknown; lastError?: unknown }
    queue.push(cause, lastError)
    if (Array.isArray(errors)) queue.push(...errors)
  }
  return undefined
}

const abortReason = (signal: AbortSignal | undefined): unknown =>
  signal?.reason ?? new DOMException("This operation was aborted", "AbortError")

/** What a failed run throws: the abort reason if the call was aborted, the SDK error for ours, or the defect. */
const thrown = <E extends RouterError.AnyError>(
  cause: Cause.Cause<E>,
  signal: AbortSignal | undefined,
  toError: (e: E) => unknown
): unknown => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) return toError(failure.value)
  if (Cause.isInterruptedOnly(cause)) return abortReason(signal)
  return Cause.squash(cause)
}

const generateResult = (
  response: ChatResponse,
  request: ChatRequest.ChatRequest,
  warnings: LanguageModelV3GenerateResult["warnings"]
): LanguageModelV3GenerateResult => {
  const choice = response.choices[0]
  const content: Array<LanguageModelV3Content> = []
  if (choice !== undefined && choice.text.length > 0) content.push({ type: "text", text: choice.text })
  for (const call of choice?.toolCalls ?? []) {
    content.push({
      type: "tool-call",
      toolCallId: call.id,
      toolName: call.name,
      input: call.arguments.length === 0 ? "{}" : call.arguments
    })
  }
  const hasToolCalls = (choice?.toolCalls.length ?? 0) > 0
  return {
    content,
    finishReason: finishReasonOf(bridge.finishReason(choice?.finishReason, hasToolCalls), choice?.finishReason),
    usage: usageOf(response.usage),
    providerMetadata: routeMetadata(response.model, response.provider, response.trail),
    request: { body: request },
    response: { id: response.id, modelId: response.model },
    warnings
  }
}

/** The stream parts of one event of a routed stream. */
const streamParts = (
  event: bridge.Event,
  route: { current: SharedV3ProviderMetadata | undefined }
): ReadonlyArray<LanguageModelV3StreamPart> => {
  switch (event._tag) {
    case "Metadata":
      route.current = routeMetadata(event.model, event.provider, event.trail)
      return [{ type: "response-metadata", ...(event.id === undefined ? {} : { id: event.id }), modelId: event.model }]
    case "TextStart":
      return [{ type: "text-start", id: event.id }]
    case "TextDelta":
      return [{ type: "text-delta", id: event.id, delta: event.delta }]
    case "TextEnd":
      return [{ type: "text-end", id: event.id }]
    case "ToolStart":
      return [{ type: "tool-input-start", id: event.id, toolName: event.name }]
    case "ToolDelta":
      return [{ type: "tool-input-delta", id: event.id, delta: event.delta }]
    case "ToolEnd":
      return event.complete
        ? [
          { type: "tool-input-end", id: event.id },
          {
            type: "tool-call",
            toolCallId: event.id,
            toolName: event.name,
            input: event.arguments.length === 0 ? "{}" : event.arguments
          }
        ]
        : [{ type: "tool-input-end", id: event.id }]
    case "Finish":
      return [{
        type: "finish",
        usage: usageOf(event.usage),
        finishReason: finishReasonOf(event.reason, event.raw),
        ...(route.current === undefined ? {} : { providerMetadata: route.current })
      }]
  }
}

/**
 * A routed stream as the SDK's: resolves once the stream has opened (routing failures before the first token reject
 * with an `APICallError`, as a stock provider's failed request does), then pulls one chunk per read. A failure after
 * that is an `error` part, then the open blocks' ends and a finish with reason `error`. Aborting the call's signal or
 * cancelling the stream interrupts the pull and closes the scope, which closes the connection.
 */
const openStream = async (
  runtime: ManagedRuntime.ManagedRuntime<HttpClient.HttpClient, never>,
  stream: Stream.Stream<ChatChunk, RouterError.RouterStreamError>,
  signal: AbortSignal | undefined,
  toError: (error: RouterError.RouterStreamError) => APICallError,
  warnings: LanguageModelV3GenerateResult["warnings"]
): Promise<LanguageModelV3StreamResult> => {
  const scope = runtime.runSync(Scope.make())
  let closed = false
  const close = () => {
    if (closed) return Promise.resolve()
    closed = true
    signal?.removeEventListener("abort", onAbort)
    return runtime.runPromise(Scope.close(scope, Exit.void))
  }
  // One abort for the call's signal and the stream's cancellation: the pull in flight is interrupted, and the scope
  // closed (at once when no pull is in flight, otherwise when the interrupted pull returns).
  const stop = new AbortController()
  let pulling = false
  function onAbort() {
    stop.abort(abortReason(signal))
  }
  stop.signal.addEventListener("abort", () => {
    if (!pulling) void close()
  }, { once: true })
  if (signal?.aborted) onAbort()
  else signal?.addEventListener("abort", onAbort, { once: true })

  const pull = await runtime.runPromise(Scope.extend(Stream.toPull(stream), scope))
  const next = async () => {
    pulling = true
    const exit = await runtime.runPromiseExit(pull, { signal: stop.signal })
    pulling = false
    if (stop.signal.aborted && Exit.isFailure(exit)) await close()
    return exit
  }

  const reader = bridge.streamReader()
  const route: { current: SharedV3ProviderMetadata | undefined } = { current: undefined }
  const toParts = (events: ReadonlyArray<bridge.Event>) => events.flatMap((event) => streamParts(event, route))

  const first = await next()
  if (Exit.isFailure(first)) {
    await close()
    const failure = Cause.failureOption(first.cause)
    if (Option.isSome(failure) && Option.isSome(failure.value)) throw toError(failure.value.value)
    if (Option.isSome(failure)) {
      // Ended before anything: an empty stream.
      return { stream: new ReadableStream({ start: (c) => c.close() }) }
    }
    throw Cause.isInterruptedOnly(first.cause) ? abortReason(signal) : Cause.squash(first.cause)
  }
  const pending: Array<LanguageModelV3StreamPart> = [
    { type: "stream-start", warnings },
    ...toParts(Chunk.toReadonlyArray(first.value).flatMap(reader.chunk))
  ]

  return {
    stream: new ReadableStream<LanguageModelV3StreamPart>({
      async pull(controller) {
        while (pending.length === 0) {
          if (closed) {
            controller.error(abortReason(signal))
            return
          }
          const exit = await next()
          if (Exit.isSuccess(exit)) {
            pending.push(...toParts(Chunk.toReadonlyArray(exit.value).flatMap(reader.chunk)))
            continue
          }
          const failure = Cause.failureOption(exit.cause)
          if (Option.isSome(failure) && Option.isNone(failure.value)) {
            // The end.
            for (const part of toParts(reader.end())) controller.enqueue(part)
            await close()
            controller.close()
            return
          }
          await close()
          if (Option.isNone(failure) || Option.isNone(failure.value)) {
            controller.error(Cause.isInterruptedOnly(exit.cause) ? abortReason(signal) : Cause.squash(exit.cause))
            return
          }
          // Failed after content started: the error, the ends of the open blocks, a finish with reason `error`.
          controller.enqueue({ type: "error", error: toError(failure.value.value) })
          for (const part of toParts(reader.close())) controller.enqueue(part)
          controller.enqueue({
            type: "finish",
            usage: usageOf(undefined),
            finishReason: { unified: "error", raw: undefined },
            ...(route.current === undefined ? {} : { providerMetadata: route.current })
          })
          controller.close()
          return
        }
        // Everything one read produced at once: one pull per network read rather than per part.
        for (const part of pending) controller.enqueue(part)
        pending.length = 0
      },
      cancel() {
        stop.abort(abortReason(signal))
      }
    })
  }
}

/** The provider: `provider(chain)`, `languageModel(chain)`, `dispose()`. */
export const make = (options: Options): Provider => {
  const name = options.name ?? defaultName
  const runtime = ManagedRuntime.make(options.httpClient ?? RouterHttpClient.layer)
  const routers = new Map<string, Promise<Router.Service>>()

  const routerOf = (chain: string): Promise<Router.Service> => {
    let router = routers.get(chain)
    if (router === undefined) {
      const config = options.chains[chain]!
      const routerOptions: Router.Options = Array.isArray(config) ? { models: config } : (config as Router.Options)
      router = runtime.runPromiseExit(Router.make(routerOptions)).then((exit) => {
        if (Exit.isSuccess(exit)) return exit.value
        const failure = Cause.failureOption(exit.cause)
        throw Option.isSome(failure) ? failure.value : Cause.squash(exit.cause)
      })
      // A bad configuration rejects every call on this chain the same way; no unhandled rejection meanwhile.
      router.catch(() => {})
      routers.set(chain, router)
    }
    return router
  }

  const languageModel = (chain: string): LanguageModelV3 => {
    if (!Object.prototype.hasOwnProperty.call(options.chains, chain)) {
      throw new NoSuchModelError({
        modelId: chain,
        modelType: "languageModel",
        message: `no chain named ${JSON.stringify(chain)} (the provider knows ${
          Object.keys(options.chains).map((c) => JSON.stringify(c)).join(", ")
        })`
      })
    }
    return {
      specificationVersion: "v3",
      provider: name,
      modelId: chain,
      // Image URLs are sent as they are (OpenAI-compatible servers fetch them); anything else is downloaded first.
      supportedUrls: { "image/*": [/^https?:\/\/.*$/] },
      async doGenerate(callOptions: LanguageModelV3CallOptions): Promise<LanguageModelV3GenerateResult> {
        const { request, warnings } = toRequest(callOptions)
        const router = await routerOf(chain)
        const exit = await runtime.runPromiseExit(router.generate(request), { signal: callOptions.abortSignal })
        if (Exit.isFailure(exit)) {
          throw thrown(exit.cause, callOptions.abortSignal, (e) => toApiCallError(router, chain, request, e))
        }
        return generateResult(exit.value, request, warnings)
      },
      async doStream(callOptions: LanguageModelV3CallOptions): Promise<LanguageModelV3StreamResult> {
        const { request, warnings } = toRequest(callOptions)
        const router = await routerOf(chain)
        const result = await openStream(
          runtime,
          router.stream(request),
          callOptions.abortSignal,
          (e) => toApiCallError(router, chain, request, e),
          warnings
        )
        return { ...result, request: { body: request } }
      }
    }
  }

  const noSuch = (modelType: "embeddingModel" | "imageModel") => (modelId: string): never => {
    throw new NoSuchModelError({ modelId, modelType, message: `${name} routes language models only` })
  }

  const provider = ((chain: string) => languageModel(chain)) as Provider
  Object.assign(provider, {
    specificationVersion: "v3" as const,
    languageModel,
    embeddingModel: noSuch("embeddingModel"),
    imageModel: noSuch("imageModel"),
    dispose: () => runtime.dispose()
  })
  return provider
}
