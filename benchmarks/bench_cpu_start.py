"""CPU warm start and steady state: Ember called as the seeds call it, beside OpenVINO and a bare
onnxruntime floor, in one run.

    make bench      # installs the benchmark-only packages, then runs this
    .venv/bin/python benchmarks/bench_cpu_start.py [--runs 9] [--markdown FILE]
    .venv/bin/python benchmarks/bench_cpu_start.py --steady-only --steady-runs 7 --models ppocr-cls

Every start is a fresh process, from interpreter start to the first inference result, on real
models nobody here wrote: PaddleOCR's det/rec/cls (rapidocr-onnxruntime) and both of silero-vad's
ONNX files that OpenVINO reads. The cells of one model are interleaved run by run, so that a
machine that slows down slows every cell alike. Rows:

- ``Ember, seeds' call``: the seeds' snippet with only the import changed, verbatim::

      import ember as ov
      core = ov.Core()
      core.set_property({"CACHE_DIR": cache_dir})
      compiled = core.compile_model(model_path, "CPU")
      compiled(inputs)

- ``Ember, CACHE_DIR in the config``: ``compile_model(path, "CPU", {"CACHE_DIR": ...})``;
- ``OpenVINO``: the seeds' snippet with ``import openvino as ov``, its cache warm;
- ``floor``: a script that imports numpy and onnxruntime and builds the session from the very ORT
  bytes Ember cached, with the options Ember loads them with: what any program must do.

Then the steady state: after a warm start, the median latency of 200 inferences, for Ember at
each GRAPH_OPTIMIZATION_LEVEL Ember offers, bare onnxruntime at each level (from the ONNX file),
and OpenVINO; the goal is Ember's default at most 1.02x the fastest onnxruntime configuration.

Last, what ``import ember`` costs on top of numpy (``python -X importtime``; goal <= 25 ms), and
that it imports none of importlib.metadata, email, pluggy, onnx, onnxruntime and pyopencl.

Child processes get no PYTHONDONTWRITEBYTECODE: users' interpreters cache bytecode, and without it
every Ember module would be compiled from source at every start (pip precompiles the wheels of
numpy, onnxruntime and openvino; Ember's editable install is compiled by the first run).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _common import ORT_FORMAT_FLOOR, emit

from ember.store import blob

# name -> (package, file inside it, {input: (shape, dtype)})
MODELS = {
    "ppocr-det": ("rapidocr_onnxruntime", "ch_PP-OCRv4_det_infer.onnx",
                  {"x": ([1, 3, 320, 320], "float32")}),
    "ppocr-rec": ("rapidocr_onnxruntime", "ch_PP-OCRv4_rec_infer.onnx",
                  {"x": ([1, 3, 48, 320], "float32")}),
    "ppocr-cls": ("rapidocr_onnxruntime", "ch_ppocr_mobile_v2.0_cls_infer.onnx",
                  {"x": ([1, 3, 48, 192], "float32")}),
    "silero-vad (openvino_16k)": ("silero_vad", "data/silero_vad_openvino_16k.onnx",
                                  {"input": ([1, 576], "float32"),
                                   "state": ([2, 1, 128], "float32")}),
    # the op18 "ifless" export: OpenVINO 2026.4 cannot convert the op15/op16 ones (Conv inside If)
    "silero-vad (op18_ifless)": ("silero_vad", "data/silero_vad_op18_ifless.onnx",
                                 {"input": ([1, 512], "float32"), "sr": ([], "int64"),
                                  "state": ([2, 1, 128], "float32")}),
}
LEVELS = ("EXTENDED", "ALL")

INPUTS = """
import json, sys, time
import numpy as np
spec = json.loads(sys.argv[2])
rng = np.random.default_rng(0)
feeds = {name: (rng.random(shape).astype(dtype) if dtype.startswith("float")
                else np.full(shape, 16000, dtype=dtype)) for name, (shape, dtype) in spec.items()}
