"""CPU start-up: Ember against OpenVINO's CPU plugin and against a bare onnxruntime floor.

    make bench      # installs the benchmark-only packages, then runs this
    .venv/bin/python benchmarks/bench_cpu_start.py [--runs 5] [--markdown docs/performance.md]

Every measurement is a fresh process (interpreter start, imports, compile, first inference), on
real models nobody here wrote: PaddleOCR's det/rec/cls (rapidocr-onnxruntime) and Silero VAD
(silero-vad). Reported are medians over ``--runs`` processes of

- time from process start to the first inference result: Ember without cache, with a cold
  cache, with a warm cache, and OpenVINO's CPU plugin with its CACHE_DIR cold and warm;
- the compile step alone: Ember's warm ``compile_model(path)`` against the floor, a script that
  builds an onnxruntime session from the very bytes Ember cached (goal <= 1.10x);
- blob sizes.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ember import blob

# name -> (package, file inside it, {input: (shape, dtype)})
MODELS = {
    "ppocr-cls": ("rapidocr_onnxruntime", "ch_ppocr_mobile_v2.0_cls_infer.onnx",
                  {"x": ([1, 3, 48, 192], "float32")}),
    "ppocr-rec": ("rapidocr_onnxruntime", "ch_PP-OCRv4_rec_infer.onnx",
                  {"x": ([1, 3, 48, 320], "float32")}),
    "ppocr-det": ("rapidocr_onnxruntime", "ch_PP-OCRv4_det_infer.onnx",
                  {"x": ([1, 3, 320, 320], "float32")}),
    # the op18 "ifless" export: OpenVINO 2026.4 cannot convert the op15/op16 ones (Conv inside If)
    "silero-vad": ("silero_vad", "data/silero_vad_op18_ifless.onnx",
                   {"input": ([1, 512], "float32"), "sr": ([], "int64"),
                    "state": ([2, 1, 128], "float32")}),
}

INPUTS = """
import numpy as np
spec = json.loads(sys.argv[2])
rng = np.random.default_rng(0)
feeds = {name: (rng.random(shape).astype(dtype) if dtype.startswith("float")
                else np.full(shape, 16000, dtype=dtype)) for name, (shape, dtype) in spec.items()}
"""

EMBER = """
import json, sys, time
import ember
model, spec, cache_dir = sys.argv[1], sys.argv[2], sys.argv[3]
""" + INPUTS + """
core = ember.Core()
start = time.perf_counter()
config = {"CACHE_DIR": cache_dir} if cache_dir else {}
compiled = core.compile_model(model, "CPU", config)
compile_ms = (time.perf_counter() - start) * 1e3
compiled(feeds)
print(json.dumps({"done": time.time(), "compile_ms": compile_ms,
                  "cached": compiled.get_property("LOADED_FROM_CACHE")}))
"""

OPENVINO = """
import json, sys, time
import openvino as ov
model, spec, cache_dir = sys.argv[1], sys.argv[2], sys.argv[3]
""" + INPUTS + """
core = ov.Core()
start = time.perf_counter()
compiled = core.compile_model(model, "CPU", {"CACHE_DIR": cache_dir})
compile_ms = (time.perf_counter() - start) * 1e3
compiled(feeds)
print(json.dumps({"done": time.time(), "compile_ms": compile_ms,
                  "cached": bool(compiled.get_property("LOADED_FROM_CACHE"))}))
