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

demo:
	@echo "make demo arrives with the nexusd issue (#5): it needs the daemon." >&2
	@exit 1

# Builds $(BUILD) (release) and runs every benchmark in bench/ (see bench/run).
bench:
	BENCH_BUILD=$(BUILD) ./bench/run

clean:
	rm -rf $(BUILD) $(TEST_BUILD) $(FUZZ_BUILD)
