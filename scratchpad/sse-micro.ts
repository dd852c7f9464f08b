// Micro-benchmark: SseReader vs. the naive string splitter, both followed by JSON.parse.
// Run: npx tsx scratchpad/sse-micro.ts
import * as SseReader from "../src/internal/sseReader.js"

const EVENTS = 20_000
const READ_SIZE = 16 * 1024
const RUNS = 5

const build = (): Array<Uint8Array> => {
  let text = ""
  for (let i = 0; i < EVENTS; i++) {
    text +=
      `data: {"id":"x","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"abc ${i}"},"finish_reason":null}]}\n\n`
  }
  const all = new TextEncoder().encode(text)
  const reads: Array<Uint8Array> = []
  // copies, so each read owns its buffer like a real network read
  for (let i = 0; i < all.length; i += READ_SIZE) reads.push(all.slice(i, i + READ_SIZE))
  return reads
}

const naive = (reads: ReadonlyArray<Uint8Array>): number => {
  const decoder = new TextDecoder()
  let buf = ""
  let n = 0
  for (const bytes of reads) {
    buf += decoder.decode(bytes, { stream: true })
    let i: number
    while ((i = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, i)
      buf = buf.slice(i + 1)
      if (line.startsWith("data: ")) {
        const chunk = JSON.parse(line.slice(6))
        if (chunk.choices[0].index === 0) n++
      }
    }
  }
  return n
}

const reader = (reads: ReadonlyArray<Uint8Array>): number => {
  const r = SseReader.make()
  const out: Array<SseReader.SseEvent> = []
  let n = 0
  for (const bytes of reads) {
    out.length = 0
    if (!r.push(bytes, out)) throw new Error("overflow")
    for (let k = 0; k < out.length; k++) {
      const chunk = JSON.parse(out[k]!.data)
      if (chunk.choices[0].index === 0) n++
    }
  }
  out.length = 0
  r.end(out)
  return n + out.length
}

// Parsing-only variants: how much of the total is framing vs JSON.parse.
const naiveNoParse = (reads: ReadonlyArray<Uint8Array>): number => {
  const decoder = new TextDecoder()
  let buf = ""
  let n = 0
  for (const bytes of reads) {
    buf += decoder.decode(bytes, { stream: true })
    let i: number
    while ((i = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, i)
      buf = buf.slice(i + 1)
      if (line.startsWith("data: ")) {
        if (line.slice(6).length > 0) n++
      }
    }
  }
  return n
}

const readerNoParse = (reads: ReadonlyArray<Uint8Array>): number => {
  const r = SseReader.make()
  const out: Array<SseReader.SseEvent> = []
  let n = 0
  for (const bytes of reads) {
    out.length = 0
    r.push(bytes, out)
    n += out.length
  }
  out.length = 0
  r.end(out)
  return n + out.length
}

const timeOnce = (f: (reads: ReadonlyArray<Uint8Array>) => number, reads: ReadonlyArray<Uint8Array>): number => {
  const t0 = performance.now()
  const n = f(reads)
  const ms = performance.now() - t0
  if (n !== EVENTS) throw new Error(`expected ${EVENTS} events, got ${n}`)
  return ms
}

// Runs alternate between the two (and swap order each round) so CPU contention
// and GC debt left by one side spread evenly instead of biasing the ratio.
const bestOfInterleaved = (
  a: (reads: ReadonlyArray<Uint8Array>) => number,
  b: (reads: ReadonlyArray<Uint8Array>) => number,
  reads: ReadonlyArray<Uint8Array>
): [number, number] => {
  let bestA = Infinity
  let bestB = Infinity
  for (let run = 0; run < RUNS; run++) {
    if (run % 2 === 0) {
      bestA = Math.min(bestA, timeOnce(a, reads))
      bestB = Math.min(bestB, timeOnce(b, reads))
    } else {
      bestB = Math.min(bestB, timeOnce(b, reads))
      bestA = Math.min(bestA, timeOnce(a, reads))
    }
  }
  return [bestA, bestB]
}

const reads = build()
const totalBytes = reads.reduce((acc, r) => acc + r.length, 0)
console.log(
  `${EVENTS} events, ${
    (totalBytes / 1024 / 1024).toFixed(2)
  } MiB in ${reads.length} reads of ${READ_SIZE} bytes, best of ${RUNS}`
)

const report = (
  label: string,
  a: (r: ReadonlyArray<Uint8Array>) => number,
  b: (r: ReadonlyArray<Uint8Array>) => number
) => {
  // warm both up once so neither pays the other's JIT cost in the timed runs
  a(reads)
  b(reads)
  const [tNaive, tReader] = bestOfInterleaved(a, b, reads)
  const eps = (ms: number) => Math.round(EVENTS / (ms / 1000)).toLocaleString("en-US")
  console.log(label)
  console.log(`  naive splitter: ${tNaive.toFixed(2)} ms  ${eps(tNaive)} events/s`)
  console.log(`  SseReader:      ${tReader.toFixed(2)} ms  ${eps(tReader)} events/s`)
  console.log(`  throughput ratio SseReader/naive: ${(tNaive / tReader).toFixed(2)}x`)
}

report("with JSON.parse", naive, reader)
report("framing only (no JSON.parse)", naiveNoParse, readerNoParse)
