/**
 * One router process for the cross-process test of test/RedisHealthStore.test.ts: `node --import tsx` this file with
 * the Redis URL, the key prefix, the upstream's OpenAI base URL and a number of calls; it makes the calls one after
 * another on models `dead` then `ok` (health on, shared through Redis) and prints the models that served them as JSON.
 */
import { FetchHttpClient } from "@effect/platform"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as Redacted from "effect/Redacted"
import * as Model from "../../src/Model.js"
import * as OpenAiCompatible from "../../src/OpenAiCompatible.js"
import { RedisHealthStore } from "../../src/redis/index.js"
import * as RetryPolicy from "../../src/RetryPolicy.js"
import * as Router from "../../src/Router.js"

const [url, prefix, baseUrl, calls] = process.argv.slice(2)
const endpoint = OpenAiCompatible.endpoint({ baseUrl: baseUrl!, apiKey: Redacted.make("sk-cross-process") })

const program = Effect.gen(function*() {
  const router = yield* Router.make({
    models: [Model.make({ name: "dead", endpoint }), Model.make({ name: "ok", endpoint })],
    retry: RetryPolicy.none,
    health: { consecutiveFailures: 1, failureRate: false, cooldown: "1 minute" }
  })
  const served: Array<string> = []
  for (let i = 0; i < Number(calls); i++) {
    served.push((yield* router.generate({ messages: [{ role: "user", content: "hi" }] })).model)
  }
  return served
}).pipe(
  Effect.provide(RedisHealthStore.layer({ url: url!, prefix: prefix!, commandTimeout: "1 second" })),
  Effect.provide(FetchHttpClient.layer),
  Effect.provide(Logger.replace(Logger.defaultLogger, Logger.none))
)

Effect.runPromise(program).then(
  (served) => {
    process.stdout.write(`${JSON.stringify(served)}\n`)
    process.exit(0)
  },
  (error: unknown) => {
    process.stderr.write(`${String(error)}\n`)
    process.exit(1)
  }
)
