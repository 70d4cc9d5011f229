"""The warm start of OpenVINO's hello_classification pattern, Ember against OpenVINO, and what
``PrePostProcessor.build()`` costs.

    .venv/bin/python benchmarks/bench_preprocess.py [--runs 7] [--models ppocr-cls ppocr-rec]

Each start is a fresh process, from interpreter start to the first result: read_model, a
PrePostProcessor taking a u8 NHWC image (resized to the model's size, NCHW, f32), compile (the
cache directory set on the core first, ``core.set_property({"CACHE_DIR": ...})``, as the seeds
do), first inference. The same script runs with ``import ember as ov`` and
``import openvino as ov``; the cells of one model are interleaved run by run. The models are
PaddleOCR's (fetched by ``make``), saved once with a fixed input size, as hello_classification
wants (it resizes to the model's height and width). Goal: Ember at most 0.8x OpenVINO.

Then, in this process, the cost of preprocessing when the cache misses: ``build()`` (recording
the steps), and building the edited graph (parse and apply) against parsing alone.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# name -> (file, fixed input shape NCHW, image size H x W fed to it)
MODELS = {
    "ppocr-cls": ("ch_ppocr_mobile_v2.0_cls_infer.onnx", [1, 3, 48, 192], (96, 320)),
    "ppocr-rec": ("ch_PP-OCRv4_rec_infer.onnx", [1, 3, 48, 320], (64, 480)),
    "ppocr-det": ("ch_PP-OCRv4_det_infer.onnx", [1, 3, 320, 320], (480, 640)),
}

HELLO = """
import sys, time, json
import numpy as np
import {module} as ov
model_path, cache_dir, h, w = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
core = ov.Core()
core.set_property({{"CACHE_DIR": cache_dir}})
model = core.read_model(model_path)
input_tensor = np.random.default_rng(0).integers(0, 256, (1, h, w, 3), dtype=np.uint8)
ppp = ov.preprocess.PrePostProcessor(model)
ppp.input().tensor().set_shape(input_tensor.shape).set_element_type(ov.Type.u8) \\
    .set_layout(ov.Layout("NHWC"))
ppp.input().preprocess().resize(ov.preprocess.ResizeAlgorithm.RESIZE_LINEAR)
ppp.input().model().set_layout(ov.Layout("NCHW"))
ppp.output().tensor().set_element_type(ov.Type.f32)
model = ppp.build()
compiled = core.compile_model(model, "CPU")
results = compiled.infer_new_request({{0: input_tensor}})
done = time.time()
print(json.dumps({{"done": done, "cached": bool(compiled.get_property("LOADED_FROM_CACHE"))}}))
"""
ENVIRONMENT = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def start(module: str, model: str, cache_dir: str, size: tuple[int, int]) -> dict:
    started = time.time()
    out = subprocess.run([sys.executable, "-c", HELLO.format(module=module), model, cache_dir,
                          str(size[0]), str(size[1])], capture_output=True, text=True,
                         check=True, env=ENVIRONMENT)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["ms"] = (result["done"] - started) * 1e3
    return result


def fixed_size_copy(name: str, work: Path) -> str:
    import ember
    from ember.testing import model_files

    file, shape, _ = MODELS[name]
    found = model_files.model_file(file)
    if found is None:
        raise SystemExit(f"{file} is absent: run `{model_files.FETCH_COMMAND}`")
    model = ember.Core().read_model(found)
    model.reshape(shape)
    target = work / f"{name}.onnx"
    ember.save_model(model, target, compress_to_fp16=False)
    return str(target)


def build_cost(path: str, size: tuple[int, int], repeats: int) -> dict[str, float]:
    """Milliseconds: recording the steps (build), parse alone, parse and apply the steps."""
    import ember as ov

    core = ov.Core()

    def prepared() -> tuple[object, float]:
        model = core.read_model(path)
        started = time.perf_counter()
        ppp = ov.preprocess.PrePostProcessor(model)
        ppp.input().tensor().set_shape([1, *size, 3]).set_element_type(ov.Type.u8) \
            .set_layout(ov.Layout("NHWC"))
        ppp.input().preprocess().resize(ov.preprocess.ResizeAlgorithm.RESIZE_LINEAR)
        ppp.input().model().set_layout(ov.Layout("NCHW"))
        ppp.output().tensor().set_element_type(ov.Type.f32)
        built = ppp.build()
        return built, (time.perf_counter() - started) * 1e3

    prepared()  # imports
    record, parse, edited = [], [], []
    for _ in range(repeats):
        built, ms = prepared()
        record.append(ms)
        started = time.perf_counter()
        built.proto  # noqa: B018 -- parse and apply
        edited.append((time.perf_counter() - started) * 1e3)
        plain = core.read_model(path)
        started = time.perf_counter()
        plain.proto  # noqa: B018 -- parse alone
        parse.append((time.perf_counter() - started) * 1e3)
    return {"build() ms": statistics.median(record), "parse ms": statistics.median(parse),
            "parse + apply ms": statistics.median(edited)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    args = parser.parse_args()
    print("| model | Ember warm start (ms) | OpenVINO warm start (ms) | ratio | build() (ms) "
          "| parse (ms) | parse + apply (ms) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        for name in args.models:
            path, size = fixed_size_copy(name, work), MODELS[name][2]
            caches = {m: str(work / f"{name}-{m}") for m in ("ember", "openvino")}
            for module in caches:  # fill the caches
                start(module, path, caches[module], size)
            times: dict[str, list[float]] = {m: [] for m in caches}
            for _ in range(args.runs):
                for module in caches:
                    result = start(module, path, caches[module], size)
                    assert result["cached"], f"{name}: {module} missed its cache"
                    times[module].append(result["ms"])
            ember_ms, openvino_ms = (statistics.median(times[m]) for m in caches)
            cost = build_cost(path, size, max(args.runs, 3))
            print(f"| {name} | {ember_ms:.0f} | {openvino_ms:.0f} | {ember_ms / openvino_ms:.2f}x "
                  f"| {cost['build() ms']:.1f} | {cost['parse ms']:.1f} "
                  f"| {cost['parse + apply ms']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
