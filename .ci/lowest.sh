#!/usr/bin/env bash
# The suite against the lowest versions the peer ranges allow: a copy of the repository in a temporary folder, whose
# devDependencies pin effect, @effect/platform and @effect/platform-node to the bottom of package.json's
# peerDependencies ranges (and the CLI's dependencies to the bottom of theirs), installed without the lock file.
# Type-check and tests run there; the exit status is theirs.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

work=$(mktemp -d "${TMPDIR:-/tmp}/llm-router-lowest.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The floor of a caret range: "^3.22.2" -> "3.22.2".
floor() { node -e 'const p = require(process.argv[1]); const r = p[process.argv[2]][process.argv[3]]; if (!/^\^\d+\.\d+\.\d+$/.test(r)) { console.error(`not a caret range: ${process.argv[3]} ${r}`); process.exit(1) } console.log(r.slice(1))' "$root/package.json" "$1" "$2"; }

pins=()
for name in effect @effect/platform @effect/platform-node; do
  v=$(floor peerDependencies "$name") || exit 1
  pins+=("$name@$v")
done
for name in @effect/cli @effect/printer @effect/printer-ansi; do
  v=$(floor dependencies "$name") || exit 1
  pins+=("$name@$v")
done
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
