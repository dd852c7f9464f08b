// Import packages from the repository's TOP-LEVEL node_modules, whatever bench/node_modules holds.
// A bare `import "effect"` from bench/clients/ would find bench/node_modules/effect first; the library in dist/
// resolves the top-level copy, and two effect instances do not mix (Context tags, fibers, Stream internals).
// Node built-ins only.
import { readFileSync } from "node:fs"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..")

const pickImport = (entry) => {
  if (typeof entry === "string") return entry
  if (entry === null || typeof entry !== "object") return undefined
  for (const cond of ["import", "node", "default"]) {
    const v = pickImport(entry[cond])
    if (v !== undefined) return v
  }
  return undefined
}

/** The absolute file URL of the ESM entry (or `subpath`, e.g. "./Stream") of a top-level package. */
export const resolveTopLevel = (name, subpath = ".") => {
  const dir = join(REPO_ROOT, "node_modules", name)
  const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"))
  let rel
  if (pkg.exports !== undefined) {
    const exp = typeof pkg.exports === "string" || !Object.keys(pkg.exports).some((k) => k.startsWith("."))
      ? { ".": pkg.exports }
      : pkg.exports
    rel = pickImport(exp[subpath])
  } else if (subpath === ".") {
    rel = pkg.module ?? pkg.main ?? "index.js"
  }
  if (rel === undefined) throw new Error(`cannot resolve ${name} ${subpath} in ${dir}`)
  return pathToFileURL(join(dir, rel)).href
}

export const importTopLevel = (name, subpath) => import(resolveTopLevel(name, subpath))
