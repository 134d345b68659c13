# ktlab: set-up, build, demo and tests.
#
# `make demo` and `make test` set everything up on a fresh machine: a project-local
# virtualenv with PyPI's torch==2.11.0 (the libtorch that tch 0.24 needs), then the
# release build. Both are quick no-ops for set-up when it is already done.
# A user's own libtorch is honoured instead: `make build LIBTORCH=/opt/libtorch`.

TORCH_VERSION := 2.11.0
PYTHON        ?= python3
VENV          := $(CURDIR)/.venv
STAMP         := $(VENV)/.ktlab-torch-$(TORCH_VERSION)
BIN           := target/release/ktlab

ifdef LIBTORCH
  TORCH_ENV := LIBTORCH=$(LIBTORCH)
  SETUP     :=
else
  TORCH_ENV := LIBTORCH_USE_PYTORCH=1 VIRTUAL_ENV=$(VENV) PATH="$(VENV)/bin:$$PATH"
  SETUP     := $(STAMP)
endif

CARGO := env $(TORCH_ENV) cargo

# libgomp (libtorch's OpenMP) spin-waits between parallel regions by default, which
# stalls badly whenever the cores are shared (parallel tests, a busy machine).
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: all setup build demo cifar10 cifar10-more cifar10-first test bench bench-train bench-kmeans bench-overhead bench-input clippy fmt clean soak fuzz

all: build

setup: $(SETUP)

# The venv carries torch (libtorch for the build, and the Python peer for
# reference scripts and benchmarks), numpy, scikit-learn, and tensorboard (whose reader
# the TensorBoard tests use).
$(STAMP): requirements.txt
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $(STAMP)

# Two binaries (ARCHITECTURE.md, "Two builds"): target/release/ktlab-engine (libtorch, every
# command) and target/release/ktlab (cli/: no libtorch; hands the commands that compute to
# the engine beside it). Separate invocations, so that the front end's features stay its own.
build: $(SETUP)
	$(CARGO) build --release
	$(CARGO) build --release -p ktlab-cli

demo: build
	$(BIN) run experiments/quickstart.toml

# The CIFAR-10 reproduction (experiments/cifar10/, README "Results on CIFAR-10"): needs
# CIFAR-10 where experiments/cifar10/datasets.toml says (compute: README, "Results on CIFAR-10").
cifar10: build
	scripts/cifar10.sh

# The secondary evaluations (kNN and MLP probes, the cluster count by AMI, the resolution
# controls, the contrastive teachers): they read the decisive files' models from the store.
cifar10-more: build
	scripts/cifar10.sh experiments/cifar10/08-*.toml experiments/cifar10/09-*.toml

# The first CIFAR-10 suite (01-04), kept as the historical record of the first design.
cifar10-first: build
	scripts/cifar10.sh experiments/cifar10/0[1-4]-*.toml

# Tests that cannot run here (a dataset under ../shared, pdflatex, Slurm) say so, and are
# listed at the end; with KTLAB_REQUIRE_ALL=1 (CI) such a test fails instead.
SKIP_LOG := $(CURDIR)/target/skipped-tests.txt
test: build
	cargo fmt --all --check
	cd fuzz && cargo fmt --check
	@rm -f $(SKIP_LOG)
	KTLAB_SKIP_LOG=$(SKIP_LOG) $(CARGO) test --release -- --test-threads=2
	KTLAB_SKIP_LOG=$(SKIP_LOG) $(CARGO) test --release -p ktlab-cli
	@if [ -s $(SKIP_LOG) ]; then echo "Tests that did not run here:"; sort -u $(SKIP_LOG); else echo "Every test ran."; fi

# Speed figures, each measured side by side with its peer in one run (see benches/ and scripts/).
bench: $(SETUP)
	$(MAKE) --no-print-directory bench-train
	$(MAKE) --no-print-directory bench-kmeans
	$(MAKE) --no-print-directory bench-overhead

# Training steps of alexnet-small and vgg16-small in ktlab and in PyTorch, alternating, and
# the Jigsaw++ batch assembly against its consumer; writes the training section of
# docs/BENCHMARKS.md.
TRAIN_BENCH_ARGS ?= --rounds 3 --threads 2 --batch 128 --steps 20
bench-train: $(SETUP)
	$(CARGO) build --release --bench train_step --bench pretext_batches
	$(VENV)/bin/python scripts/bench_train.py $(TRAIN_BENCH_ARGS)

# Runner overhead (start-up, planning, a cached re-run, fingerprinting CIFAR-10); writes the
# runner-overhead section of docs/BENCHMARKS.md.
bench-overhead: build
	$(VENV)/bin/python scripts/bench_overhead.py

# k-means against faiss-cpu and scikit-learn (same data, same initial centroids, same
# threads, alternating runs); writes the k-means section of docs/BENCHMARKS.md.
KMEANS_BENCH_ARGS ?= --sizes 50000x256x1000,200000x128x2000 --iterations 10 --threads 2 --rounds 3
bench-kmeans: $(SETUP)
	$(CARGO) build --release --bench kmeans
	$(VENV)/bin/python scripts/bench_kmeans.py $(KMEANS_BENCH_ARGS)

# Input-pipeline throughput (streamed JPEGs, random resized crops at 224 px) against PyTorch's
# DataLoader over torchvision's ImageFolder on generated ImageNet-like files, alternating
# runs; writes the input-bench section of docs/BENCHMARKS.md.
INPUT_BENCH_FOLDER ?= /tmp/ktlab-inet-2k
INPUT_BENCH_ARGS ?= --rounds 5 --threads 2 --batch 64 --batches 20
bench-input: $(SETUP)
	test -d $(INPUT_BENCH_FOLDER)/train || $(VENV)/bin/python scripts/make_imagenet_like.py --out $(INPUT_BENCH_FOLDER) --train 2000 --val 10 --classes 40
	$(CARGO) build --release --bench input_pipeline
	$(VENV)/bin/python scripts/bench_input.py $(INPUT_BENCH_FOLDER) $(INPUT_BENCH_ARGS)

# Crash safety: SIGKILL `ktlab run` at random moments, re-run, deep-verify the store,
# compare results.csv with an uninterrupted run (CI runs 3 trials of the same test).
SOAK_TRIALS ?= 25
soak: $(SETUP)
	KTLAB_SOAK_TRIALS=$(SOAK_TRIALS) $(CARGO) test --release --test tests soak:: -- --nocapture

# Fuzz configuration parsing and planning (cargo install cargo-fuzz; RUSTC_BOOTSTRAP lets
# it use the nightly flags it needs on stable). Findings go to fuzz/artifacts/plan/.
FUZZ_SECONDS ?= 600
fuzz: $(SETUP)
	cd fuzz && mkdir -p corpus/plan && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run -s none plan corpus/plan seeds/plan -- -max_total_time=$(FUZZ_SECONDS)

clippy: $(SETUP)
	$(CARGO) clippy --release --all-targets -- -D warnings
	$(CARGO) clippy --release -p ktlab-cli --all-targets -- -D warnings

fmt:
	cargo fmt --all
	cd fuzz && cargo fmt

clean:
	cargo clean
