// The published package must contain every file its exports map and bin name, and nothing from test/, scratchpad/
// or bench/.
import { execFileSync } from "node:child_process"
import { readFileSync } from "node:fs"

const pkg = JSON.parse(readFileSync("package.json", "utf8"))
const [report] = JSON.parse(
  execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { encoding: "utf8" })
)
const files = new Set(report.files.map((f) => f.path))
const problems = []

const targets = []
for (const [entry, value] of Object.entries(pkg.exports)) {
  if (typeof value === "string") targets.push([entry, value])
  else for (const [condition, target] of Object.entries(value)) targets.push([`${entry} (${condition})`, target])
}
for (const [name, target] of Object.entries(pkg.bin ?? {})) targets.push([`bin ${name}`, target])
for (const [entry, target] of targets) {
  const path = target.replace(/^\.\//, "")
  if (!files.has(path)) problems.push(`${entry} names ${path}, which is not in the package`)
}
for (const file of files) {
  if (/^(test|scratchpad|bench|\.ci)\//.test(file)) problems.push(`${file} must not be published`)
  if (/\.test\.(js|ts|d\.ts)$/.test(file)) problems.push(`${file} looks like a test`)
}
// The main entry must not pull in Node-only modules (platform-node replaces the global fetch dispatcher).
const mainFiles = [...files].filter((f) =>
  f.startsWith("dist/src/") && f.endsWith(".js") && !/\/(node|cli|testing|redis)\//.test(f)
)
for (const file of mainFiles) {
  const text = readFileSync(file, "utf8")
  if (/from "(@effect\/platform-node|node:)/.test(text)) problems.push(`${file} imports a Node-only module`)
}
// Each optional peer is imported only by its own entry point.
const optionalPeers = [
  [/from "ioredis"/, "ioredis", "dist/src/redis/", "./redis"],
  [/from "@effect\/ai(\/[^"]*)?"/, "@effect/ai", "dist/src/ai/", "./ai"],
  [/from "(@ai-sdk\/[^"]*|ai)"/, "@ai-sdk/* or ai", "dist/src/ai-sdk/", "./ai-sdk"]
]
for (const file of files) {
  if (!file.endsWith(".js")) continue
  const text = readFileSync(file, "utf8")
  for (const [pattern, name, dir, entry] of optionalPeers) {
    if (!file.startsWith(dir) && pattern.test(text)) problems.push(`${file} imports ${name} (only ${entry} may)`)
  }
}
if (problems.length > 0) {
  console.error(problems.join("\n"))
  process.exit(1)
}
console.log(`package: ${files.size} files, ${targets.length} export targets present, no test or scratchpad files`)
