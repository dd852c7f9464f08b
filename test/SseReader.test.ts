import { describe, expect, it } from "@effect/vitest"
import * as SseReader from "../src/internal/sseReader.js"

const enc = new TextEncoder()
const bytesOf = (s: string): Uint8Array => enc.encode(s)

interface Result {
  readonly events: Array<SseReader.SseEvent>
  readonly ok: boolean
}

// Feeds the reads in order, then end(); stops at the first false like a real caller.
const run = (
  reads: ReadonlyArray<Uint8Array | string>,
  options?: { readonly maxEventBytes?: number }
): Result => {
  const reader = SseReader.make(options)
  const events: Array<SseReader.SseEvent> = []
  for (const r of reads) {
    if (!reader.push(typeof r === "string" ? bytesOf(r) : r, events)) {
      return { events, ok: false }
    }
  }
  const ok = reader.end(events)
  return { events, ok }
}

const ev = (data: string, event = ""): SseReader.SseEvent => ({ event, data })

const splitAt = (bytes: Uint8Array, ...cuts: Array<number>): Array<Uint8Array> => {
  const out: Array<Uint8Array> = []
  let prev = 0
  for (const c of cuts) {
    out.push(bytes.subarray(prev, c))
    prev = c
  }
  out.push(bytes.subarray(prev))
  return out
}

const byteByByte = (bytes: Uint8Array): Array<Uint8Array> => Array.from(bytes, (_, i) => bytes.subarray(i, i + 1))

// Straightforward WHATWG-style reference: decode everything, split into lines, walk them.
const reference = (bytes: Uint8Array): Result => {
  const text = new TextDecoder("utf-8").decode(bytes)
  const events: Array<SseReader.SseEvent> = []
  let data: Array<string> = []
  let event = ""
  const re = /\r\n|\r|\n/g
  let start = 0
  const handle = (line: string) => {
    if (line === "") {
      if (data.length > 0) events.push({ event, data: data.join("\n") })
      data = []
      event = ""
      return
    }
    if (line.startsWith(":")) return
    const colon = line.indexOf(":")
    const name = colon < 0 ? line : line.slice(0, colon)
    let value = colon < 0 ? "" : line.slice(colon + 1)
    if (value.startsWith(" ")) value = value.slice(1)
    if (name === "data") data.push(value)
    else if (name === "event") event = value
  }
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    handle(text.slice(start, m.index))
    start = m.index + m[0].length
  }
  if (start < text.length) handle(text.slice(start))
  handle("")
  return { events, ok: true }
}

// Deterministic PRNG so a failure reproduces.
const mulberry32 = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = seed
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

