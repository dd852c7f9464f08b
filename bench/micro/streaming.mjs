// The stream channel (`fromOpen` in src/internal/streaming.ts, built to dist/) against the Stream combinators it
// replaces, `Stream.unwrapScoped` + `Stream.repeatEffectChunkOption`, over the same opened body and the same pull.
// No network: the body is a fake whose pull hands out prepared chunks, so the figure is the stream machinery's own
// cost per stream, consumed the way the bench's ours client consumes it (Stream.runFold over every chunk; see
// --consumer below).
//
//   npm run build
//   node --expose-gc bench/micro/streaming.mjs [--rounds 7] [--ms 400] [--consumer fold|chunks]
//
// One unit = one 100-chunk stream (a Started chunk, 100 text deltas), opened in a scope of its own that is closed at
// the end (the open registers a finalizer), in two shapes:
//   batched      the body's head carries the first 64 chunks and one pull the other 36, then the end: what the
//                bench's loopback upstream produces (64 events per network read)
//   one-per-read the head carries the first chunk and each of the 99 others comes from its own pull, then the end:
//                a real model's token-by-token stream, one event per network read
// Variants, per shape:
//   fromOpen      streaming.fromOpen(open)
//   unwrapScoped  Stream.unwrapScoped(open in the stream's scope, then Stream.concat(Stream.fromChunk(head),
//                 Stream.repeatEffectChunkOption(body.done() ? None : pull, undefined -> None)))
//
// effect comes from the TOP-LEVEL node_modules (the copy dist/ uses).
import { pathToFileURL } from "node:url"
import { importTopLevel, REPO_ROOT } from "../lib/top-level.mjs"
import { args, assert, header, measure, ratio, report } from "./lib.mjs"

const [Chunk, Effect, Option, Scope, Stream] = await Promise.all(
  ["./Chunk", "./Effect", "./Option", "./Scope", "./Stream"].map((m) => importTopLevel("effect", m))
)
const streaming = await import(pathToFileURL(`${REPO_ROOT}/dist/src/internal/streaming.js`).href)

const N = 100
const started = { _tag: "Started", model: "m", provider: "openai", trail: [] }
const deltas = Array.from({ length: N }, (_, i) => ({ _tag: "TextDelta", text: String(i).padStart(4, "0") }))

// A fresh body per stream: head, then `reads` (arrays of chunks) one per pull, then undefined.
const makeOpen = (headCount, perRead) => (scope) =>
  Effect.suspend(() => {
    const reads = []
    for (let i = headCount; i < N; i += perRead) reads.push(deltas.slice(i, i + perRead))
    let next = 0
    const pull = Effect.sync(() => next < reads.length ? Chunk.unsafeFromArray(reads[next++]) : undefined)
    return Effect.as(Scope.addFinalizer(scope, Effect.void), {
      head: Chunk.unsafeFromArray([started, ...deltas.slice(0, headCount)]),
      pull,
      done: () => next >= reads.length
    })
  })

const viaUnwrapScoped = (open) =>
  Stream.unwrapScoped(
    Effect.map(Effect.flatMap(Effect.scope, open), (body) =>
      Stream.concat(
        Stream.fromChunk(body.head),
        Stream.repeatEffectChunkOption(
          Effect.suspend(() =>
            body.done()
              ? Effect.fail(Option.none())
              : Effect.flatMap(body.pull, (c) => c === undefined ? Effect.fail(Option.none()) : Effect.succeed(c))
          )
        )
      ))
  )

// --consumer fold (default): Stream.runFold per chunk, as the bench's ours client; --consumer chunks:
// Stream.runForEachChunk, a lighter consumer (as the library's own collect), which leaves more of the figure to the
// machinery compared.
const CONSUMER = args.consumer === "chunks" ? "chunks" : "fold"
const consume = CONSUMER === "fold"
  ? (stream) =>
    Effect.runSync(Stream.runFold(stream, { texts: 0, chunks: 0 }, (acc, c) => {
      acc.chunks++
      if (c._tag === "TextDelta") acc.texts++
      return acc
    }))
  : (stream) => {
    const acc = { texts: 0, chunks: 0 }
    Effect.runSync(Stream.runForEachChunk(stream, (chunk) =>
      Effect.sync(() => {
        for (const c of chunk) {
          acc.chunks++
          if (c._tag === "TextDelta") acc.texts++
        }
      })))
    return acc
  }

const shapes = { batched: makeOpen(64, 64), "one-per-read": makeOpen(1, 1) }
const variants = {}
for (const [shape, open] of Object.entries(shapes)) {
  const a = streaming.fromOpen(open)
  const b = viaUnwrapScoped(open)
  variants[`${shape}: fromOpen`] = () => consume(a)
  variants[`${shape}: unwrapScoped`] = () => consume(b)
}
for (const [name, fn] of Object.entries(variants)) {
  const r = fn()
  assert(r.texts === N && r.chunks === N + 1, `${name}: ${JSON.stringify(r)}`)
}

header(
  `Stream machinery per ${N}-chunk stream (fake body, consumer: ${
    CONSUMER === "fold" ? "Stream.runFold per chunk" : "Stream.runForEachChunk"
  })`
)
const results = await measure(variants)
console.log(report(results, { perUnit: "stream" }))
for (const shape of Object.keys(shapes)) {
  const a = `${shape}: fromOpen`
  const b = `${shape}: unwrapScoped`
  console.log(
    `${shape}: unwrapScoped / fromOpen: wall ${ratio(results, a, b).text}; CPU ${ratio(results, a, b, "cpuUs").text}`
  )
}
