// Shared harness of the micro-benchmarks in bench/micro/: A and B interleaved in ONE process, several rounds, each
// round running every variant once in an order rotated by one per round, so that machine noise (other processes on a
// shared box, GC, JIT tiers) falls on both sides alike. Node built-ins only.
//
// A variant is a function doing one unit of work (one stream, one check, one routed call…), sync or returning a
// promise. In each round a variant runs for `--ms` milliseconds (at least `--min-ops` units) after the warm-up; its
// figures for the round are wall µs and CPU µs (process.cpuUsage, user + system) per unit. Ratios are taken per round
// (both sides from the same round) and reported as median [min–max] over rounds.
//
// Common flags: --rounds N (default 7), --ms N (per variant per round, default 400), --warmup-ms N (default 600).
import { spawn } from "node:child_process"
import os from "node:os"
import { performance } from "node:perf_hooks"
import { fileURLToPath } from "node:url"

export const args = (() => {
  const out = {}
  const argv = process.argv.slice(2)
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (!a.startsWith("--")) continue
    const next = argv[i + 1]
    if (next === undefined || next.startsWith("--")) out[a.slice(2)] = true
    else {
      out[a.slice(2)] = next
      i++
    }
  }
  return out
})()

export const numArg = (name, dflt) => (args[name] === undefined ? dflt : Number(args[name]))

const gc = typeof globalThis.gc === "function" ? globalThis.gc : () => {}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2
}

const isThenable = (x) => x !== null && typeof x === "object" && typeof x.then === "function"

// Runs `fn` for `ms` milliseconds (and at least `minOps` times); returns { ops, wallUs, cpuUs }.
const runFor = async (fn, ms, minOps) => {
  // Find out once whether fn is async, then loop without awaiting sync work.
  const first = fn()
  const async = isThenable(first)
  if (async) await first
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  let ops = 0
  let t = t0
  if (async) {
    while (ops < minOps || t - t0 < ms) {
      await fn()
      ops++
      if ((ops & 3) === 0 || ops < minOps) t = performance.now()
    }
  } else {
    while (ops < minOps || t - t0 < ms) {
      fn()
      ops++
      if ((ops & 15) === 0 || ops < minOps) t = performance.now()
    }
  }
  t = performance.now()
  const cpu = process.cpuUsage(cpu0)
  return { ops, wallUs: ((t - t0) * 1000) / ops, cpuUs: (cpu.user + cpu.system) / ops }
}

/**
 * Runs every variant (name -> fn) `rounds` times, interleaved; returns { [name]: Array<{ wallUs, cpuUs, ops }> }.
 * `check(name, result)` (optional) is called with one result of each variant before timing starts.
 */
export const measure = async (
  variants,
  {
    rounds = numArg("rounds", 7),
    ms = numArg("ms", 400),
    warmupMs = numArg("warmup-ms", 600),
    minOps = numArg("min-ops", 5),
    log = true
  } = {}
) => {
  const names = Object.keys(variants)
  for (const name of names) {
    gc()
    await runFor(variants[name], warmupMs, minOps)
  }
  const results = Object.fromEntries(names.map((n) => [n, []]))
  for (let r = 0; r < rounds; r++) {
    const order = names.map((_, i) => names[(i + r) % names.length])
    const line = []
    for (const name of order) {
      gc()
      const res = await runFor(variants[name], ms, minOps)
      results[name].push(res)
      line.push(`${name} ${fmt(res.wallUs)} µs`)
    }
    if (log) console.error(`  round ${r + 1}/${rounds}: ${line.join(", ")}`)
  }
  return results
}

export const fmt = (x, digits = 3) => {
  if (!Number.isFinite(x)) return String(x)
  const a = Math.abs(x)
  if (a >= 1000) return Math.round(x).toLocaleString("en-US")
  return Number(x.toPrecision(digits)).toString()
}

/** median [min–max] of `xs`, formatted. */
export const spread = (xs, unit = "") => {
  const s = [...xs].sort((a, b) => a - b)
  return `${fmt(median(s))}${unit} [${fmt(s[0])}–${fmt(s[s.length - 1])}]`
}

/**
 * The ratio B/A of per-unit cost per round (> 1: A is faster), as { median, min, max, text }. `key` is "wallUs" or
 * "cpuUs".
 */
export const ratio = (results, a, b, key = "wallUs") => {
  const rs = results[a].map((ra, i) => results[b][i][key] / ra[key])
  const s = [...rs].sort((x, y) => x - y)
  return {
    median: median(s),
    min: s[0],
    max: s[s.length - 1],
    rounds: s.length,
    text: `${fmt(median(s))}× [${fmt(s[0])}–${fmt(s[s.length - 1])}] over ${s.length} rounds`
  }
}

/** Per-variant table lines: wall and CPU µs per unit, median [min–max] over rounds, plus an optional derived rate. */
export const report = (results, { perUnit = "unit", rate } = {}) => {
  const lines = []
  for (const [name, rs] of Object.entries(results)) {
    let line = `  ${name.padEnd(34)} ${spread(rs.map((r) => r.wallUs), " µs")}/${perUnit} wall, ${
      spread(rs.map((r) => r.cpuUs), " µs")
    } CPU`
    if (rate !== undefined) line += `, ${spread(rs.map((r) => rate.fn(r.wallUs)))} ${rate.unit}`
    lines.push(line)
  }
  return lines.join("\n")
}

export const header = (title) => {
  console.log(`# ${title}`)
  console.log(
    `node ${process.version}, ${new Date().toISOString().slice(0, 10)}, load1 at start ${
      os.loadavg()[0].toFixed(2)
    } on ${os.cpus().length} cores${
      typeof globalThis.gc === "function"
        ? ", gc() between variants"
        : " (run with --expose-gc for gc() between variants)"
    }`
  )
}

export const assert = (cond, message) => {
  if (!cond) {
    console.error(`check failed: ${message}`)
    process.exit(1)
  }
}

/**
 * bench/upstream.mjs in its own process (on loopback), stopped when this process exits: its base URL.
 */
export const startUpstream = async () => {
  const upstream = spawn(process.execPath, [fileURLToPath(new URL("../upstream.mjs", import.meta.url))], {
    stdio: ["pipe", "pipe", "inherit"]
  })
  process.on("exit", () => upstream.kill())
  const port = await new Promise((resolve) =>
    upstream.stdout.once("data", (d) => resolve(JSON.parse(String(d).split("\n")[0]).port))
  )
  return { url: `http://127.0.0.1:${port}`, stop: () => upstream.stdin.end() }
}

// The upstream's answer to the non-streaming "hi", as an in-memory fetch's body.
const memBody = JSON.stringify({
  id: "chatcmpl-bench",
  object: "chat.completion",
  created: 1,
  model: "m",
  choices: [{
    index: 0,
    message: { role: "assistant", content: "Hello from the bench upstream.", refusal: null },
    logprobs: null,
    finish_reason: "stop"
  }],
  usage: { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 }
})
const memHeaders = { "content-type": "application/json", "content-length": String(Buffer.byteLength(memBody)) }

/** A `fetch` that answers at once, in memory, as bench/upstream.mjs answers a non-streaming call: no network. */
export const memFetch = () => Promise.resolve(new Response(memBody, { headers: memHeaders }))
