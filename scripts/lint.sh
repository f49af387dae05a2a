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

[ $fail -eq 0 ] && echo "lint: ok" || echo "lint: FAILED"
exit $fail
