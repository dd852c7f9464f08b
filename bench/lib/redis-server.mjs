// A throwaway `redis-server` for the bench's `-redis` clients: on a free loopback port, no persistence, and stopped by
// itself when the process that started it dies. A shell holds the server and kills it once its stdin (a pipe from the
// starting process) closes: `stop()`, or that process exiting for any reason, SIGKILL included. The same idea as
// test/support/redisServer.ts, in plain .mjs. Node built-ins only.
import { spawn, spawnSync } from "node:child_process"
import net from "node:net"

/** Why `redis-server` cannot be used here, or undefined when it can. */
export const redisServerMissing = () => {
  const found = spawnSync("redis-server", ["--version"], { encoding: "utf8" })
  if (found.error !== undefined || found.status !== 0) {
    return "redis-server is not installed (apt-get install redis-server)"
  }
  return undefined
}

/** A port nobody listens on now: the one the system gives a listener on port 0. */
const freePort = () =>
  new Promise((res, rej) => {
    const server = net.createServer()
    server.once("error", rej)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address()
      server.close(() => res(port))
    })
  })

const ping = (port) =>
  new Promise((res) => {
    const socket = net.connect(port, "127.0.0.1")
    let reply = ""
    const done = (ok) => {
      socket.destroy()
      res(ok)
    }
    socket.setTimeout(200, () => done(false))
    socket.once("error", () => done(false))
    socket.on("data", (chunk) => {
      reply += chunk.toString("latin1")
      if (reply.includes("\r\n")) done(reply.startsWith("+PONG"))
    })
    socket.once("connect", () => socket.write("PING\r\n"))
  })

/**
 * Starts a server; resolves `{ port, url, stop() }` once it answers PING (at most 5 s, else it is stopped and the
 * promise rejects). `stop()` kills it (SIGKILL: nothing to save) and resolves when the shell has exited.
 */
export const startRedisServer = async () => {
  const port = await freePort()
  const args = `--port ${port} --bind 127.0.0.1 --save '' --appendonly no --loglevel warning`
  const child = spawn("sh", [
    "-c",
    `redis-server ${args} & p=$!; cat >/dev/null; kill -9 $p 2>/dev/null; { wait $p; } 2>/dev/null`
  ], { stdio: ["pipe", "ignore", "inherit"] })
  const exited = new Promise((res) => child.once("exit", res))
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.stdin.end()
      await exited
    }
  }
  const deadline = Date.now() + 5_000
  while (!(await ping(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop()
      throw new Error(`redis-server did not answer PING on 127.0.0.1:${port} within 5 s`)
    }
    await new Promise((res) => setTimeout(res, 20))
  }
  return { port, url: `redis://127.0.0.1:${port}`, stop }
}