"""

# The floor: what any program must do to start from the same ORT bytes, with the options Ember
# uses to load them. Its compile step includes importing onnxruntime, as Ember's does (Ember
# imports it on first use, inside compile_model).
FLOOR = """
import json, os, sys, time
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
ort_file, spec = sys.argv[1], sys.argv[2]
""" + INPUTS + """
start = time.perf_counter()
import onnxruntime as ort
data = open(ort_file, "rb").read()
options = ort.SessionOptions()
options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
options.add_session_config_entry("session.load_model_format", "ORT")
options.add_session_config_entry("session.use_ort_model_bytes_directly", "1")
session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
compile_ms = (time.perf_counter() - start) * 1e3
session.run(None, feeds)
print(json.dumps({"done": time.time(), "compile_ms": compile_ms, "cached": True}))
"""


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


def run(script: str, *args: str) -> dict:
    started = time.time()
    out = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True,
                         check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["start_to_result_ms"] = (result["done"] - started) * 1e3
    return result


def median(results: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in results)


def measure(name: str, runs: int) -> dict:
    package, relative, inputs = MODELS[name]
    path = str(model_path(package, relative))
    spec = json.dumps(inputs)
    rows: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as work:
        warm_ember, warm_ov = Path(work, "ember-warm"), Path(work, "ov-warm")
        run(EMBER, path, spec, str(warm_ember))
        run(OPENVINO, path, spec, str(warm_ov))
        (entry,) = (warm_ember / "blobs").glob("*.blob")
        _, payload = blob.unpack(entry.read_bytes())
        from ember_cpu import payload as cpu_payload

        _, _, ort_bytes = cpu_payload.loads(payload)
        ort_file = Path(work, "model.ort")
        ort_file.write_bytes(bytes(ort_bytes))
        for index in range(runs):
            cold_ember, cold_ov = Path(work, f"ember-cold{index}"), Path(work, f"ov-cold{index}")
            steps = {
                "Ember, no cache": (EMBER, path, spec, ""),
                "Ember, cold cache": (EMBER, path, spec, str(cold_ember)),
                "Ember, warm cache": (EMBER, path, spec, str(warm_ember)),
                "OpenVINO, cold cache": (OPENVINO, path, spec, str(cold_ov)),
                "OpenVINO, warm cache": (OPENVINO, path, spec, str(warm_ov)),
                "floor (bare onnxruntime)": (FLOOR, str(ort_file), spec),
            }
            for step, (script, *args) in steps.items():
                rows.setdefault(step, []).append(run(script, *args))
        assert all(r["cached"] for r in rows["Ember, warm cache"])
        assert all(r["cached"] for r in rows["OpenVINO, warm cache"])
        ov_blobs = [p for p in warm_ov.rglob("*") if p.is_file()]
        sizes = {"Ember blob": entry.stat().st_size,
                 "OpenVINO blob": sum(p.stat().st_size for p in ov_blobs),
                 "ONNX file": Path(path).stat().st_size}
    return {"rows": rows, "sizes": sizes}


def report(results: dict[str, dict], runs: int) -> str:
    lines = [f"Medians of {runs} fresh processes per cell; times in ms.", "",
             "| model | step | process start to first result | compile step |",
             "| --- | --- | ---: | ---: |"]
    for name, result in results.items():
        for step, rows in result["rows"].items():
            lines.append(f"| {name} | {step} | {median(rows, 'start_to_result_ms'):.0f} "
                         f"| {median(rows, 'compile_ms'):.1f} |")
    lines += ["", "| model | Ember warm / OpenVINO warm (start to result) | "
              "Ember warm compile / floor | Ember blob | OpenVINO blob | ONNX file |",
              "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for name, result in results.items():
        rows, sizes = result["rows"], result["sizes"]
        versus_ov = (median(rows["Ember, warm cache"], "start_to_result_ms")
                     / median(rows["OpenVINO, warm cache"], "start_to_result_ms"))
        versus_floor = (median(rows["Ember, warm cache"], "compile_ms")
                        / median(rows["floor (bare onnxruntime)"], "compile_ms"))
        megabytes = " | ".join(f"{sizes[k] / 1e6:.2f} MB"
                               for k in ("Ember blob", "OpenVINO blob", "ONNX file"))
        lines.append(f"| {name} | {versus_ov:.2f}x | {versus_floor:.2f}x | {megabytes} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--markdown", type=Path, help="also write the tables to this file")
    args = parser.parse_args()
    results = {name: measure(name, args.runs) for name in args.models}
    text = report(results, args.runs)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
