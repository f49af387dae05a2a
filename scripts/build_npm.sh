#!/usr/bin/env bash
# Builds the npm package into npm/ (what dnt would do, without dnt): tsc emits ESM JavaScript and
# .d.ts for every runtime backend, then package.json, README, LICENSE, csrc/ and the prebuilt
# native library are added. `cd npm && npm pack` makes the tarball.
#
#   scripts/build_npm.sh            type errors are printed; the package is still built
#   scripts/build_npm.sh --strict   type errors fail the build (use for releases)
#
# Layout of npm/ (the package root):
#   mod.js mod.d.ts src/ ffi/           tsc output; ffi/mod.js picks ffi/{node,bun,deno}.js at run time
#   cli.js, shmkit.js                   the CLI module and the `shmkit` bin launcher (when cli.ts exists)
#   csrc/                               C sources, compiled on first use where no prebuilt fits
#   prebuilt/linux-x64/libshmkit.so     built here by `make lib`
set -euo pipefail
cd "$(dirname "$0")/.."
strict=0
[ "${1:-}" = "--strict" ] && strict=1
BIN=node_modules/.bin
OUT=npm
CFG=build/npm-tsc
version=$(node -p 'require("./deno.json").version')
koffi=$(node -p 'require("./package.json").dependencies.koffi')

rm -rf "$OUT" "$CFG"
mkdir -p "$OUT" "$CFG"

