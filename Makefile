# Front door (DESIGN D2). Meson + ninja do the work.
BUILD      ?= build
TEST_BUILD ?= build-test
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 30

.PHONY: all deps test fuzz demo bench clean

all: $(BUILD)/build.ninja
	ninja -C $(BUILD)

$(BUILD)/build.ninja:
	meson setup $(BUILD) --buildtype=release -Dtests=false

deps:
	./scripts/deps.sh

# ASan + UBSan, every test, last line "N passed, N failed".
test: $(TEST_BUILD)/build.ninja
	ninja -C $(TEST_BUILD)
	python3 tests/run_tests.py $(TEST_BUILD)

$(TEST_BUILD)/build.ninja:
	meson setup $(TEST_BUILD) --buildtype=debug -Db_sanitize=address,undefined \
		-Db_lundef=false -Dc_args=-fno-sanitize-recover=all

# libFuzzer targets (clang), each for FUZZ_SECONDS.
fuzz: $(FUZZ_BUILD)/build.ninja
	ninja -C $(FUZZ_BUILD)
	./tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

$(FUZZ_BUILD)/build.ninja:
	CC=clang meson setup $(FUZZ_BUILD) --buildtype=debug -Dfuzz=true -Dtests=false \
		-Db_sanitize=address,undefined -Db_lundef=false \
		-Dc_args='-fsanitize=fuzzer-no-link -fno-sanitize-recover=all'

# Builds $(BUILD) (release), runs mothership + nexusd on 127.0.0.1 with a sample directive and
# stays up until Ctrl-C; DEMO_ONCE=1 exits instead, 0 only if the directive succeeded.
demo:
	@BUILD='$(BUILD)' DEMO_ONCE='$(DEMO_ONCE)' ./scripts/demo.sh

# Builds $(BUILD) (release) and runs every benchmark in bench/ (see bench/run).
bench:
	BENCH_BUILD=$(BUILD) ./bench/run

clean:
	rm -rf $(BUILD) $(TEST_BUILD) $(FUZZ_BUILD)