"""

# Each start script prints when its first result was ready; steady-state scripts then time
# STEADY inferences.
REPORT = """
done = time.time()
latencies = []
for _ in range(int(sys.argv[4])):
    start = time.perf_counter()
    infer()
    latencies.append(time.perf_counter() - start)
print(json.dumps({"done": done, "cached": cached,
                  "latency_ms": float(np.median(latencies[3:])) * 1e3 if latencies else None}))
"""

# The seeds' snippet, verbatim but for the import.
EMBER_SEEDS = INPUTS + """
import ember as ov
model, cache_dir = sys.argv[1], sys.argv[3]
core = ov.Core()
core.set_property({"CACHE_DIR": cache_dir})
compiled = core.compile_model(model, "CPU")
compiled(feeds)
cached = compiled.get_property("LOADED_FROM_CACHE")
infer = lambda: compiled(feeds)
""" + REPORT

EMBER_CONFIG = INPUTS + """
import ember as ov
model, cache_dir = sys.argv[1], sys.argv[3]
core = ov.Core()
compiled = core.compile_model(model, "CPU", {"CACHE_DIR": cache_dir})
compiled(feeds)
cached = compiled.get_property("LOADED_FROM_CACHE")
infer = lambda: compiled(feeds)
""" + REPORT

# A level other than the default, for the steady-state rows: set for CPU before compiling.
EMBER_LEVEL = INPUTS + """
import ember as ov
model, cache_dir, level = sys.argv[1], sys.argv[3], sys.argv[5]
core = ov.Core()
core.set_property({"CACHE_DIR": cache_dir})
core.set_property("CPU", {"GRAPH_OPTIMIZATION_LEVEL": level})
compiled = core.compile_model(model, "CPU")
compiled(feeds)
cached = compiled.get_property("LOADED_FROM_CACHE")
infer = lambda: compiled(feeds)
""" + REPORT

OPENVINO = INPUTS + """
import openvino as ov
model, cache_dir = sys.argv[1], sys.argv[3]
core = ov.Core()
core.set_property({"CACHE_DIR": cache_dir})
compiled = core.compile_model(model, "CPU")
compiled(feeds)
cached = bool(compiled.get_property("LOADED_FROM_CACHE"))
infer = lambda: compiled(feeds)
""" + REPORT

FLOOR = INPUTS + ORT_FORMAT_FLOOR + """
infer = lambda: session.run(None, feeds)
""" + REPORT

# Bare onnxruntime optimising the ONNX file itself at a level: the steady state to match.
ONNXRUNTIME = INPUTS + """
import os
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
import onnxruntime as ort
options = ort.SessionOptions()
options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, sys.argv[5])
options.log_severity_level = 3
session = ort.InferenceSession(sys.argv[1], options, providers=["CPUExecutionProvider"])
session.run(None, feeds)
cached = True
infer = lambda: session.run(None, feeds)
""" + REPORT
ORT_LEVELS = {"EXTENDED": "ORT_ENABLE_EXTENDED", "ALL": "ORT_ENABLE_ALL"}


def model_path(package: str, relative: str) -> Path:
    if package == "rapidocr_onnxruntime":  # fetched as files by `make`, whatever the Python
        from ember.testing import model_files

        found = model_files.model_file(relative)
        if found is None:
            raise SystemExit(f"{relative} is absent: run `{model_files.FETCH_COMMAND}`")
        return found
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{package} is not installed: run `make bench`")
    return Path(next(iter(spec.submodule_search_locations))) / relative


ENVIRONMENT = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
FORBIDDEN = ("importlib.metadata", "email", "pluggy", "onnx", "onnxruntime", "pyopencl")


def run(script: str, model: str, spec: str, cache_dir: str, steady: int = 0,
        level: str = "") -> dict:
    started = time.time()
    out = subprocess.run([sys.executable, "-c", script, model, spec, cache_dir, str(steady),
                          level], capture_output=True, text=True, check=True, env=ENVIRONMENT)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["start_ms"] = (result["done"] - started) * 1e3
    return result


def ort_bytes_of(cache_dir: Path, work: Path) -> Path:
    """The ORT-format bytes inside Ember's cache entry, as a file for the floor script."""
    from ember_cpu import payload as cpu_payload

    (entry,) = (cache_dir / "blobs").glob("*.blob")
    _, payload = blob.unpack(entry.read_bytes())
    ort_file = work / "model.ort"
    ort_file.write_bytes(bytes(cpu_payload.loads(payload).graph))
    return ort_file


