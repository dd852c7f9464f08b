// The SSE reader (src/internal/sseReader.ts, built to dist/) against @effect/experimental's Sse, on what the bench's
// upstream sends for a 20,000-chunk Chat Completions stream: 20,003 OpenAI-style `data:` events, delivered as the
// upstream writes them (batches of 64 events, ~7.5 KB per read; `--read-bytes N` re-cuts the same bytes into reads
// of N bytes, which split events and UTF-8-agnostic lines across reads).
//
//   npm run build && npm ci --prefix bench      # once: dist/ and bench/node_modules (@effect/experimental)
//   node --expose-gc bench/micro/sse.mjs [--rounds 7] [--ms 400] [--read-bytes 16384]
//   node --expose-gc bench/micro/sse.mjs --reader /tmp/new/sseReader.js --before /tmp/old/sseReader.js
//
// Variants (each one unit = the whole stream, every event counted, the last checked to be `[DONE]`):
//   ours                  SseReader.make(), push(read, events) per read, end(): what the transport does per read
//   effect-sse-parser     TextDecoder.decode(read, { stream: true }) + Sse.makeParser(...).feed: the same work with
//                         Effect's parser (what Stream.decodeText + Sse.makeChannel run inside)
//   ours-in-stream        ours inside Stream.fromChunks(one chunk per read) + Stream.mapChunks, Stream.runCount
//   effect-sse-channel    Stream.fromChunks(...) + Stream.decodeText() + Stream.pipeThroughChannel(Sse.makeChannel())
//                         + Stream.runCount: the documented way to read SSE in Effect
// Ratios: ours vs effect-sse-parser (parser for parser) and ours-in-stream vs effect-sse-channel (both in a Stream).
//
// effect and @effect/experimental are the copies in bench/node_modules (a bare import from bench/micro/ resolves
// them there), used by both sides; the reader itself imports nothing.
import * as Sse from "@effect/experimental/Sse"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { resolve } from "node:path"
import { pathToFileURL } from "node:url"
import { chunkText } from "../lib/expected.mjs"
import { REPO_ROOT } from "../lib/top-level.mjs"
import { args, assert, fmt, header, measure, numArg, ratio, report } from "./lib.mjs"

const N = numArg("chunks", 20_000)
const BATCH_EVENTS = numArg("batch-events", 64)
const READ_BYTES = numArg("read-bytes", 0)

// The upstream's chatStreamBatches(n, "m"), byte for byte.
const events = []
{
  const m = JSON.stringify("m")
  const head =
    `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":${m},"choices":[{"index":0,"delta":{"content":"`
  const tail = `"},"finish_reason":null}]}\n\n`
  for (let i = 0; i < N; i++) events.push(head + chunkText(i) + tail)
  events.push(
    `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":${m},"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n`
  )
  events.push(
    `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":${m},"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":${N},"total_tokens":${
      N + 5
    }}}\n\n`
  )
  events.push("data: [DONE]\n\n")
}
const EVENTS = events.length
let reads = []
for (let i = 0; i < events.length; i += BATCH_EVENTS) {
  reads.push(new Uint8Array(Buffer.from(events.slice(i, i + BATCH_EVENTS).join(""))))
}
if (READ_BYTES > 0) {
  const all = Buffer.concat(reads)
  reads = []
  for (let i = 0; i < all.length; i += READ_BYTES) reads.push(new Uint8Array(all.subarray(i, i + READ_BYTES)))
}
const totalBytes = reads.reduce((n, r) => n + r.length, 0)

const load = (file) => import(pathToFileURL(resolve(file)).href)
const ours = await load(typeof args.reader === "string" ? args.reader : `${REPO_ROOT}/dist/src/internal/sseReader.js`)
const before = typeof args.before === "string" ? await load(args.before) : undefined

// Each returns [count, last data] so that every variant is checked once before timing.
const runOurs = (Reader) => () => {
  const reader = Reader.make()
  const out = []
  let count = 0
  let last = ""
  for (let i = 0; i < reads.length; i++) {
    if (!reader.push(reads[i], out)) throw new Error("reader failed")
    count += out.length
    if (out.length > 0) last = out[out.length - 1].data
    out.length = 0
  }
  reader.end(out)
  count += out.length
  if (out.length > 0) last = out[out.length - 1].data
  return [count, last]
}

const runEffectParser = () => {
  const decoder = new TextDecoder()
  let count = 0
  let last = ""
  const parser = Sse.makeParser((event) => {
    if (event._tag === "Event") {
      count++
      last = event.data
    }
  })
  for (let i = 0; i < reads.length; i++) {
    const error = parser.feed(decoder.decode(reads[i], { stream: true }))
    if (error !== undefined) throw error
  }
  parser.feed(decoder.decode())
  return [count, last]
}

const readChunks = reads.map((r) => Chunk.of(r))
const source = () => Stream.fromChunks(...readChunks)

const oursInStream = Stream.suspend(() => {
  const reader = ours.make()
  const out = []
  return source().pipe(
    Stream.mapChunks((chunk) => {
      out.length = 0
      for (const r of chunk) if (!reader.push(r, out)) throw new Error("reader failed")
      return Chunk.unsafeFromArray(out.slice())
    }),
    Stream.concat(Stream.suspend(() => {
      const tail = []
      reader.end(tail)
      return Stream.fromIterable(tail)
    }))
  )
})
const effectChannel = source().pipe(Stream.decodeText(), Stream.pipeThroughChannel(Sse.makeChannel()))

const lastAndCount = (stream) =>
  Stream.runFold(stream, [0, ""], (acc, e) => {
    acc[0]++
    acc[1] = e.data
    return acc
  })
const runOursInStream = () => Effect.runPromise(lastAndCount(oursInStream))
const runEffectChannel = () => Effect.runPromise(lastAndCount(effectChannel))

const variants = {
  ours: runOurs(ours),
  "effect-sse-parser": runEffectParser,
  "ours-in-stream": runOursInStream,
  "effect-sse-channel": runEffectChannel
}
if (before !== undefined) variants["ours (--before)"] = runOurs(before)
// --only a,b: time these variants only (e.g. `--only ours,ours (--before)` for a before/after of the reader alone).
if (typeof args.only === "string") {
  const keep = new Set(args.only.split(","))
  for (const name of Object.keys(variants)) if (!keep.has(name)) delete variants[name]
}
const has = (...names) => names.every((n) => n in variants)

header(
  `SSE decode: ${EVENTS} events, ${reads.length} reads of ~${fmt(totalBytes / reads.length)} bytes (${
    READ_BYTES > 0 ? `--read-bytes ${READ_BYTES}` : `${BATCH_EVENTS} events per read`
  })`
)
for (const [name, fn] of Object.entries(variants)) {
  const [count, last] = await fn()
  assert(count === EVENTS && last === "[DONE]", `${name}: ${count} events, last ${JSON.stringify(last)}`)
}

const results = await measure(variants)
const eventsPerS = (us) => EVENTS / (us / 1e6)
console.log(report(results, { perUnit: "stream", rate: { unit: "events/s", fn: eventsPerS } }))
// The events/s ratio is the inverse ratio of wall time per stream; the CPU one is steadier on a shared machine.
for (
  const [a, b] of [["ours", "effect-sse-parser"], ["ours-in-stream", "effect-sse-channel"], ["ours", "ours (--before)"]]
) {
  if (!has(a, b)) continue
  console.log(
    `${a} vs ${b}: events/s ${ratio(results, a, b).text}; CPU per stream ${ratio(results, a, b, "cpuUs").text}`
  )
}
