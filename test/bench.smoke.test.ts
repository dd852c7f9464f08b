// Smoke test of the benchmark harness (bench/): runs it at the tiny size with the two clients that need no
// bench/node_modules (raw-fetch, ours-fetch) and checks that every workload produced numbers (the outage workloads:
// ours-fetch only, raw-fetch has no deployment health and is not run there).
// ours-fetch needs the library: the runner builds it first (`npm run build`), so a library that does not build or
// a client that fails shows here as a missing or failed ours-fetch result.
// Then the opt-in variants ours-undici-redis, ours-undici-redisrt, ours-undici-limits and ours-undici-group4rr beside
// ours-undici, and ours-nodehttp (RouterHttpClient), on the latency workload only (concurrency 1, cheap), with the build of the first run: each reports
// numbers, the Redis store ran on the redis-server the runner started (and stopped): two scripts per call with
// admission "redis", far fewer with "local" (and the client checked that it never fell back), and the summary compares each
// with ours-undici; in the same run the opt-in slow-tail workload (ours-undici only, about 5 s at the tiny size).
import { execFile } from "node:child_process"
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "vitest"

const ROOT = fileURLToPath(new URL("..", import.meta.url))
const WORKLOADS = [
  "latency",
  "throughput",
  "stream-big",
  "stream-concurrent",
  "stream-seq",
  "stream-seq-warm",
  "memory",
  "failover",
  "outage-503",
  "outage-hang"
]
const OUTAGE = new Set(["outage-503", "outage-hang"])
// The tiny size's concurrencies are 1 and 4.
const OUTAGE_FIGURES = [
  "base_c1_p50_ms",
  "on_c1_p50_ms",
  "on_c1_p99_ms",
  "on_c1_p50_x",
  "on_c1_dead",
  "on_c1_tripdead",
  "off_c4_p99_ms",
  "off_c1_dead",
  "short_c4_afterdead",
  "hang_open_at_end"
]
const FIGURES: Record<string, ReadonlyArray<string>> = {
  latency: ["lat_mean_ms", "lat_p99_ms"],
  throughput: ["tput_calls_per_s", "cpu_us_per_call"],
  "stream-big": [
    "big_stream_chunks_per_s",
    "rss_small_stream_peak_mb",
    "rss_big_stream_peak_mb",
    "rss_big_stream_added_mb"
  ],
  "stream-concurrent": ["conc_stream_ms_per_stream"],
  "stream-seq": ["seq_stream_ms_per_stream"],
  "stream-seq-warm": ["seq_warm_stream_ms_per_stream"],
  memory: ["rss_after_first_mb", "rss_after_total_mb", "rss_growth_mb", "peak_rss_mb", "memory_calls"],
  failover: ["failover_server_us", "failover_call_ms"],
  "outage-503": OUTAGE_FIGURES,
  "outage-hang": OUTAGE_FIGURES
}

interface ResultRecord {
  readonly kind: string
  readonly client?: string
  readonly workload?: string
  readonly ok?: boolean
  readonly error?: string
  readonly figures?: Record<string, unknown>
}

let dir = ""
let records: Array<ResultRecord> = []
let summary = ""
let exitCode: number | null = null
let output = ""

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "bench-smoke-"))
  const clients = "raw-fetch,ours-fetch"
  await new Promise<void>((done) => {
    execFile(
      process.execPath,
      [
        join(ROOT, "bench/run.mjs"),
        "--sizes",
        "tiny",
        "--rounds",
        "1",
        "--clients",
        clients,
        "--results-dir",
        dir
      ],
      { cwd: ROOT, maxBuffer: 64 * 1024 * 1024, timeout: 280_000 },
      (error, stdout, stderr) => {
        exitCode = error === null ? 0 : typeof error.code === "number" ? error.code : 1
        output = `${stdout}\n${stderr}`
        done()
      }
    )
  })
  const jsonl = readdirSync(dir).filter((f) => f.endsWith(".jsonl"))
  for (const f of jsonl) {
    for (const line of readFileSync(join(dir, f), "utf8").split("\n")) {
      if (line.trim() !== "") records.push(JSON.parse(line) as ResultRecord)
    }
  }
  summary = existsSync(join(dir, "latest.md")) ? readFileSync(join(dir, "latest.md"), "utf8") : ""
}, 300_000)

afterAll(() => {
  if (dir !== "") rmSync(dir, { recursive: true, force: true })
  records = []
})

const expectNumbers = (client: string, workloads: ReadonlyArray<string>, from = records, log = output) => {
  for (const w of workloads) {
    const rec = from.find((r) => r.kind === "result" && r.client === client && r.workload === w)
    expect(rec, `${client} ${w}: no result record\n${log.slice(-3000)}`).toBeDefined()
    expect(rec?.ok, `${client} ${w}: ${rec?.error}`).toBe(true)
    for (const key of FIGURES[w] ?? []) {
      const v = rec?.figures?.[key]
      expect(typeof v === "number" && Number.isFinite(v), `${client} ${w} ${key} = ${String(v)}`).toBe(true)
    }
  }
}