describe("SseReader", () => {
  describe("line endings", () => {
    it("LF", () => {
      expect(run(["data: a\n\ndata: b\n\n"]).events).toEqual([ev("a"), ev("b")])
    })

    it("CRLF", () => {
      expect(run(["data: a\r\ndata: b\r\n\r\ndata: c\r\n\r\n"]).events).toEqual([ev("a\nb"), ev("c")])
    })

    it("lone CR", () => {
      expect(run(["data: a\rdata: b\r\rdata: c\r\r"]).events).toEqual([ev("a\nb"), ev("c")])
    })

    it("mixed endings in one stream", () => {
      expect(run(["data: a\r\ndata: b\rdata: c\n\r\ndata: d\r\r"]).events).toEqual([ev("a\nb\nc"), ev("d")])
    })

    it("CR at the end of one read and LF at the start of the next is one line end", () => {
      // Counted as two line ends the LF would be a blank line and split this into two events.
      expect(run(["data: a\r", "\ndata: b\r\n\r\n"]).events).toEqual([ev("a\nb")])
      expect(run(["data: a\r", "\n", "\r", "\n"]).events).toEqual([ev("a")])
    })

    it("CR at the end of a read followed by a non-LF starts a new line", () => {
      expect(run(["data: a\r", "data: b\r", "\r"]).events).toEqual([ev("a\nb")])
      expect(run(["data: a\rdata: b", "\n\ndata: c\n\n"]).events).toEqual([ev("a\nb"), ev("c")])
    })
  })

  describe("splitting across reads", () => {
    const stream = "\uFEFF: hello\r\n" +
      "event: greet\r\n" +
      "data: h\u00e9llo \u65e5\u672c\r\n" +
      "data:\ud83d\ude00\r\n" +
      "retry: 3000\r\n" +
      "\r\n" +
      "id: 7\n" +
      "data: {\"a\":1}\n" +
      "\n" +
      ":keep-alive\r" +
      "data: x\r" +
      "\r" +
      "event: only-name\n" +
      "\n" +
      "data\n" +
      "\n" +
      "data: [DONE]\n" +
      "\n"
    const bytes = bytesOf(stream)
    const expected = [
      ev("h\u00e9llo \u65e5\u672c\n\ud83d\ude00", "greet"),
      ev("{\"a\":1}"),
      ev("x"),
      ev(""),
      ev("[DONE]")
    ]

    it("the whole stream in one read", () => {
      expect(run([bytes])).toEqual({ events: expected, ok: true })
    })

    it("every single split point", () => {
      for (let i = 0; i <= bytes.length; i++) {
        expect(run(splitAt(bytes, i)), `split at ${i}`).toEqual({ events: expected, ok: true })
      }
    })

    it("every pair of split points", () => {
      for (let i = 0; i <= bytes.length; i++) {
        for (let j = i; j <= bytes.length; j++) {
          const r = run(splitAt(bytes, i, j))
          if (r.ok !== true || JSON.stringify(r.events) !== JSON.stringify(expected)) {
            expect(r, `splits at ${i}, ${j}`).toEqual({ events: expected, ok: true })
          }
        }
      }
    })

    it("one byte at a time", () => {
      expect(run(byteByByte(bytes))).toEqual({ events: expected, ok: true })
    })

    it("empty reads in between change nothing", () => {
      const reads = byteByByte(bytes).flatMap((b) => [new Uint8Array(0), b])
      expect(run(reads)).toEqual({ events: expected, ok: true })
    })
  })

  it("random streams split at random points match the reference parser", () => {
    const random = mulberry32(42)
    const pieces = [
      "data: ",
      "data:",
      "data",
      "event: ",
      "event:",
      "id: 1",
      "retry: 3000",
      ":",
      ": ping",
      "x",
      "{\"a\":1}",
      "\u00e9",
      "\ud83d\ude00",
      "\u65e5\u672c",
      " ",
      "\n",
      "\n",
      "\n",
      "\r",
      "\r\n",
      "\n\n",
      "\r\n\r\n",
      "\uFEFF"
    ]
    for (let round = 0; round < 500; round++) {
      let text = random() < 0.3 ? "\uFEFF" : ""
      const count = 1 + Math.floor(random() * 40)
      for (let k = 0; k < count; k++) text += pieces[Math.floor(random() * pieces.length)]
      const bytes = bytesOf(text)
      const cuts: Array<number> = []
      for (let c = 0; c < bytes.length; c++) if (random() < 0.2) cuts.push(c)
      expect(run(splitAt(bytes, ...cuts)), `round ${round}: ${JSON.stringify(text)} cut at ${cuts.join(",")}`).toEqual(
        reference(bytes)
      )
    }
  })

  describe("UTF-8", () => {
    for (const text of ["\u00e9", "\ud83d\ude00", "\u65e5\u672c", "a\u00e9b\ud83d\ude00c\u65e5\u672c"]) {
      it(`${JSON.stringify(text)} split at every byte boundary`, () => {
        const bytes = bytesOf(`data: ${text}\n\n`)
        for (let i = 0; i <= bytes.length; i++) {
          expect(run(splitAt(bytes, i)).events, `split at ${i}`).toEqual([ev(text)])
        }
        expect(run(byteByByte(bytes)).events).toEqual([ev(text)])
      })
    }

    it("invalid bytes become U+FFFD instead of throwing", () => {
      expect(run([new Uint8Array([100, 97, 116, 97, 58, 0xff, 10, 10])]).events).toEqual([ev("\ufffd")])
    })

    it("a character cut off by the end of input becomes U+FFFD", () => {
      expect(run([bytesOf("data: a"), new Uint8Array([0xe6, 0x97])]).events).toEqual([ev("a\ufffd")])
    })
  })

  describe("BOM", () => {
    it("a leading BOM is skipped", () => {
      expect(run(["\uFEFFdata: a\n\n"]).events).toEqual([ev("a")])
    })

    it("a leading BOM split across reads is skipped", () => {
      const bytes = bytesOf("\uFEFFdata: a\n\n")
      expect(run(splitAt(bytes, 1, 2)).events).toEqual([ev("a")])
    })

    it("a BOM prefix that is not a BOM stays part of the first line", () => {
      // Dropping the prefix would turn the line into a valid data field.
      expect(run([new Uint8Array([0xef]), new Uint8Array([0xbb]), "data: x\n\n"]).events).toEqual([])
      expect(run([new Uint8Array([0xef, 0xbb]), "data: x\n\ndata: y\n\n"]).events).toEqual([ev("y")])
      expect(run([new Uint8Array([0xef, 0x64]), "ata: x\n\n"]).events).toEqual([])
      expect(run([new Uint8Array([0xef, 0xbb])]).events).toEqual([])
    })

    it("only the first BOM is skipped", () => {
      expect(run(["data: a\n\n", "\uFEFFdata: b\n\n"]).events).toEqual([ev("a")])
      // A second BOM makes the field name "\uFEFFdata", an unknown field.
      expect(run(["\uFEFF\uFEFFdata: a\n\ndata: b\n\n"]).events).toEqual([ev("b")])
      expect(run(["data: a\n\n\uFEFFdata: b\n\n"]).events).toEqual([ev("a")])
      expect(run(["data: \uFEFFa\n\n"]).events).toEqual([ev("\uFEFFa")])
    })
  })

  describe("comments", () => {
    it("are not emitted", () => {
      const r = run([": keep-alive\n", ":\n\n", "data: a\n", ": in between\r\n", "\n"])
      expect(r.events).toEqual([ev("a")])
    })

    it("a comment's CRLF split across reads is one line end", () => {
      // Counted as two line ends the LF would be a blank line and split this into two events.
      expect(run(["data: a\n:x\r", "\ndata: b\n\n"]).events).toEqual([ev("a\nb")])
    })

    it("do not count towards maxEventBytes", () => {
      expect(run([`:${"\u65e5".repeat(100)}\ndata: a\n\n`], { maxEventBytes: 7 })).toEqual({
        events: [ev("a")],
        ok: true
      })
    })

    it("a comment does not dispatch or break an event", () => {
      expect(run(["data: a\n:ping\ndata: b\n\n"]).events).toEqual([ev("a\nb")])
    })
  })

  describe("fields", () => {
    it("retry and id produce no events and leave data untouched", () => {
      expect(run(["retry: 3000\n\n", "id: 1\n\n"]).events).toEqual([])
      expect(run(["data: a\nretry: 3000\nid: 42\ndata: b\nretry\nid\n\n"]).events).toEqual([ev("a\nb")])
    })

    it("unknown fields and look-alike names are ignored", () => {
      expect(run(["foo: bar\ndatax: y\ndat: z\nevents: e\nd\ne\ndata: a\n\n"]).events).toEqual([ev("a")])
    })

    it("only one space after the colon is stripped", () => {
      expect(run(["data:a\n\n", "data:  b\n\n", "data:\tc\n\n", "data: d \n\n"]).events).toEqual([
        ev("a"),
        ev(" b"),
        ev("\tc"),
        ev("d ")
      ])
    })

    it("a field without a colon has an empty value", () => {
      expect(run(["data\n\n"]).events).toEqual([ev("")])
      expect(run(["data\ndata\n\n"]).events).toEqual([ev("\n")])
      expect(run(["event: x\nevent\ndata: a\n\n"]).events).toEqual([ev("a")])
    })

    it("values may contain colons", () => {
      expect(run(["data: a: b:c\n\nevent: x:y\ndata: 1\n\n"]).events).toEqual([ev("a: b:c"), ev("1", "x:y")])
    })

    it("multi-line data is joined with \\n", () => {
      expect(run(["data: line1\ndata: line2\ndata:\ndata: line4\n\n"]).events).toEqual([ev("line1\nline2\n\nline4")])
    })

    it("event names are carried, last one wins, and reset after dispatch", () => {
      expect(run(["event: a\nevent: b\ndata: 1\n\ndata: 2\n\nevent: c\ndata: 3\n\n"]).events).toEqual([
        ev("1", "b"),
        ev("2"),
        ev("3", "c")
      ])
    })

    it("an event with no data lines is dropped and its name does not leak", () => {
      expect(run(["event: ping\n\ndata: 1\n\n", "\n\n\n", "event: x\nid: 2\n\n"]).events).toEqual([ev("1")])
    })

    it("[DONE] is passed through as data", () => {
      expect(run(["data: {\"x\":1}\n\ndata: [DONE]\n\n"]).events).toEqual([ev("{\"x\":1}"), ev("[DONE]")])
    })
  })

  describe("end of input", () => {
    it("dispatches a final event without a terminating blank line", () => {
      const reader = SseReader.make()
      const out: Array<SseReader.SseEvent> = []
      expect(reader.push(bytesOf("data: a\n\nevent: last\ndata: b\n"), out)).toBe(true)
      expect(out).toEqual([ev("a")])
      expect(reader.end(out)).toBe(true)
      expect(out).toEqual([ev("a"), ev("b", "last")])
    })

    it("takes an unterminated last line as complete", () => {
      expect(run(["data: a\n\ndata: [DONE]"]).events).toEqual([ev("a"), ev("[DONE]")])
      expect(run(["data: a\ndata: b"]).events).toEqual([ev("a\nb")])
    })

    it("emits nothing more when the stream ended cleanly or had no data", () => {
      expect(run(["data: a\n\n"]).events).toEqual([ev("a")])
      expect(run(["event: x\n"]).events).toEqual([])
      expect(run([": bye"]).events).toEqual([])
      expect(run([]).events).toEqual([])
    })
  })

  describe("maxEventBytes", () => {
    it("an event of exactly the bound passes, one byte more fails", () => {
      // "data: " + 10 bytes = 16 field bytes
      expect(run(["data: 0123456789\n\n"], { maxEventBytes: 16 })).toEqual({ events: [ev("0123456789")], ok: true })
      expect(run(["data: 0123456789X\n\n"], { maxEventBytes: 16 }).ok).toBe(false)
    })

    it("counts UTF-8 bytes, not UTF-16 units", () => {
      // 6 + 3 * 3 = 15 bytes but only 9 UTF-16 units
      expect(run(["data: \u65e5\u672c\u8a9e\n\n"], { maxEventBytes: 15 }).ok).toBe(true)
      expect(run(["data: \u65e5\u672c\u8a9e\n\n"], { maxEventBytes: 14 }).ok).toBe(false)
      expect(run(byteByByte(bytesOf("data: \u65e5\u672c\u8a9e\n\n")), { maxEventBytes: 14 }).ok).toBe(false)
    })

    it("the bound applies per event, not to the stream", () => {
      const many = Array.from({ length: 100 }, (_, i) => `data: ${i % 10}\n\n`)
      const r = run(many, { maxEventBytes: 8 })
      expect(r.ok).toBe(true)
      expect(r.events.length).toBe(100)
    })

    // Pushes `bytes` again and again: the number of pushes up to and including the first refused one (at most 1000,
    // and a reader that never refuses fails the test).
    const pushesUntilRefused = (
      reader: ReturnType<typeof SseReader.make>,
      bytes: Uint8Array,
      out: Array<SseReader.SseEvent>
    ): number => {
      for (let pushes = 1; pushes <= 1000; pushes++) {
        if (!reader.push(bytes, out)) return pushes
      }
      throw new Error("the reader never refused")
    }

    it("a huge line without a newline fails promptly", () => {
      const reader = SseReader.make()
      const out: Array<SseReader.SseEvent> = []
      // 1 MiB / 64 KiB = 16 reads fit, the 17th crosses the bound
      expect(pushesUntilRefused(reader, new Uint8Array(64 * 1024).fill(120), out)).toBe(17)
      expect(out).toEqual([])
      expect(reader.push(bytesOf("\n\ndata: a\n\n"), out)).toBe(false)
      expect(out).toEqual([])
    })

    it("a single read longer than the bound without a newline fails at once", () => {
      const reader = SseReader.make({ maxEventBytes: 10 })
      expect(reader.push(bytesOf("data: 0123456789"), [])).toBe(false)
    })

    it("an event with many data lines fails promptly", () => {
      const reader = SseReader.make({ maxEventBytes: 64 * 1024 })
      const out: Array<SseReader.SseEvent> = []
      expect(pushesUntilRefused(reader, bytesOf(`data: ${"y".repeat(1018)}\n`), out)).toBe(65)
      expect(out).toEqual([])
    })

    it("many data lines inside one read fail", () => {
      const read = `${"data: 0123456789\n".repeat(100)}\n`
      expect(run([read], { maxEventBytes: 1000 }).ok).toBe(false)
      expect(run([read], { maxEventBytes: 1600 }).ok).toBe(true)
    })

    it("a long line made of many small reads fails once it crosses the bound", () => {
      const reads = Array.from({ length: 200 }, () => "dddddddddd")
      const reader = SseReader.make({ maxEventBytes: 1000 })
      const out: Array<SseReader.SseEvent> = []
      const failedAt = reads.findIndex((r) => !reader.push(bytesOf(r), out))
      expect(failedAt).toBe(100)
    })

    it("bytes of a partial character count towards the bound", () => {
      const reader = SseReader.make({ maxEventBytes: 10 })
      const out: Array<SseReader.SseEvent> = []
      expect(reader.push(bytesOf("data: 0123"), out)).toBe(true)
      expect(reader.push(new Uint8Array([0xe6]), out)).toBe(false)
      expect(reader.end(out)).toBe(false)
      expect(out).toEqual([])
    })

    it("event: lines count towards the bound", () => {
      expect(run(["event: 0123456789\ndata: a\n\n"], { maxEventBytes: 24 }).ok).toBe(true)
      expect(run(["event: 0123456789\ndata: a\n\n"], { maxEventBytes: 23 }).ok).toBe(false)
    })

    it("ignored fields do not count towards the bound", () => {
      const r = run(["id: 0123456789\nretry: 3000\nfoo: bar\ndata: a\n\n"], { maxEventBytes: 8 })
      expect(r).toEqual({ events: [ev("a")], ok: true })
    })
  })
})
