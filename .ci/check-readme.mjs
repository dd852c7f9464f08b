// Every ```ts block of the README is written out as a module and type-checked against the built package (imports of
// "effect-llm-router" resolve through package.json exports to dist/), so the docs cannot rot.
import { execFileSync } from "node:child_process"
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"

const readme = readFileSync("README.md", "utf8")
const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1])
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
try {
  execFileSync("npx", ["tsc", "-p", `${dir}/tsconfig.json`], { stdio: "inherit" })
} catch {
  process.exit(1)
}
console.log(`README: ${blocks.length} code blocks type-check`)
