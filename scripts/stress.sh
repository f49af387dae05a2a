#!/usr/bin/env bash
# make stress: long soaks and thousands of kills (not run by CI). Each tests/stress/*_stress.ts is a
# program that prints its seed, runs its soak and exits non-zero on any violation.
# SHMKIT_STRESS_RUNTIMES="deno bun" limits runtimes; SHMKIT_SEED fixes the seed.
set -u
cd "$(dirname "$0")/.."
BIN=node_modules/.bin
fail=0; ran=0
for f in tests/stress/*_stress.ts; do
  [ -e "$f" ] || continue
  for rt in ${SHMKIT_STRESS_RUNTIMES:-deno bun node}; do
    echo "=== $rt $f ==="
    case "$rt" in
      deno) $BIN/deno run --allow-all --no-check "$f" ;;
      bun)  $BIN/bun "$f" ;;
      node) node "build/node/${f%.ts}.js" ;;
    esac
    rc=$?; ran=$((ran + 1))
    [ $rc -ne 0 ] && { echo "FAILED: $rt $f (exit $rc)"; fail=$((fail + 1)); }
  done
done
echo "$((ran - fail)) passed, $fail failed"
[ $fail -eq 0 ]
# The C library under ASan + UBSan: a long randomized run of hostile arguments against every
# exported function (csrc/test/hostile.c; SHMKIT_SEED fixes the seed).
echo "=== asan csrc/test/hostile.c --random ==="
if make -s build/asan/hostile; then
  ./build/asan/hostile --random "${SHMKIT_HOSTILE_CALLS:-5000000}" "${SHMKIT_SEED:-$RANDOM}" || { echo "FAILED: asan hostile"; fail=$((fail + 1)); }
else
  echo "FAILED: asan hostile did not build"; fail=$((fail + 1))
fi
echo "after asan: $fail failed"
[ $fail -eq 0 ]
