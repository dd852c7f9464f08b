/**
 * A real `redis-server` for a test file: on a free loopback port, no persistence, stopped by `stop()` and, should the
 * test process die first, by itself (a shell holds it and kills it when the pipe from this process closes).
 * A missing `redis-server` is an error, never a skip: `.ci/run` installs it (`apt-get install redis-server`).
 */
import { spawn, spawnSync } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import * as net from "node:net"

/** A port nobody listens on now: the one the system gives a listener on port 0. */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port
      server.close(() => resolve(port))
    })
  })

const ping = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1")
    let reply = ""
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(200, () => done(false))
    socket.once("error", () => done(false))
    socket.on("data", (chunk) => {
      reply += chunk.toString("latin1")
      if (reply.includes("\r\n")) done(reply.startsWith("+PONG"))
    })
    socket.once("connect", () => socket.write("PING\r\n"))
  })

const sleep = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis))

/** One server on one port; `start` again after `stop` (or `kill`) brings up a fresh one on the same port. */
export interface RedisServer {
  readonly port: number
  readonly url: string
  readonly start: () => Promise<void>
  /** Kills it at once (SIGKILL), as a crash would. */
  readonly stop: () => Promise<void>
}

export const requireRedisServer = (): void => {
  const found = spawnSync("redis-server", ["--version"], { encoding: "utf8" })
  if (found.error !== undefined || found.status !== 0) {
    throw new Error(
      "redis-server is not installed: the Redis tests need a real server (apt-get install -y redis-server; .ci/run " +
        "installs it when it is missing)"
    )
  }
}

export const redisServer = async (): Promise<RedisServer> => {
  requireRedisServer()
  const port = await freePort()
  let child: ChildProcess | undefined
  const args = `--port ${port} --bind 127.0.0.1 --save '' --appendonly no --loglevel warning`
  const stop = async () => {
    const running = child
    child = undefined
    if (running === undefined || running.exitCode !== null) return
    const exited = new Promise((resolve) => running.once("exit", resolve))
    running.stdin?.end()
    await exited
  }
  const start = async () => {
    if (child !== undefined) throw new Error("redis-server is already running")
    // The shell starts the server, then waits for its stdin to close (stop(), or this process dying) and kills it.
    child = spawn("sh", [
      "-c",
      `redis-server ${args} & p=$!; cat >/dev/null; kill -9 $p 2>/dev/null; { wait $p; } 2>/dev/null`
    ], {
      stdio: ["pipe", "ignore", "inherit"]
    })
    const deadline = Date.now() + 5000
    while (!(await ping(port))) {
      if (Date.now() > deadline) {
        await stop()
        throw new Error(`redis-server did not answer PING on 127.0.0.1:${port} within 5 s`)
      }
      await sleep(20)
    }
  }
  await start()
  return { port, url: `redis://127.0.0.1:${port}`, start, stop }
}
