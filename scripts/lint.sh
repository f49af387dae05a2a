#!/usr/bin/env bash
# make lint: deno lint, deno fmt --check, type checks for Deno, Node and Bun, and the runtime
# boundary (Deno., bun:ffi and koffi only in ffi/, tests/, bench/).
set -u
cd "$(dirname "$0")/.."
BIN=node_modules/.bin
export NO_COLOR=1
fail=0
step() { echo "--- $1"; }

step "deno lint"
$BIN/deno lint -q || fail=1

step "deno fmt --check"
$BIN/deno fmt --check -q || fail=1

step "deno check (Deno types)"
targets=(mod.ts ffi/deno.ts)
for f in cli.ts demo.ts; do [ -f "$f" ] && targets+=("$f"); done
for f in tests/*.ts tests/fixtures/*.ts tests/stress/*.ts bench/*.ts bench/scenarios/*.ts bench/micro/*.ts examples/*.ts; do [ -f "$f" ] && targets+=("$f"); done
$BIN/deno check -q "${targets[@]}" || fail=1

step "deno doc --lint (every export documented)"
$BIN/deno doc --lint mod.ts >/dev/null || fail=1

step "tsc (Node types, the npm build's view)"
$BIN/tsc -p tsconfig.node.json --noEmit || fail=1

step "tsc (Bun types)"
$BIN/tsc -p tsconfig.bun.json --noEmit || fail=1

step "runtime boundary: Deno. / bun:ffi / koffi only in ffi/, tests/, bench/"
hits=$(grep -rnE '\bDeno\.|bun:ffi|\bkoffi\b' --include='*.ts' . \
  --exclude-dir=node_modules --exclude-dir=build --exclude-dir=npm --exclude-dir=ffi --exclude-dir=tests --exclude-dir=bench \
  | grep -vE '^[^:]+:[0-9]+:\s*(//|\*|/\*)' || true)
if [ -n "$hits" ]; then echo "$hits"; echo "runtime-specific code outside ffi/, tests/, bench/"; fail=1; fi

step "C: warnings as errors"
make -s lib >/dev/null || fail=1

step "Python: every file compiles; pyflakes when installed; the accelerator compiles with -Wall -Werror"
pyfiles=$(find python bench/python examples -name '*.py' -not -path '*/build/*' -not -path '*.egg-info*' 2>/dev/null)
if command -v python3 >/dev/null; then
  python3 -m py_compile $pyfiles || fail=1
  if python3 -m pyflakes --version >/dev/null 2>&1; then python3 -m pyflakes $pyfiles || fail=1; else echo "(pyflakes not installed: skipped)"; fi
  inc=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
  if [ -f "$inc/Python.h" ]; then
    ${CC:-cc} -std=c11 -Wall -Wextra -Werror -fsyntax-only -I "$inc" python/shmkit/_accel.c || fail=1
  else
    echo "(no Python.h: python/shmkit/_accel.c not checked)"
  fi
else
  echo "(no python3: skipped)"
fi

[ $fail -eq 0 ] && echo "lint: ok" || echo "lint: FAILED"
exit $fail
