"""Model-cache benchmarks, measured as ratios within one run (see docs/caching.md).

    .venv/bin/python benchmarks/bench_cache.py [--device TEMPLATE] [--repeats 30]

1. warm ``compile_model(path)`` over the plugin's own import of the same payload (goal <= 1.10x);
2. first compile with CACHE_DIR over a compile without it (goal <= 1.15x);
3. 8 processes started together on an empty cache: compiles (goal exactly 1) and crashes (0).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import onnx

import ember
from ember.cache.file_digest import RACY_SECONDS
from ember.store import blob
from ember.testing import ppocr_cls_path


def median_ms(action, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1e3)
    return statistics.median(samples)


def warm_overhead(device: str, model: Path, repeats: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as cache_dir:
        config = {"CACHE_DIR": cache_dir}
        ember.Core().compile_model(model, device, config)
        # A file's checksum is remembered once it has been unchanged (mtime and ctime) for
        # RACY_SECONDS; a deployed model always has been, this freshly copied one not yet.
        time.sleep(RACY_SECONDS + 0.1)
        ember.Core().compile_model(model, device, config)
        (entry,) = Path(cache_dir, "blobs").glob("*.blob")
        _, payload = blob.unpack(entry.read_bytes())
        payload = bytes(payload)
        core = ember.Core()
        plugins = core._plugins  # the plugin's own import, with no cache around it
        full_name = plugins.resolve(device)
        plugin_config = core._settings.device_values(core._device(device))

        def plugin_import():
            plugins.import_model(full_name, data=payload, config=plugin_config,
                                 weights_path=None)

        def warm_compile():
            compiled = core.compile_model(model, device, config)
            assert compiled.get_property("LOADED_FROM_CACHE")

        # interleave so that both see the same machine state
        plugin_ms, warm_ms = [], []
        for _ in range(3):
            plugin_ms.append(median_ms(plugin_import, repeats))
            warm_ms.append(median_ms(warm_compile, repeats))
        return min(plugin_ms), min(warm_ms)


def first_compile_overhead(device: str, model: Path, repeats: int) -> tuple[float, float]:
    """A model's first compile with the cache on (into a cache directory already in use) against
    the same compile with it off. Each repetition is a different model file (the classifier with
    another doc string), so that every cached compile is a real miss."""
    proto = onnx.load(str(model))
    variants = []
    for index in range(repeats):
        proto.doc_string = f"variant {index}"
        path = model.with_name(f"variant{index}.onnx")
        onnx.save(proto, str(path))
        variants.append(path)
    core = ember.Core()
    with tempfile.TemporaryDirectory() as cache_dir:
        core.compile_model(model, device, {"CACHE_DIR": cache_dir})  # the directory exists
        plain, cold = [], []
        for path in variants:
            plain.append(median_ms(lambda p=path: core.compile_model(p, device), 1))
            start = time.perf_counter()
            compiled = core.compile_model(path, device, {"CACHE_DIR": cache_dir})
            cold.append((time.perf_counter() - start) * 1e3)
            assert not compiled.get_property("LOADED_FROM_CACHE")
    return statistics.median(plain), statistics.median(cold)


RACER = """
import json, os, sys, time
import onnx

import ember
start_file, cache_dir, model, device = sys.argv[1:5]
core = ember.Core()
while not os.path.exists(start_file):
    time.sleep(0.001)
compiled = core.compile_model(model, device, {"CACHE_DIR": cache_dir})
print(json.dumps({"loaded": compiled.get_property("LOADED_FROM_CACHE")}))
"""


def racing_processes(device: str, model: Path, processes: int = 8) -> tuple[int, int]:
    with tempfile.TemporaryDirectory() as work:
        start_file = Path(work, "go")
        racers = [subprocess.Popen([sys.executable, "-c", RACER, str(start_file),
                                    str(Path(work, "cache")), str(model), device],
                                   stdout=subprocess.PIPE, text=True)
                  for _ in range(processes)]
        time.sleep(2.0)  # let every process import ember and wait at the line
        start_file.touch()
        compiles = crashes = 0
        for racer in racers:
            out, _ = racer.communicate(timeout=300)
            if racer.returncode != 0:
                crashes += 1
            elif not json.loads(out)["loaded"]:
                compiles += 1
        return compiles, crashes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="TEMPLATE")
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        model = Path(work, "model.onnx")
        model.write_bytes(ppocr_cls_path().read_bytes())
        plugin_ms, warm_ms = warm_overhead(args.device, model, args.repeats)
        plain_ms, cold_ms = first_compile_overhead(args.device, model, args.repeats)
        compiles, crashes = racing_processes(args.device, model)
    rows = [
        ("warm compile_model(path) / plugin import", warm_ms, plugin_ms, warm_ms / plugin_ms,
         "<= 1.10"),
        ("first compile with CACHE_DIR / without", cold_ms, plain_ms, cold_ms / plain_ms,
         "<= 1.15"),
    ]
    print(f"device {args.device}, model {ppocr_cls_path().name}, medians of {args.repeats}")
    for name, a, b, ratio, goal in rows:
        print(f"  {name:<42} {a:8.2f} ms / {b:8.2f} ms = {ratio:5.2f}x  (goal {goal})")
    print(f"  8 processes on an empty cache: {compiles} compile(s), {crashes} crash(es) "
          "(goal 1 and 0)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
