# Tally: the two quick-start commands are `make run` and `make test`.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
PORT ?= 6379
MEMCACHED_PORT ?=
FUZZ_SECONDS ?= 60
SEEDS ?= 10000
# ccache keys on paths relative to the checkout, so clones in other folders share one cache.
export CCACHE_BASEDIR ?= $(CURDIR)

GPU_BUILD ?= build-gpu
GPU_BUNDLE ?= gpu-bundle
GPU_ARCHS ?= 90-real;90-virtual

ROUNDS ?= 200

CLUSTER_NODES ?= 3

.PHONY: all deps configure build run cluster cluster-stop chaos test test-asan asan fuzz sim mutants crash hw-report bench gpu-bundle clean

all: build

deps:
	@scripts/install-deps.sh

$(BUILD)/build.ninja:
	@$(MAKE) --no-print-directory deps
	cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS)

configure: $(BUILD)/build.ninja

build: deps configure
	cmake --build $(BUILD) -j $(JOBS)

run: build
	$(BUILD)/host/server/tallyd --bind 127.0.0.1 --port $(PORT) $(if $(MEMCACHED_PORT),--memcached-port $(MEMCACHED_PORT))

# A cluster of CLUSTER_NODES members on loopback (ports 7001.., data under /tmp/tally-cluster), formed
# and ready: redis-cli -c -p 7001. `make cluster-stop` stops it.
cluster: build
	scripts/local-cluster.sh start -n $(CLUSTER_NODES)

cluster-stop:
	scripts/local-cluster.sh stop

test: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS) $(CTEST_ARGS)

# The same suite under AddressSanitizer and UBSan (gpu tests skip themselves; CUDA is off here).
asan test-asan: deps
	cmake -S . -B build-asan -G Ninja -DTALLY_SANITIZE=ON -DTALLY_CUDA=OFF -DTALLY_TESTS=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build build-asan -j $(JOBS)
	ctest --test-dir build-asan --output-on-failure -j $(JOBS) $(CTEST_ARGS)

# libFuzzer harnesses for the parsers, FUZZ_SECONDS each.
fuzz: deps
	cmake -S . -B build-fuzz -G Ninja -DTALLY_FUZZ=ON -DTALLY_CUDA=OFF -DTALLY_FPGA_SIM=OFF \
	  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++
	cmake --build build-fuzz -j $(JOBS) --target fuzz_targets
	tests/fuzz/run.sh build-fuzz $(FUZZ_SECONDS)

sim: build
	$(BUILD)/tests/sim/tally-sim --seeds $(SEEDS)

# Mutation tests: one tally-sim per protocol mutant of tests/mutants/catalogue.txt (its own
# build folder, reconfigured per mutant), a table of which the simulator caught and how fast.
mutants: deps
	tests/mutants/run.sh --build build-mutants --jobs $(JOBS)

# kill -9 under writing clients, ROUNDS times: every acknowledged write must be there after each
# restart (make test runs 10 rounds of the same test).
crash: build
	cd tests/integration && CRASH_ROUNDS=$(ROUNDS) TALLYD=$(CURDIR)/$(BUILD)/host/server/tallyd \
	  TALLYCTL=$(CURDIR)/$(BUILD)/host/server/tallyctl /usr/bin/python3 -u test_durability.py CrashTest

# Fault rounds against a 3-member cluster (kill -9 and SIGSTOP of leaders under recording clients),
# each history checked for linearizability by tally-sim --check-history (make test runs 2 rounds).
chaos: build
	cd tests/cluster && CHAOS_ROUNDS=$(ROUNDS) TALLYD=$(CURDIR)/$(BUILD)/host/server/tallyd \
	  TALLYCTL=$(CURDIR)/$(BUILD)/host/server/tallyctl TALLYSIM=$(CURDIR)/$(BUILD)/tests/sim/tally-sim \
	  PYTHONPATH=$(CURDIR)/tests/integration /usr/bin/python3 -u test_linearizable.py

hw-report: deps
	hw/synth.sh

# The GPU run's bundle (docs/gpu-run.md): the binaries the lent H200 runs, built here at this
# commit for sm_90 plus PTX only, with every library its image lacks. Carried as `gpu-bundle`.
gpu-bundle: deps
	cmake -S . -B $(GPU_BUILD) -G Ninja -DTALLY_CUDA=ON -DTALLY_FPGA_SIM=OFF -DTALLY_TESTS=ON \
	  -DCMAKE_BUILD_TYPE=Release "-DCMAKE_CUDA_ARCHITECTURES=$(GPU_ARCHS)" $(CMAKE_FLAGS)
	cmake --build $(GPU_BUILD) -j $(JOBS) --target tallyd tally-bench gpu-resident-bench gpu_offload_test \
	  cuda_discovery_test
	benchmarks/gpu/make-bundle.sh $(GPU_BUILD) $(GPU_BUNDLE)

clean:
	rm -rf $(BUILD) build-asan build-fuzz build-mutants $(GPU_BUILD) $(GPU_BUNDLE)
