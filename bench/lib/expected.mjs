// What the loopback upstream sends, so that every client can check what it received.
// Node built-ins only (none needed).

/** The assistant text of every non-streaming answer. */
export const NON_STREAM_TEXT = "Hello from the bench upstream."

/** The text of content chunk `i` of a stream: 4 characters, distinct for every i < 36^4. */
export const chunkText = (i) => (i % 1_679_616).toString(36).padStart(4, "0")

const expectedCache = new Map()
/** The concatenated text of an N-chunk stream. */
export const expectedStreamText = (n) => {
  let s = expectedCache.get(n)
  if (s === undefined) {
    const parts = new Array(n)
    for (let i = 0; i < n; i++) parts[i] = chunkText(i)
    s = parts.join("")
    expectedCache.set(n, s)
  }
  return s
}

/** The user message every client sends; the upstream reads `chunks=N` from the request body. */
export const promptFor = (n) => `bench chunks=${n}`
