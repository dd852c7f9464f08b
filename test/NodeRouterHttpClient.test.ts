/**
 * The undici client layer over a real loopback socket: the round trips and the scope, tracing and leak rules every
 * client layer of ours passes (test/support/clientLayerRules.ts: what the server sees when a request or a body read is
 * cut short, error mapping, connection reuse), with this layer's own leak check. Each test starts its own node:http
 * server on 127.0.0.1:0 and closes it when its scope ends.
 */
import * as Undici from "@effect/platform-node/Undici"
import type * as HttpClient from "@effect/platform/HttpClient"
import { expect } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as NodeRouterHttpClient from "../src/node/NodeRouterHttpClient.js"

import { roundTripRules, scopeRules } from "./support/clientLayerRules.js"
import type { LayerUnderTest } from "./support/clientLayerRules.js"
import { serve } from "./support/loopbackHttp.js"
import type { Client } from "./support/loopbackHttp.js"

const nodeLayer: LayerUnderTest = {
  name: "NodeRouterHttpClient",
  layer: NodeRouterHttpClient.layerUndici,
  // One connection per origin.
  reuse: { layer: NodeRouterHttpClient.layerUndiciWith({ connections: 1 }), delay: undefined },
  refused: { cause: "carries ECONNREFUSED", code: (cause) => (cause as { readonly code?: unknown }).code }
}
roundTripRules(nodeLayer)

/** 1,000 sequential calls (every tenth response dropped unread) leave no socket, connection, request or listener behind. */
const leakCheck = (mode: (client: HttpClient.HttpClient) => Client) =>
  Effect.scoped(Effect.gen(function*() {
    const server = yield* serve((_, res) => res.end("{\"ok\":true}"))
    const agent = yield* Effect.acquireRelease(
      Effect.sync(() => new Undici.Agent()),
      (agent) => Effect.promise(() => agent.destroy())
    )
    const client = mode(NodeRouterHttpClient.make(agent))
    const sockets = () => process.getActiveResourcesInfo().filter((r) => r === "TCPSocketWrap").length
    const stats = () => {
      const s = agent.stats[server.url] as { connected: number; running: number; pending: number; queued: number }
      return { connected: s.connected, running: s.running, pending: s.pending, queued: s.queued }
    }
    let unread = 0
    const call = Effect.flatMap(client.get(`${server.url}/ok`), (r) =>
      // Every tenth response is dropped unread: a small body that has fully arrived must not hold its connection.
      ++unread % 10 === 0 ? Effect.succeed({ ok: true }) : r.json)
    // Warm up: undici's pool settles on its connections (it may open a second one for back-to-back requests).
    yield* Effect.replicateEffect(call, 10)
    const before = { sockets: sockets(), connections: server.connections(), stats: stats() }
    expect(before.stats).toEqual({ connected: before.connections, running: 0, pending: 0, queued: 0 })
    const results = yield* Effect.replicateEffect(call, 1_000)
    expect(results.every((r) => (r as { ok: boolean }).ok === true)).toBe(true)
    expect(server.requests.length).toBe(1_010)
    expect([server.connections(), server.closed(), server.aborted()]).toEqual([before.connections, 0, 0])
    expect(sockets()).toBe(before.sockets)
    expect(stats()).toEqual(before.stats)
  }))

scopeRules(nodeLayer, leakCheck)
