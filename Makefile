# shmkit: the front door. `make demo` and `make test` work on a fresh clone (node/npm, make, cc).
SHELL := /bin/bash
CC ?= cc
CFLAGS ?= -O2
SHMKIT_CFLAGS := -std=c11 -Wall -Wextra -Werror -fPIC -fvisibility=hidden -pthread
BIN := node_modules/.bin
DENO := $(BIN)/deno
BUN := $(BIN)/bun
TSC := $(BIN)/tsc
LIB := build/libshmkit.so
CSRC := csrc/shmkit.c csrc/os_linux.c
CHDR := csrc/shmkit.h csrc/os.h

.PHONY: all lib deps node test test-deno test-bun test-node lint bench demo stress clean npm

all: lib

lib: $(LIB)

$(LIB): $(CSRC) $(CHDR)
	@mkdir -p build
	$(CC) $(CFLAGS) $(SHMKIT_CFLAGS) -shared -o $@ $(CSRC) -Wl,--version-script=csrc/exports.map

# The toolchain comes from the npm registry (package.json devDependencies).
deps: node_modules/.package-lock.json

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

# Node runs the tsc output (the same build the npm package ships).
node: deps
	@$(TSC) -p tsconfig.node.json || echo "tsc reported type errors above (make lint fails on them); the JavaScript was emitted anyway"

test: deps lib node
	@bash scripts/test_all.sh

test-deno: deps lib
	@bash scripts/test_all.sh deno
test-bun: deps lib
	@bash scripts/test_all.sh bun
test-node: deps lib node
	@bash scripts/test_all.sh node

lint: deps
	@bash scripts/lint.sh

bench: deps lib node
	@bash scripts/bench.sh

demo: deps lib node
	$(DENO) run --allow-all demo.ts

stress: deps lib node
	@bash scripts/stress.sh

npm: deps lib
	@bash scripts/build_npm.sh

clean:
	rm -rf build npm bench/results