describe("bench harness (tiny)", () => {
  it("exits cleanly and writes a summary table for every workload", () => {
    expect(exitCode, output.slice(-3000)).toBe(0)
    expect(records.some((r) => r.kind === "run")).toBe(true)
    for (const w of WORKLOADS) expect(summary).toContain(`## ${w}:`)
    expect(summary).toMatch(/\| raw-fetch \| [0-9]/)
  })

  it("raw-fetch reports numbers for every workload", () => {
    expectNumbers("raw-fetch", WORKLOADS.filter((w) => !OUTAGE.has(w)))
    expect(records.some((r) => r.client === "raw-fetch" && OUTAGE.has(r.workload ?? ""))).toBe(false)
  })

  it("ours-fetch reports numbers for every workload", () => {
    expectNumbers("ours-fetch", WORKLOADS)
    expect(summary).toMatch(/\| ours-fetch \| [0-9]/)
  })

  it("outage workloads: the dead deployment is counted, nothing is left hanging at the upstream", () => {
    for (const w of OUTAGE) {
      const f = records.find((r) => r.kind === "result" && r.client === "ours-fetch" && r.workload === w)?.figures
      // Health off: every measured call reaches the dead deployment first.
      expect(f?.["off_c1_dead"], w).toBeGreaterThan(0)
      expect(f?.["hang_open_at_end"], w).toBe(0)
    }
    expect(summary).toMatch(/\| ours-fetch \| health on \(defaults\) \| [0-9]/)
  })
})

describe("bench harness (tiny): opt-in variants against their base client", () => {
  let vdir = ""
  let vrecords: Array<ResultRecord> = []
  let vsummary = ""
  let vexit: number | null = null
  let voutput = ""

  beforeAll(async () => {
    vdir = mkdtempSync(join(tmpdir(), "bench-smoke-variants-"))
    await new Promise<void>((done) => {
      execFile(
        process.execPath,
        [
          join(ROOT, "bench/run.mjs"),
          "--sizes",
          "tiny",
          "--rounds",
          "1",
          "--no-build",
          "--clients",
          "ours-undici,ours-undici-redis,ours-undici-redisrt,ours-undici-limits,ours-undici-group4rr,ours-nodehttp",
          "--workloads",
          "latency,slow-tail",
          "--results-dir",
          vdir
        ],
        { cwd: ROOT, maxBuffer: 64 * 1024 * 1024, timeout: 110_000 },
        (error, stdout, stderr) => {
          vexit = error === null ? 0 : typeof error.code === "number" ? error.code : 1
          voutput = `${stdout}\n${stderr}`
          done()
        }
      )
    })
    for (const f of readdirSync(vdir).filter((name) => name.endsWith(".jsonl"))) {
      for (const line of readFileSync(join(vdir, f), "utf8").split("\n")) {
        if (line.trim() !== "") vrecords.push(JSON.parse(line) as ResultRecord)
      }
    }
    vsummary = existsSync(join(vdir, "latest.md")) ? readFileSync(join(vdir, "latest.md"), "utf8") : ""
  }, 120_000)

  afterAll(() => {
    if (vdir !== "") rmSync(vdir, { recursive: true, force: true })
    vrecords = []
  })

  it("each variant reports numbers; the Redis ones ran on the runner's redis-server, two scripts per call or few", () => {
    expect(vexit, voutput.slice(-3000)).toBe(0)
    for (
      const c of [
        "ours-undici",
        "ours-undici-redis",
        "ours-undici-redisrt",
        "ours-undici-limits",
        "ours-undici-group4rr",
        "ours-nodehttp"
      ]
    ) {
      expectNumbers(c, ["latency"], vrecords, voutput)
    }
    const every = vrecords.find((r) => r.kind === "result" && r.client === "ours-undici-redisrt")
    expect(every?.figures?.["redis_scripts_per_call"]).toBe(2)
    expect(every?.figures?.["redis_cpu_us_per_call"]).toBeGreaterThan(0)
    // Admission "local": healthy calls are admitted on the copy; the scripts are the first reads, re-reads and flushes.
    const local = vrecords.find((r) => r.kind === "result" && r.client === "ours-undici-redis")
    expect(local?.figures?.["redis_scripts_per_call"]).toBeLessThan(0.5)
    // The base client reads no Redis counters.
    const base = vrecords.find((r) => r.kind === "result" && r.client === "ours-undici")
    expect(base?.figures?.["redis_scripts_per_call"]).toBeUndefined()
  })

  it("the summary compares each variant with ours-undici and states the Redis target", () => {
    expect(vsummary).toContain("## Opt-in variants against their base client")
    expect(vsummary).toMatch(
      /\| Redis health store \| ours-undici-redis vs ours-undici \| latency \| mean ms ↓ \| [0-9]/
    )
    expect(vsummary).toMatch(/\| limits \(never binding\) \| ours-undici-limits vs ours-undici \| latency \| mean ms/)
    expect(vsummary).toMatch(/Target ≤ 0\.3 ms: (met|NOT met)/)
    expect(vsummary).toMatch(
      /\| group of 4 \(round-robin\) \| ours-undici-group4rr vs ours-undici \| latency \| mean ms/
    )
  })

  it("slow-tail: ours-undici only; without hedging the tail reaches p99 and no request is extra", () => {
    const tail = vrecords.filter((r) => r.kind === "result" && r.workload === "slow-tail")
    expect(tail.map((r) => r.client)).toEqual(["ours-undici"])
    expect(tail[0]?.ok, tail[0]?.error).toBe(true)
    const f = tail[0]?.figures ?? {}
    // The tiny size: 5 ms, every 10th request per model after 100 ms; the list sends every call to its first model,
    // whose 10th request is a measured call (after 4 warm-up calls).
    expect(f["list_none_c1_p99_ms"]).toBeGreaterThanOrEqual(100)
    expect(f["list_none_c1_extra"]).toBe(0)
    expect(f["list_none_c1_hedged"]).toBe(0)
    for (const key of ["group_fixed_c4_p99_ms", "group_p95_c1_extra", "list_p90_c4_hedge_won"]) {
      expect(Number.isFinite(f[key]), key).toBe(true)
    }
    expect(vsummary).toContain("## slow-tail:")
    expect(vsummary).toMatch(/\| ours-undici \| group \| hedge after 8 ms \| [0-9]/)
  })
})
