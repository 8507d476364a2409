# weir: the two commands are `make run` and `make test`; everything else is
# for developers. CMake does the building; this file only sequences it.
.PHONY: all build run test test-build fuzz-build bench fuzz format clean deps

JOBS ?= $(shell nproc)
ARGS ?=

all: build

deps:
	@scripts/deps.sh build

build:
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build build -j $(JOBS) --target weir

# The demo profile: embedded defaults on loopback, data in ./weir-data, and
# (--demo) a climate stream fed by a replay of the shipped UCI file as nine
# room devices, so the dashboard moves at once (see README "first five minutes").
run: deps build
	./build/weir serve --data ./weir-data --demo $(ARGS)

fuzz-build:
	@cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DWEIR_FUZZ=ON \
	    -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG="-O1 -g" >/dev/null
	@cmake --build build-fuzz -j $(JOBS)

test-build: fuzz-build
	@cmake -S . -B build-test -DWEIR_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug \
	    -DCMAKE_C_FLAGS_DEBUG="-O1 -g" -DWEIR_FUZZ_BIN_DIR=$(CURDIR)/build-fuzz/fuzz >/dev/null
	@cmake --build build-test -j $(JOBS)

test:
	@scripts/deps.sh test
	@$(MAKE) --no-print-directory test-build
	@scripts/run-tests.sh build-test

bench:
	@scripts/deps.sh bench
	@$(MAKE) --no-print-directory build
	@bench/run.sh

# Longer fuzzing: FUZZ_SECONDS per target (default 300).
fuzz: fuzz-build
	@scripts/fuzz.sh build-fuzz/fuzz $${FUZZ_SECONDS:-300}

format:
	@clang-format -i $$(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c' 'tests/*.h' 'bench/*.c')

clean:
	rm -rf build build-test build-fuzz