# --- 1. TypeScript -> ESM + .d.ts, one tsc pass per set of runtime types -------------------------
main_files=('"../../mod.ts"')
[ -f cli.ts ] && main_files+=('"../../cli.ts"')
for f in ffi/*.ts; do
  case "$f" in ffi/deno.ts | ffi/bun.ts | ffi/bun_waiter.ts) ;; *) main_files+=("\"../../$f\"") ;; esac
done
join() { local IFS=,; echo "$*"; }
cat >"$CFG/main.json" <<EOF
{ "extends": "../../tsconfig.npm.json", "compilerOptions": { "rootDir": "../..", "outDir": "../../$OUT" },
  "include": [], "exclude": [], "files": [$(join "${main_files[@]}")] }
EOF
# bun.ts / bun_waiter.ts against bun-types; deno.ts against the types of the installed Deno.
cat >"$CFG/bun.json" <<EOF
{ "extends": "../../tsconfig.npm.json", "compilerOptions": { "types": ["bun-types"], "rootDir": "../..", "outDir": "../../$OUT" },
  "include": [], "exclude": [], "files": ["../../ffi/bun.ts", "../../ffi/bun_waiter.ts"] }
EOF
"$BIN/deno" types >"$CFG/deno.d.ts"
cat >"$CFG/deno.json" <<EOF
{ "extends": "../../tsconfig.npm.json", "compilerOptions": { "types": [], "lib": ["ESNext"], "rootDir": "../..", "outDir": "../../$OUT" },
  "include": [], "exclude": [], "files": ["../../ffi/deno.ts", "deno.d.ts"] }
EOF
errors=0
for pass in main bun deno; do
  if ! "$BIN/tsc" -p "$CFG/$pass.json"; then
    errors=$((errors + 1))
    echo "build_npm: tsc ($pass pass) reported type errors above" >&2
  fi
done
if [ "$errors" -gt 0 ] && [ "$strict" -eq 1 ]; then
  echo "build_npm: --strict: not packaging code with type errors" >&2
  exit 1
fi
for f in mod.js ffi/mod.js ffi/node.js ffi/bun.js ffi/bun_waiter.js ffi/deno.js; do
  [ -f "$OUT/$f" ] || { echo "build_npm: tsc did not emit $OUT/$f" >&2; exit 1; }
done

# --- 2. The bin: cli.js needs a node shebang and the executable bit ------------------------------
has_cli=0
if [ -f "$OUT/cli.js" ]; then
  has_cli=1
  # cli.ts starts with a Deno shebang (tsc keeps it); the npm bin runs under Node.
  if head -1 "$OUT/cli.js" | grep -q '^#!'; then
    { echo '#!/usr/bin/env node'; tail -n +2 "$OUT/cli.js"; } >"$OUT/cli.js.tmp"
  else
    { echo '#!/usr/bin/env node'; cat "$OUT/cli.js"; } >"$OUT/cli.js.tmp"
  fi
  mv "$OUT/cli.js.tmp" "$OUT/cli.js"
  chmod +x "$OUT/cli.js"
  # The bin itself is a two-line launcher: npm links bins through symlinks (and .cmd shims on
  # Windows), where cli.js's own "am I the main module" check cannot see that it was started.
  cat >"$OUT/shmkit.js" <<'EOF2'
#!/usr/bin/env node
import process from "node:process";
import { main } from "./cli.js";
process.exitCode = main(process.argv.slice(2));
EOF2
  chmod +x "$OUT/shmkit.js"
fi

# --- 3. Native code: sources for compile-on-first-use, and the library built on this host ---------
mkdir -p "$OUT/csrc"
cp csrc/*.c csrc/*.h csrc/exports.map "$OUT/csrc/"
host="$(node -p 'process.platform')-$(node -p 'process.arch')"
if [ "$host" = "linux-x64" ]; then
  [ -f build/libshmkit.so ] || make lib
  mkdir -p "$OUT/prebuilt/linux-x64"
  cp build/libshmkit.so "$OUT/prebuilt/linux-x64/libshmkit.so"
else
  echo "build_npm: host is $host, not linux-x64: no prebuilt library packaged (csrc/ is compiled on first use)" >&2
fi

# --- 4. package.json, README, LICENSE -----------------------------------------------------------------
VERSION="$version" KOFFI="$koffi" HAS_CLI="$has_cli" node --input-type=module -e '
import { readFileSync, writeFileSync } from "node:fs";
const env = process.env;
const cli = env.HAS_CLI === "1";
const root = JSON.parse(readFileSync("package.json", "utf8"));
const pkg = {
  name: "shmkit",
  version: env.VERSION,
  description: "Cross-process shared memory for TypeScript on Deno, Bun and Node: segments, file mappings, lock-free rings, pools, channels, locks",
  keywords: ["shared-memory", "shm", "mmap", "ipc", "futex", "ring-buffer", "ffi", "deno", "bun"],
  license: "MIT",
  repository: root.repository,
  bugs: root.bugs,
  homepage: root.homepage,
  type: "module",
  main: "./mod.js",
  types: "./mod.d.ts",
  exports: {
    ".": { types: "./mod.d.ts", default: "./mod.js" },
    ...(cli ? { "./cli": { types: "./cli.d.ts", default: "./cli.js" } } : {}),
    "./package.json": "./package.json",
  },
  ...(cli ? { bin: { shmkit: "./shmkit.js" } } : {}),
  files: ["*.js", "*.d.ts", "src/", "ffi/", "csrc/", "prebuilt/", "docs/", "README.md", "CHANGELOG.md", "LICENSE"],
  // koffi is the FFI under Node; Bun (bun:ffi) and Deno (Deno.dlopen) do not load it.
  dependencies: { koffi: env.KOFFI },
  // 20.19: require(esm) without a flag (CommonJS `require("shmkit")`); Node 24 LTS is what the tests run.
  engines: { node: ">=20.19", bun: ">=1.1", deno: ">=2.2" },
  sideEffects: true,
};
writeFileSync("npm/package.json", JSON.stringify(pkg, null, 2) + "\n");
'
cp LICENSE "$OUT/LICENSE"
[ -f CHANGELOG.md ] && cp CHANGELOG.md "$OUT/CHANGELOG.md"
# docs/: LAYOUT.md is the byte-level interop contract; API.md the API reference.
mkdir -p "$OUT/docs"
cp -r docs/. "$OUT/docs/"
# The npm README is written for npm users: the repository README's "From npm" section (between
# its npm-readme markers) plus pointers, not `make demo` and ./mod.ts.
node --input-type=module -e '
import { readFileSync, writeFileSync } from "node:fs";
const readme = readFileSync("README.md", "utf8");
const m = readme.match(/<!-- npm-readme:start -->([\s\S]*?)<!-- npm-readme:end -->/);
if (!m) { console.error("build_npm: README.md has no <!-- npm-readme:start/end --> section"); process.exit(1); }
const repo = JSON.parse(readFileSync("package.json", "utf8")).homepage;
writeFileSync("npm/README.md", "# shmkit\n\nCross-process shared memory for TypeScript on Deno, Bun and Node: named segments, file mappings,\n" +
  "lock-free rings, block pools, zero-copy channels, robust locks and numeric arrays.\n\n" + m[1].trim() + "\n\n" +
  "More: [API reference](docs/API.md), [byte layouts for other languages](docs/LAYOUT.md), [platforms](docs/platforms.md), " +
  "[changelog](CHANGELOG.md), [repository](" + repo + ").\n");
'
echo "build_npm: $OUT/ ready (shmkit $version$([ $has_cli -eq 1 ] && echo ", bin shmkit" || echo ", no cli.ts yet: no bin"))"
