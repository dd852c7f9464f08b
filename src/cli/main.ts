#!/usr/bin/env node
/**
 * The `llm-router` executable: wires {@link run} to the process. See `llm-router --help`.
 *
 * @since 0.1.0
 */
import { run } from "./cli.js"

const readStdin = async (): Promise<string> => {
  const chunks: Array<Buffer> = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString("utf8")
}

// The first Ctrl-C stops the call cleanly (exit 130); a second one kills the process as usual.
const controller = new AbortController()
process.once("SIGINT", () => controller.abort())

const code = await run(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  env: process.env,
  stdin: { isTTY: process.stdin.isTTY === true, read: readStdin },
  signal: controller.signal
})
// exitCode rather than exit(): pending writes to a piped stdout still get flushed.
process.exitCode = code
