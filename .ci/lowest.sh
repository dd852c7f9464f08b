#!/usr/bin/env bash
# The suite against the lowest versions the peer ranges allow: a copy of the repository in a temporary folder, whose
# devDependencies pin every peer (effect, @effect/platform, @effect/platform-node) and dependency to the bottom of its
# range in package.json, installed without the lock file.
# Type-check and tests run there; the exit status is theirs.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

work=$(mktemp -d "${TMPDIR:-/tmp}/llm-router-lowest.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The floor of every caret range of peerDependencies and dependencies: "^3.22.0" -> "effect@3.22.0".
ranges=$(node -e '
  const p = require(process.argv[1])
  for (const field of ["peerDependencies", "dependencies"]) {
    for (const [name, range] of Object.entries(p[field] ?? {})) {
      if (!/^\^\d+\.\d+\.\d+$/.test(range)) { console.error(`not a caret range: ${name} ${range}`); process.exit(1) }
      console.log(`${name}@${range.slice(1)}`)
    }
  }
' "$root/package.json") || exit 1
mapfile -t pins <<<"$ranges"
[ "${#pins[@]}" -gt 0 ] || { echo "lowest: no ranges found" >&2; exit 1; }
echo "lowest versions: ${pins[*]}"

git ls-files -z | xargs -0 -I{} cp --parents {} "$work" 2>/dev/null || tar -c --files-from <(git ls-files) | tar -x -C "$work"
cd "$work" || exit 1
rm -f package-lock.json
node -e '
  const fs = require("fs")
  const p = JSON.parse(fs.readFileSync("package.json", "utf8"))
  for (const pin of process.argv.slice(1)) {
    const at = pin.lastIndexOf("@")
    const name = pin.slice(0, at), version = pin.slice(at + 1)
    if (p.dependencies?.[name] !== undefined) p.dependencies[name] = version
    p.devDependencies[name] = version
    // Overrides pin the version for every dependent too, not only the top-level copy.
    p.overrides = { ...p.overrides, [name]: version }
  }
  fs.writeFileSync("package.json", JSON.stringify(p, null, 2))
' "${pins[@]}"

npm install --no-audit --no-fund --loglevel=error || { echo "lowest: npm install failed" >&2; exit 1; }
for pin in "${pins[@]}"; do
  name=${pin%@*}
  want=${pin##*@}
  got=$(node -p "require('./node_modules/$name/package.json').version")
  [ "$got" = "$want" ] || { echo "lowest: $name is $got, expected $want" >&2; exit 1; }
done
npx tsc -p tsconfig.json --noEmit || { echo "lowest: type errors" >&2; exit 1; }
npx vitest run --reporter=dot --exclude test/bench.smoke.test.ts
