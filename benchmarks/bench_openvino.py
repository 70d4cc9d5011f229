"""The OPENVINO device against native OpenVINO and Ember's CPU device, per model, interleaved in
one process; and what bf16 costs in accuracy against onnxruntime f32.

    .venv/bin/python benchmarks/bench_openvino.py [--rounds 5] [--block 20] [--models ...]

For each model one fresh process holds every contender and runs them in turn, a block of
``--block`` inferences each, for ``--rounds`` rounds, so that the (shared, noisy) machine's state
is the same for all; the figure is the median over rounds of each block's median latency, in ms:

- ``Ember OPENVINO``: ``compiled(feeds)`` on ``compile_model(path, "OPENVINO")`` (f32);
- ``OpenVINO f32``: OpenVINO's CPU plugin at ``INFERENCE_PRECISION_HINT=f32``, called as
  ``compiled(feeds)`` and as ``request.infer(feeds, share_inputs=True)``;
- ``Ember CPU``: ``compiled(feeds)`` on ember-cpu (onnxruntime, its default level);
- ``Ember OPENVINO bf16``: ``INFERENCE_PRECISION_HINT=bf16`` (on a CPU without bf16 OpenVINO
  runs f32 and says so).

``--threads 1`` gives every contender one thread: on a loaded machine a small model's latency
is then the call path's, not the time OpenVINO's worker threads wait to be scheduled.

Accuracy, on ``--samples`` seeded inputs per model (rendered lines of text for PaddleOCR's
models, normalised as PaddleOCR does; noise with a tone for silero-vad): the largest absolute
difference of each output from onnxruntime f32, and the agreement of the decision the model is
used for (the classifier's and the recogniser's argmax per time step, the detector's pixels on
the same side of PaddleOCR's 0.3 threshold, silero-vad's speech probability on the same side of
0.5).

``--warm-starts ROUNDS`` times instead a fresh process that starts each model from a filled cache
and runs it once: Ember's ``OPENVINO`` against OpenVINO's own cache, both called the seeds' way
(``core.set_property({"CACHE_DIR": ...})``, then ``compile_model(path, ...)``, and in a second
row ``read_model`` then ``compile_model(model, ...)``), Ember and OpenVINO in turn.

Goals (issue 21): Ember OPENVINO at most 1.05x native OpenVINO f32 (the faster of its two calls);
its warm start no slower than OpenVINO's own cached one.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys

from _common import INTERLEAVED_BLOCKS
from bench_cpu_start import ENVIRONMENT, INPUTS, MODELS, model_path

INTERLEAVED = INPUTS + """
import os, statistics
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
import openvino as ov
import onnxruntime as ort
import ember
model, rounds, block, samples = sys.argv[1], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
threads = {"INFERENCE_NUM_THREADS": int(sys.argv[6])} if int(sys.argv[6]) else {}
core = ember.Core()
ember_ov = core.compile_model(model, "OPENVINO", threads)
ember_bf16 = core.compile_model(model, "OPENVINO", {"INFERENCE_PRECISION_HINT": "bf16", **threads})
ember_cpu = core.compile_model(model, "CPU", threads)
native = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32",
                                               **{k: str(v) for k, v in threads.items()}})
request = native.create_infer_request()
contenders = {
    "Ember OPENVINO": lambda: ember_ov(feeds),
    "OpenVINO f32, compiled(feeds)": lambda: native(feeds),
    "OpenVINO f32, infer(share_inputs=True)": lambda: request.infer(feeds, share_inputs=True),
    "Ember CPU": lambda: ember_cpu(feeds),
    "Ember OPENVINO bf16": lambda: ember_bf16(feeds),
}
""" + INTERLEAVED_BLOCKS + """
options = ort.SessionOptions()
options.log_severity_level = 3
oracle = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
name = os.path.basename(model)

def decisions(outputs):
    first = outputs[0]
    if "det" in name:
        return first > 0.3
    if "silero" in name:
        return first > 0.5
    return first.argmax(axis=-1)

from PIL import Image, ImageDraw, ImageFont

