# Thin wrapper over CMake. `make demo` and `make test` install what is missing.
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
TEST_FUZZ_SECONDS ?= 10
# ctest jobs of `make test` (the tests whose assertions depend on timing run
# alone: RUN_SERIAL in CMakeLists.txt)
TEST_JOBS ?= 2
# `make demo KAFKA=real`: the demo on a real Apache Kafka broker (default: the
# development broker in process).
KAFKA ?= dev

.PHONY: all deps build build-asan fuzz test test-fast demo demo-serve clean format

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
	@ctest --test-dir $(BUILD) --output-on-failure -j$(TEST_JOBS)
	@echo "== ctest: ASan+UBSan build"
	@ctest --test-dir $(ASAN_BUILD) --output-on-failure -j$(TEST_JOBS)
	@echo "== fuzz: $(TEST_FUZZ_SECONDS) s per target (clang, ASan+UBSan)"
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(TEST_FUZZ_SECONDS)

# libFuzzer targets (clang, ASan+UBSan) run for FUZZ_SECONDS each: the event
# decoder, the stored-format decoders and the stage records (tests/fuzz/).
fuzz: deps
	@cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DXS_FUZZ=ON >/dev/null
	@cmake --build $(FUZZ_BUILD) -j$(JOBS) --target fuzz_decode fuzz_stored fuzz_records make_corpus
	@bash tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

test-fast: build
	@ctest --test-dir $(BUILD) --output-on-failure -L unit

demo: build
	@KAFKA=$(KAFKA) bash deploy/demo.sh

# Benchmark programs (figures, not tests): see docs/BENCHMARKS.md.
bench: build
	@$(BUILD)/bin/xsell bench core --events 2000000 --users 1000000 --items 100000
	@$(BUILD)/bin/xsell bench state --events 1000000 --users 1000000 --items 100000
	@$(BUILD)/bin/xsell bench e2e --e2e-events 100000 --rate 10000 --rate-seconds 10
	@$(BUILD)/bin/xsell bench e2e --partitions 1 --e2e-events 100000 --rate 10000 --rate-seconds 10
	@echo "== bench e2e on Apache Kafka (one KRaft node on loopback, tests/kafka/kafka.sh; a first run warms the JVM up, not shown)"
	@bash tests/kafka/kafka.sh run --dir $(BUILD)/kafka-bench -- sh -c '\
	  $(BUILD)/bin/xsell bench e2e --bootstrap "$$XS_KAFKA_BOOTSTRAP" --e2e-events 50000 --rate 10000 --rate-seconds 2 >/dev/null 2>&1; \
	  $(BUILD)/bin/xsell bench e2e --bootstrap "$$XS_KAFKA_BOOTSTRAP" --e2e-events 100000 --rate 10000 --rate-seconds 10 && \
	  $(BUILD)/bin/xsell bench e2e --bootstrap "$$XS_KAFKA_BOOTSTRAP" --partitions 1 --e2e-events 100000 --rate 10000 --rate-seconds 10'

# The demo, then the broker and the worker (HTTP on 127.0.0.1:8080, the demo shop on
# /shop/: the address with its token is printed) stay up until Ctrl-C.
demo-serve: build
	@KAFKA=$(KAFKA) XSELL_DEMO_KEEP=1 bash deploy/demo.sh

format:
	@bash tests/unit/test_format.sh --fix

clean:
	@rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) .demo
