/**
 * Byte-level Server-Sent-Events reader (WHATWG EventSource parsing rules).
 *
 * Each network read is cut at its last line terminator; the complete lines are
 * decoded with ONE non-streaming `TextDecoder.decode` call and split with
 * native string `indexOf`. Only the unterminated tail is carried over, as raw
 * bytes. Non-streaming decode is used on purpose: on Node 20 `{ stream: true }`
 * is about 10x slower, and cutting at an ASCII terminator can never split a
 * UTF-8 sequence, so the decoded text is identical.
 *
 * @internal
 */
// bench/micro/sse.mjs: 360× the events/s of @effect/experimental's Sse.makeParser (after a stream-mode TextDecoder)
// on the bench's 20,003-event stream in 64-event reads, where that parser rescans each read from its start for every
// line; 5.6× at one event per read. Inside a Stream: 142× and 2.1× Stream.decodeText() + Sse.makeChannel() (medians of
// 7 rounds, 2026-11-30).

import type { ServerSentEvent } from "../Provider.js"

/**
 * An event as the reader dispatches it (the protocols' {@link ServerSentEvent}).
 *
 * @internal
 */
export type SseEvent = ServerSentEvent

/** @internal */
export interface SseReader {
  /**
   * Parse one network read. Appends every event completed by these bytes to `out`.
   * Returns false when an event (its accumulated field bytes) exceeded maxEventBytes:
   * the reader is then dead and must not be used again.
   */
  readonly push: (bytes: Uint8Array, out: Array<SseEvent>) => boolean
  /**
   * End of input: dispatches a final event that had data but no terminating blank
   * line (real servers do this). Returns false on overflow as above.
   */
  readonly end: (out: Array<SseEvent>) => boolean
}

const DEFAULT_MAX_EVENT_BYTES = 1_048_576
// A carry buffer grown past this by one long line is dropped afterwards rather
// than pinned for the rest of the stream.
const CARRY_KEEP_BYTES = 64 * 1024

// One decoder for every reader: each call decodes a whole region (no `stream: true`), so it keeps no state between
// calls. The stream-start BOM is handled by hand below; as every call is a fresh decode, letting the decoder strip
// BOMs would strip them mid-stream.
const decoder = new TextDecoder("utf-8", { ignoreBOM: true })

const LF = 10
const CR = 13
const COLON = 58
const SPACE = 32
const LOWER_D = 100
const LOWER_E = 101
const BOM = [0xef, 0xbb, 0xbf] as const

// UTF-8 length of s[from, to), only needed for text that is not pure ASCII.
// A non-streaming TextDecoder never yields lone surrogates, so each surrogate
// half is half of a 4-byte sequence. U+FFFD counts 3 even when it replaced a
// single invalid byte: over-counting only makes the bound stricter.
const utf8Length = (s: string, from: number, to: number): number => {
  let n = 0
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i)
    n += c < 0x80 ? 1 : c < 0x800 ? 2 : c >= 0xd800 && c <= 0xdfff ? 2 : 3
  }
  return n
}

/**
 * `maxEventBytes` (default 1 MiB) bounds the UTF-8 bytes of the `data:` and
 * `event:` lines of one event (field names included, terminators excluded) plus
 * any unterminated line still being buffered. `id:`, `retry:` and unknown fields
 * are dropped on sight and do not count.
 *
 * @internal
 */
