#!/usr/bin/env bash
# What `make bench` runs (after `make lib node`): builds the C floor, then runs the driver
# bench/run.ts with Deno. The driver runs the C floor, every bench/scenarios/*.ts on each runtime,
# writes bench/results/<timestamp>.jsonl and regenerates the tables in bench/README.md.
#   SHMKIT_BENCH=S1,S9 make bench        only some bench ids
#   SHMKIT_BENCH_QUICK=1 make bench      smoke run (1 repetition, small samples)
#   SHMKIT_BENCH_REPS / SHMKIT_BENCH_BUDGET (seconds) / SHMKIT_BENCH_RUNTIMES=deno,bun
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=node_modules/.bin
mkdir -p build/bench bench/results
CC=${CC:-cc}
# The floor: -O2 like the library, no -march=native so the floor matches what the library gets.
if [ ! -x build/bench/floor ] || [ bench/c/floor.c -nt build/bench/floor ] || [ bench/c/floor_common.h -nt build/bench/floor ]; then
  $CC -O2 -std=gnu11 -Wall -Wextra -Werror -pthread -o build/bench/floor bench/c/floor.c
fi
if [ ! -x build/bench/heap_floor ] || [ bench/c/heap_floor.c -nt build/bench/heap_floor ] || [ bench/c/floor_common.h -nt build/bench/heap_floor ]; then
  $CC -O2 -std=gnu11 -Wall -Wextra -Werror -o build/bench/heap_floor bench/c/heap_floor.c
fi
# The C floor of the MessageLog protocol (S10), against the layout header.
if [ ! -x build/bench/log_floor ] || [ bench/c/log_floor.c -nt build/bench/log_floor ] || [ bench/c/floor_common.h -nt build/bench/log_floor ] || [ csrc/shmkit_layout.h -nt build/bench/log_floor ]; then
  $CC -O2 -std=gnu11 -Wall -Wextra -Werror -Icsrc -o build/bench/log_floor bench/c/log_floor.c
fi
# The C floor of the Channel's message protocol (S2 "message API").
if [ ! -x build/bench/chan_floor ] || [ bench/c/chan_floor.c -nt build/bench/chan_floor ] || [ bench/c/floor_common.h -nt build/bench/chan_floor ]; then
  $CC -O2 -std=gnu11 -Wall -Wextra -Werror -o build/bench/chan_floor bench/c/chan_floor.c
fi
if [ ! -f build/libshmkit.so ]; then
  echo "bench.sh: build/libshmkit.so is missing; run make lib (make bench does)" >&2
  exit 1
fi
echo "bench.sh: load average $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs" >&2
exec "$BIN/deno" run --allow-all --no-check bench/run.ts "$@"
