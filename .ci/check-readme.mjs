// Every ```ts block of the README, and of each `@example` in the JSDoc of src/ (the public modules' examples), is
// written out as a module and type-checked against the built package (imports of "effect-llm-router" resolve through
// package.json exports to dist/), so the docs cannot rot.
import { execFileSync } from "node:child_process"
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { join } from "node:path"

const readme = readFileSync("README.md", "utf8")
const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1])
const readmeBlocks = blocks.length

const sources = (dir) =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? sources(path) : path.endsWith(".ts") ? [path] : []
  })
let exampleBlocks = 0
for (const file of sources("src")) {
  const text = readFileSync(file, "utf8")
  for (const comment of text.matchAll(/\/\*\*([\s\S]*?)\*\//g)) {
    // The comment's lines without their leading " * ".
    const body = comment[1].split("\n").map((line) => line.replace(/^\s*\* ?/, "")).join("\n")
    if (!body.includes("@example")) continue
    for (const m of body.matchAll(/```ts\n([\s\S]*?)```/g)) {
      blocks.push(`// ${file}\n${m[1]}`)
      exampleBlocks++
    }
  }
}
const dir = ".ci/readme-blocks"
rmSync(dir, { recursive: true, force: true })
mkdirSync(dir, { recursive: true })
blocks.forEach((code, i) => writeFileSync(`${dir}/block${String(i + 1).padStart(2, "0")}.ts`, `${code}\nexport {}\n`))
writeFileSync(
  `${dir}/tsconfig.json`,
  JSON.stringify(
    {
      extends: "../../tsconfig.json",
      compilerOptions: { noEmit: true, noUnusedLocals: false },
      include: ["./*.ts"]
    },
    null,
    2
  )
)
if (blocks.length === 0) {
  console.error("README.md has no ```ts blocks")
  process.exit(1)
}
let failed = false
try {
  execFileSync("npx", ["tsc", "-p", `${dir}/tsconfig.json`], { stdio: "inherit" })
} catch {
  failed = true
}
// The blocks would otherwise be part of the project's own type-check (they are .ts files under the root).
rmSync(dir, { recursive: true, force: true })
if (failed) process.exit(1)
console.log(`README: ${readmeBlocks} code blocks, JSDoc @example: ${exampleBlocks} code blocks; all type-check`)