WORDS = "the quick brown fox jumps over 13 lazy dogs while OCR reads 2026 lines of text".split()

def text_image(rng, height, width):
    # lines of black text on a light background, normalised as PaddleOCR normalises its
    # inputs: real decisions to agree on, where noise has none
    image = Image.new("RGB", (width, height), tuple(int(v) for v in rng.integers(200, 256, 3)))
    draw = ImageDraw.Draw(image)
    size = max(12, min(36, height * 2 // 3)) if height < 100 else 24
    font = ImageFont.load_default(size=size)
    for top in range(4, height - size, size + 16) if height >= 100 else [(height - size) // 2]:
        words = " ".join(rng.choice(WORDS, 3 if width < 250 else 5))
        draw.text((int(rng.integers(2, 20)), top), words, fill=(0, 0, 0), font=font)
    pixels = np.asarray(image, dtype=np.float32) / 255.0
    if "det" in name:
        pixels = (pixels - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    else:
        pixels = (pixels - 0.5) / 0.5
    return pixels.transpose(2, 0, 1)[None].astype(np.float32)

def sample_inputs(seed):
    rng = np.random.default_rng(seed)
    if "silero" in name:  # noise with a burst of a tone, at speech-like loudness
        sample = {k: v for k, v in feeds.items()}
        audio = rng.normal(0, 0.01, feeds["input"].shape)
        audio += 0.3 * np.sin(np.arange(audio.shape[-1]) * (0.05 + 0.05 * seed))
        sample["input"] = audio.astype(np.float32)
        return sample
    shape = feeds["x"].shape
    return {"x": text_image(rng, shape[2], shape[3])}

accuracy = {}
for label, compiled in (("f32", ember_ov), ("bf16", ember_bf16)):
    worst, agree, total = 0.0, 0, 0
    for seed in range(samples):
        sample = sample_inputs(seed)
        want = oracle.run(None, sample)
        got = compiled(sample).to_tuple()
        worst = max(worst, max(float(np.max(np.abs(g - w))) for g, w in zip(got, want)))
        same = decisions(got) == decisions(want)
        agree, total = agree + int(np.sum(same)), total + same.size
    accuracy[label] = {"max_abs_diff": worst, "agreement": agree / total}
print(json.dumps({"latency": {n: statistics.median(v) for n, v in medians.items()},
                  "precision": ember_bf16.get_property("INFERENCE_PRECISION_HINT").get_type_name(),
                  "accuracy": accuracy}))
"""


# The seeds' call shapes, the same on both sides: the cache directory set on the core
# (``core.set_property``), then the model compiled from its path, or read first and compiled.
_COMPILE = {
    "compile_model(path)": "compiled = core.compile_model(sys.argv[1], {device})",
    "read_model, compile_model(model)":
        "compiled = core.compile_model(core.read_model(sys.argv[1]), {device})",
}
_EMBER_START = INPUTS + """
import ember
core = ember.Core()
core.set_property({"CACHE_DIR": sys.argv[3]})
COMPILE
compiled(feeds)
print(json.dumps({"cached": compiled.get_property("LOADED_FROM_CACHE")}))
"""
_OPENVINO_START = INPUTS + """
import openvino as ov
core = ov.Core()
core.set_property({"CACHE_DIR": sys.argv[3]})
COMPILE
compiled(feeds)
print(json.dumps({"cached": bool(compiled.get_property("LOADED_FROM_CACHE"))}))
"""
CONTENDERS = ("Ember OPENVINO", "OpenVINO f32")
#: call shape -> (Ember's script, OpenVINO's script)
WARM_STARTS = {
    shape: (_EMBER_START.replace("COMPILE", line.format(device='"OPENVINO"')),
            _OPENVINO_START.replace("COMPILE", line.format(
                device='"CPU", {"INFERENCE_PRECISION_HINT": "f32"}')))
    for shape, line in _COMPILE.items()
}


def warm_starts(name: str, rounds: int) -> dict[str, tuple[float, float, float]]:
    """Per call shape: the median wall time of a fresh process that starts the model from a
    filled cache and runs it once (the interpreter's own start included, the same for both), in
    ms, for Ember and for OpenVINO; and the median of the ratios of the pairs run one after the
    other (the pairing keeps the ratio meaningful on a machine whose speed drifts)."""
    import statistics
    import tempfile
    import time

    package, relative, inputs = MODELS[name]
    path = str(model_path(package, relative))
    results = {}
    with tempfile.TemporaryDirectory() as cache:
        for shape, scripts in WARM_STARTS.items():
            times: list[list[float]] = [[], []]
            for round_ in range(rounds + 1):  # the first round fills the caches
                for index, script in enumerate(scripts):
                    directory = f"{cache}/{index}-{len(results)}"
                    start = time.perf_counter()
                    out = subprocess.run([sys.executable, "-c", script, path,
                                          json.dumps(inputs), directory],
                                         capture_output=True, text=True, check=True,
                                         env=ENVIRONMENT)
                    elapsed = (time.perf_counter() - start) * 1e3
                    if round_:
                        assert json.loads(out.stdout.strip().splitlines()[-1])["cached"], \
                            CONTENDERS[index]
                        times[index].append(elapsed)
            ratios = [e / o for e, o in zip(*times, strict=True)]
            results[shape] = (statistics.median(times[0]), statistics.median(times[1]),
                              statistics.median(ratios))
    return results


def measure(name: str, rounds: int, block: int, samples: int, threads: int) -> dict:
    package, relative, inputs = MODELS[name]
    out = subprocess.run([sys.executable, "-c", INTERLEAVED, str(model_path(package, relative)),
                          json.dumps(inputs), str(rounds), str(block), str(samples),
                          str(threads)],
                         capture_output=True, text=True, check=True, env=ENVIRONMENT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def report(results: dict[str, dict], rounds: int, block: int) -> str:
    rows = list(next(iter(results.values()))["latency"])
    lines = [f"Steady state, interleaved in one process: median over {rounds} rounds of a "
             f"{block}-inference block's median latency; ms (ratio to native OpenVINO f32, the "
             "faster of its two calls).", "",
             "| model | " + " | ".join(rows) + " |", "| --- |" + " ---: |" * len(rows)]
    for model, result in results.items():
        latency = result["latency"]
        native = min(latency["OpenVINO f32, compiled(feeds)"],
                     latency["OpenVINO f32, infer(share_inputs=True)"])
        cells = [f"{latency[row]:.3g} ({latency[row] / native:.2f})" for row in rows]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    lines += ["", "Accuracy against onnxruntime f32 (largest absolute difference; decisions "
              "that agree):", "",
              "| model | OPENVINO f32 | OPENVINO bf16 |", "| --- | ---: | ---: |"]
    for model, result in results.items():
        acc = result["accuracy"]
        lines.append(f"| {model} | " + " | ".join(
            f"{acc[p]['max_abs_diff']:.2g}; {acc[p]['agreement']:.2%}" for p in ("f32", "bf16"))
            + f" (ran {result['precision']}) |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--block", type=int, default=20)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--threads", type=int, default=0,
                        help="INFERENCE_NUM_THREADS for every contender (0: each engine's own)")
    parser.add_argument("--warm-starts", type=int, default=0, metavar="ROUNDS",
                        help="only time warm starts from a filled cache, over ROUNDS rounds")
    args = parser.parse_args()
    if args.warm_starts:
        print("Warm start from a filled cache to the first result, fresh process, median ms; "
              "the ratio is the median of the paired runs' ratios:")
        print("\n| model | call | " + " | ".join(CONTENDERS)
              + " | ratio |\n| --- | --- | ---: | ---: | ---: |")
        for name in args.models:
            for shape, (ember, native, ratio) in warm_starts(name, args.warm_starts).items():
                print(f"| {name} | {shape} | {ember:.0f} | {native:.0f} | {ratio:.2f} |")
        return
    results = {name: measure(name, args.rounds, args.block, args.samples, args.threads)
               for name in args.models}
    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print(report(results, args.rounds, args.block))


if __name__ == "__main__":
    main()