export const make = (options?: { readonly maxEventBytes?: number }): SseReader => {
  const maxEventBytes = options?.maxEventBytes ?? DEFAULT_MAX_EVENT_BYTES

  let dead = false
  // BOM bytes matched so far at stream start; -1 once past that point.
  let bomMatched = 0
  // Unterminated line carried over from earlier reads, as raw bytes.
  let carry = new Uint8Array(256)
  let carryLen = 0
  // A read ended in CR: a LF at the start of the next read completes that CRLF.
  let pendingCR = false
  let data = ""
  let hasData = false
  let eventName = ""
  let eventBytes = 0

  const fail = (): boolean => {
    dead = true
    carry = new Uint8Array(0)
    carryLen = 0
    data = ""
    return false
  }

  const appendCarry = (bytes: Uint8Array, from: number, to: number): void => {
    const need = carryLen + (to - from)
    if (need > carry.length) {
      const grown = new Uint8Array(Math.max(need, carry.length * 2))
      grown.set(carry.subarray(0, carryLen))
      carry = grown
    }
    carry.set(bytes.subarray(from, to), carryLen)
    carryLen = need
  }

  const takeCarry = (): string => {
    const line = decoder.decode(carry.subarray(0, carryLen))
    carryLen = 0
    if (carry.length > CARRY_KEEP_BYTES) carry = new Uint8Array(256)
    return line
  }

  const dispatch = (out: Array<SseEvent>): void => {
    if (hasData) {
      out.push({ event: eventName, data })
      data = ""
      hasData = false
    }
    eventName = ""
    eventBytes = 0
  }

  // Handles one complete, non-empty line s[p, e) of `size` UTF-8 bytes. Returns false on overflow.
  // Only `data` and `event` are kept: comments (":" lines, keep-alives), `id`, `retry` and unknown fields carry
  // nothing SseEvent exposes, so they are dropped without being buffered; in particular `retry` never affects pacing.
  const field = (s: string, p: number, e: number, size: number): boolean => {
    const c0 = s.charCodeAt(p)
    const isData = c0 === LOWER_D
    const name = isData ? "data" : c0 === LOWER_E ? "event" : undefined
    if (name === undefined || e - p < name.length || !s.startsWith(name, p)) return true
    // "data" alone is a data field with an empty value; "datax: ..." is an unknown field
    let v = p + name.length
    if (v < e && s.charCodeAt(v) !== COLON) return true
    eventBytes += size
    if (eventBytes > maxEventBytes) return false
    v++
    if (v < e && s.charCodeAt(v) === SPACE) v++
    const value = v < e ? s.slice(v, e) : ""
    if (!isData) {
      eventName = value
    } else if (hasData) {
      data = data + "\n" + value
    } else {
      data = value
      hasData = true
    }
    return true
  }

  const push = (bytes: Uint8Array, out: Array<SseEvent>): boolean => {
    if (dead) return false
    const n = bytes.length
    let p = 0

    if (bomMatched >= 0) {
      while (p < n && bomMatched < 3 && bytes[p] === BOM[bomMatched]) {
        p++
        bomMatched++
      }
      if (bomMatched === 3) {
        bomMatched = -1
      } else if (p < n) {
        // A BOM prefix that turned out not to be one is ordinary line content.
        if (bomMatched > 0) appendCarry(new Uint8Array(BOM), 0, bomMatched)
        bomMatched = -1
      } else {
        return true
      }
    }

    if (pendingCR && p < n) {
      if (bytes[p] === LF) p++
      pendingCR = false
    }

    // Finish the line carried over from earlier reads. The scan only runs to
    // the first terminator, i.e. over bytes that belong to that line anyway.
    if (carryLen > 0) {
      let j = p
      while (j < n && bytes[j] !== LF && bytes[j] !== CR) j++
      if (eventBytes + carryLen + (j - p) > maxEventBytes) return fail()
      appendCarry(bytes, p, j)
      if (j === n) return true
      let terminator = 1
      if (bytes[j] === CR) {
        if (j + 1 === n) pendingCR = true
        else if (bytes[j + 1] === LF) terminator = 2
      }
      const size = carryLen
      const line = takeCarry()
      if (!field(line, 0, line.length, size)) return fail()
      p = j + terminator
    }

    // The last terminator is usually within one line of the end of the read.
    let last = n - 1
    while (last >= p && bytes[last] !== LF && bytes[last] !== CR) last--

    if (last >= p) {
      const s = decoder.decode(bytes.subarray(p, last + 1))
      const len = s.length
      // Each decoded UTF-16 unit costs at least one byte, so equal lengths mean
      // every unit is one byte and string offsets are byte offsets.
      const ascii = len === last + 1 - p
      let q = 0
      let lf = s.indexOf("\n")
      let cr = s.indexOf("\r")
      while (q < len) {
        let e: number
        let next: number
        if (cr < 0 || (lf >= 0 && lf < cr)) {
          e = lf
          next = lf + 1
        } else {
          e = cr
          next = cr + 1
          if (next < len && s.charCodeAt(next) === LF) next++
          // The region ends at the last terminator, so a final CR here is the
          // last byte of the read exactly when nothing follows it.
          else if (next === len && last === n - 1) pendingCR = true
        }

        if (e === q) {
          dispatch(out)
        } else if (!field(s, q, e, ascii ? e - q : utf8Length(s, q, e))) {
          return fail()
        }

        q = next
        if (lf >= 0 && lf < q) lf = s.indexOf("\n", q)
        if (cr >= 0 && cr < q) cr = s.indexOf("\r", q)
      }
      p = last + 1
    }

    if (p < n) {
      // Checked before copying, so an endless line costs at most maxEventBytes.
      if (eventBytes + carryLen + (n - p) > maxEventBytes) return fail()
      appendCarry(bytes, p, n)
    }
    return true
  }

  const end = (out: Array<SseEvent>): boolean => {
    if (dead) return false
    if (bomMatched > 0) appendCarry(new Uint8Array(BOM), 0, bomMatched)
    bomMatched = -1
    // A last line without terminator is taken as complete: servers that close
    // right after `data: [DONE]` would otherwise lose their final event.
    if (carryLen > 0) {
      const size = carryLen
      const line = takeCarry()
      if (!field(line, 0, line.length, size)) return fail()
    }
    dispatch(out)
    pendingCR = false
    return true
  }

  return { push, end }
}