def measure(name: str, runs: int, steady: int, steady_runs: int | None = None,
            starts_too: bool = True) -> dict:
    package, relative, inputs = MODELS[name]
    path, spec = str(model_path(package, relative)), json.dumps(inputs)
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        caches = {row: work / row for row in ("ember", "config", "openvino", *LEVELS)}
        run(OPENVINO, path, spec, str(caches["openvino"]))  # fill every cache once
        for level in LEVELS:
            run(EMBER_LEVEL, path, spec, str(caches[level]), level=level)
        starts = {} if not starts_too else start_cells(path, spec, caches, work)
        steadies = {
            **{f"Ember, {level}": (lambda level=level: run(
                EMBER_LEVEL, path, spec, str(caches[level]), steady, level)) for level in LEVELS},
            **{f"onnxruntime, {level}": (lambda level=level: run(
                ONNXRUNTIME, path, spec, "", steady, ORT_LEVELS[level])) for level in LEVELS},
            "OpenVINO 2026": lambda: run(OPENVINO, path, spec, str(caches["openvino"]), steady),
        }
        start_rows: dict[str, list[dict]] = {row: [] for row in starts}
        steady_rows: dict[str, list[dict]] = {row: [] for row in steadies}
        for _ in range(runs):
            for row, start in starts.items():
                start_rows[row].append(start())
        for _ in range(steady_runs or max(runs // 3, 1)):
            for row, start in steadies.items():
                steady_rows[row].append(start())
    for row in start_rows.keys() & {"Ember, seeds' call", "Ember, CACHE_DIR in the config",
                                    "OpenVINO 2026, seeds' call"}:
        assert all(r["cached"] for r in start_rows[row]), f"{name}: {row} missed its cache"
    return {"start": {row: statistics.median(r["start_ms"] for r in rows)
                      for row, rows in start_rows.items()},
            "steady": {row: statistics.median(r["latency_ms"] for r in rows)
                       for row, rows in steady_rows.items()}}


def start_cells(path: str, spec: str, caches: dict[str, Path], work: Path
                ) -> dict[str, Callable[[], dict]]:
    """The warm-start rows, their caches filled."""
    run(EMBER_SEEDS, path, spec, str(caches["ember"]))
    run(EMBER_CONFIG, path, spec, str(caches["config"]))
    floor_file = str(ort_bytes_of(caches["ember"], work))
    return {
        "Ember, seeds' call": lambda: run(EMBER_SEEDS, path, spec, str(caches["ember"])),
        "Ember, CACHE_DIR in the config": lambda: run(EMBER_CONFIG, path, spec,
                                                      str(caches["config"])),
        "OpenVINO 2026, seeds' call": lambda: run(OPENVINO, path, spec,
                                                  str(caches["openvino"])),
        "floor (bare onnxruntime, cached ORT bytes)": lambda: run(FLOOR, floor_file, spec,
                                                                  ""),
    }


def import_cost(runs: int) -> tuple[float, list[str]]:
    """Median ms of ``import ember`` after ``import numpy`` (-X importtime's cumulative time of
    the ``ember`` package), and the forbidden modules it imported."""
    code = ("import numpy, sys; import ember; "
            f"print([m for m in {FORBIDDEN!r} if m in sys.modules])")
    costs, forbidden = [], []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-X", "importtime", "-c", code],
                             capture_output=True, text=True, check=True, env=ENVIRONMENT)
        line = next(line for line in out.stderr.splitlines() if line.endswith("| ember"))
        costs.append(int(line.split("|")[1]) / 1e3)
        forbidden = json.loads(out.stdout.replace("'", '"'))
    return statistics.median(costs), forbidden


def geometric_mean(values: list[float]) -> float:
    product = 1.0
    for value in values:
        product *= value
    return product ** (1 / len(values))


def report(results: dict[str, dict], runs: int, steady_runs: int,
           imports: tuple[float, list[str]] | None) -> str:
    lines: list[str] = []
    if all(result["start"] for result in results.values()):
        lines += start_table(results, runs)
    rows = list(next(iter(results.values()))["steady"])
    lines += [f"Steady state after a warm start: median latency of an inference (median over "
              f"{steady_runs} processes); ms.", "",
              "| model | " + " | ".join(rows) + " | Ember default / fastest onnxruntime |",
              "| --- |" + " ---: |" * (len(rows) + 1)]
    for name, result in results.items():
        steady = result["steady"]
        fastest = min(v for row, v in steady.items() if row.startswith("onnxruntime"))
        default = steady[f"Ember, {default_level()}"]
        cells = " | ".join(f"{steady[row]:.3f}" for row in rows)
        lines.append(f"| {name} | {cells} | {default / fastest:.2f}x |")
    if imports is not None:
        cost, forbidden = imports
        lines += ["", f"`import ember` after `import numpy`: {cost:.1f} ms (median of {runs}; "
                  f"goal <= 25 ms); it imports {', '.join(forbidden) or 'none'} of "
                  f"{', '.join(FORBIDDEN)}."]
    return "\n".join(lines)


def start_table(results: dict[str, dict], runs: int) -> list[str]:
    seeds, ov, floor = ("Ember, seeds' call", "OpenVINO 2026, seeds' call",
                        "floor (bare onnxruntime, cached ORT bytes)")
    config = "Ember, CACHE_DIR in the config"
    lines = [f"Warm start, process start to first result: medians of {runs} fresh processes "
             "per cell, interleaved; ms.", "",
             "| model | Ember, seeds' call | Ember, CACHE_DIR in config | OpenVINO | floor | "
             "Ember / OpenVINO | Ember / floor |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    versus_ov, versus_floor = [], []
    for name, result in results.items():
        start = result["start"]
        versus_ov.append(start[seeds] / start[ov])
        versus_floor.append(start[seeds] / start[floor])
        lines.append(f"| {name} | {start[seeds]:.0f} | {start[config]:.0f} | {start[ov]:.0f} | "
                     f"{start[floor]:.0f} | {versus_ov[-1]:.2f}x | {versus_floor[-1]:.2f}x |")
    lines += ["", f"Geometric mean, Ember (seeds' call) / OpenVINO: "
              f"{geometric_mean(versus_ov):.2f}x (goal <= 0.70, no model above 0.85); "
              f"Ember / floor: worst {max(versus_floor):.2f}x (goal <= 1.15).", ""]
    return lines


def default_level() -> str:
    from ember_cpu.plugin import CONFIG_DEFAULTS

    return str(CONFIG_DEFAULTS["GRAPH_OPTIMIZATION_LEVEL"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--steady", type=int, default=200, help="inferences per steady cell")
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--markdown", type=Path, help="also write the tables to this file")
    parser.add_argument("--steady-runs", type=int,
                        help="fresh processes per steady-state cell (default: runs // 3)")
    parser.add_argument("--steady-only", action="store_true",
                        help="only the steady-state table: no warm starts, no import cost")
    args = parser.parse_args()
    steady_runs = args.steady_runs or max(args.runs // 3, 1)
    results = {}
    for name in args.models:
        results[name] = measure(name, args.runs, args.steady, steady_runs,
                                starts_too=not args.steady_only)
        print(f"measured {name}", file=sys.stderr)
    imports = None if args.steady_only else import_cost(args.runs)
    text = report(results, args.runs, steady_runs, imports)
    emit(text, args.markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
