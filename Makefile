# Thin wrapper over CMake. `make demo` and `make test` install what is missing.
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
BUILD ?= build
ASAN_BUILD ?= build-asan

.PHONY: all deps build build-asan bench test test-fast demo demo-serve clean format

all: build

deps:
	@bash deploy/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

build-asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DXS_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j$(JOBS)

# The whole suite in a normal build and in an ASan+UBSan build.
test: build build-asan
	@echo "== ctest: normal build"
	@ctest --test-dir $(BUILD) --output-on-failure
	@echo "== ctest: ASan+UBSan build"
	@ctest --test-dir $(ASAN_BUILD) --output-on-failure

test-fast: build
	@ctest --test-dir $(BUILD) --output-on-failure -L unit

demo: build
	@bash deploy/demo.sh

# Benchmark programs (figures, not tests): see docs/BENCHMARKS.md.
bench: build
	@$(BUILD)/bin/xsell bench core --events 2000000 --users 1000000 --items 100000
	@$(BUILD)/bin/xsell bench state --events 1000000 --users 1000000 --items 100000
	@$(BUILD)/bin/xsell bench e2e --e2e-events 100000 --rate 10000 --rate-seconds 10

# The demo, then the broker and the worker (HTTP on 127.0.0.1:8080) stay up until Ctrl-C.
demo-serve: build
	@XSELL_DEMO_KEEP=1 bash deploy/demo.sh

format:
	@clang-format -i lib/*.c lib/*.h include/xsell/*.h worker/*.c worker/*.h tests/unit/*.c tests/integration/*.c

clean:
	@rm -rf $(BUILD) $(ASAN_BUILD) .demo
