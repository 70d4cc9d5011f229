"""GPU kernel cache: cold vs warm compile of real models, and the floor, in fresh processes.

    .venv/bin/python benchmarks/bench_gpu_kernels.py [--repeats 5] [--cold-repeats 3]

For each model (the small CNN of ``ember.testing.cnn`` and PaddleOCR's text-direction classifier),
each sample is a new process, with PoCL's own kernel cache off (``POCL_KERNEL_CACHE=0``) so that
only Ember's cache is measured. A sample is timed from the moment the process has imported Ember
and listed the devices (pyopencl imported, OpenCL platforms enumerated) until the first inference
has returned its outputs:

- cold: ``compile_model`` with an empty CACHE_DIR, then the first inference (the program is built
  from source and each kernel compiled for its work-group size at its first launch);
- warm: the same with the CACHE_DIR the cold run filled (``from_cache_blob``);
- floor: what a hand-written pyopencl program pays to start the same model from the same
  binaries: read the binary, the constants and the launch list from files, create the context,
  the program from the binary and its kernels, upload the constants, and launch every kernel
  once with the same sizes. No ONNX parsing, no lowering, no checksum, no cache lookup: the
  least any start from saved binaries can cost.

Goals: warm at least 20x faster than cold, and within 1.2x of the floor.
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

CHILD_ENV = {"POCL_KERNEL_CACHE": "0", "EMBER_VERBOSE": "2"}


def child_environment() -> dict[str, str]:
    """PoCL's cache off; Python's bytecode cache on, as in any installed Python (a harness that
    sets PYTHONDONTWRITEBYTECODE would make every start compile Ember's sources again)."""
    env = {**os.environ, **CHILD_ENV}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def child_ember(model: str, shape: str, cache_dir: str) -> None:
    import numpy as np

    import ember
    from ember.testing import cnn

    core = ember.Core()
    assert core.available_devices  # pyopencl imported, platforms listed: the floor's state too
    source = cnn().SerializeToString() if model == "cnn" else model
    x = np.random.default_rng(0).random(tuple(map(int, shape.split("x"))), dtype=np.float32)
    start = time.perf_counter()
    compiled = core.compile_model(source, "GPU", {"CACHE_DIR": cache_dir})
    compiled({"x": x})
    elapsed = time.perf_counter() - start
    print(json.dumps({"seconds": elapsed}))


def child_floor(kit: str) -> None:
    import numpy as np
    import pyopencl as cl

    found = [d for p in cl.get_platforms() for d in p.get_devices()]
    device = min(found, key=lambda d: 0 if d.type & cl.device_type.GPU else 1)  # GPU.0's
    folder = Path(kit)
    start = time.perf_counter()
    binary = (folder / "binary.bin").read_bytes()  # a start from binaries reads them too
    constants = np.fromfile(folder / "constants.bin", dtype=np.uint8)
    layout = json.loads((folder / "layout.json").read_text())
    context = cl.Context([device])
    queue = cl.CommandQueue(context)
    program = cl.Program(context, [device], [binary]).build()
    flags = cl.mem_flags
    const_buffer = cl.Buffer(context, flags.READ_ONLY | flags.COPY_HOST_PTR, hostbuf=constants)
    workspace = cl.Buffer(context, flags.READ_WRITE, layout["workspace"])
    kernels = []
    for name, size in layout["launches"]:
        kernel = cl.Kernel(program, name)
        kernel.set_args(const_buffer, workspace)
        kernels.append((kernel, size))
    for kernel, size in kernels:
        cl.enqueue_nd_range_kernel(queue, kernel, (size,), None)
    queue.finish()
    print(json.dumps({"seconds": time.perf_counter() - start}))


def run_child(*args: str) -> tuple[float, list[str]]:
    out = subprocess.run([sys.executable, __file__, "--child", *args], env=child_environment(),
                         capture_output=True, text=True, check=True).stdout.splitlines()
    return json.loads(out[-1])["seconds"], [line.split(",")[2] for line in out[:-1]]


def write_floor_kit(model: str, shape: str, cache_dir: str, kit: Path) -> int:
    """The binary, constants and launches of the model, taken from a warm compile here."""
    import numpy as np

    import ember
    from ember.testing import cnn

    source = cnn().SerializeToString() if model == "cnn" else model
    compiled = ember.Core().compile_model(source, "GPU", {"CACHE_DIR": cache_dir})
    x = np.zeros(tuple(map(int, shape.split("x"))), np.float32)
    compiled({"x": x})
    (executable,) = compiled.device_model.specialisations
    (binary,) = executable.kernel.program.binaries
    (kit / "binary.bin").write_bytes(bytes(binary))
    (kit / "constants.bin").write_bytes(executable.plan.constants or b"\0" * 64)
    (kit / "layout.json").write_text(json.dumps({
        "workspace": max(executable.plan.workspace_size, 64),
        "launches": [[launch.kernel, launch.global_size] for launch in executable.plan.launches],
    }))
    return len(executable.plan.launches)


def bench(label: str, model: str, shape: str, repeats: int, cold_repeats: int) -> dict:
    cold, warm, floor = [], [], []
    with tempfile.TemporaryDirectory() as work:
        cache_dir = ""
        for i in range(cold_repeats):
            cache_dir = str(Path(work, f"cache{i}"))
            os.mkdir(cache_dir)
            seconds, how = run_child("ember", model, shape, cache_dir)
            assert how == ["create:cache_miss"], how
            cold.append(seconds)
        run_child("ember", model, shape, cache_dir)  # unmeasured: bytecode written, files read
        kit = Path(work, "kit")
        kit.mkdir()
        kernels = write_floor_kit(model, shape, cache_dir, kit)
        for _ in range(repeats):  # interleaved: both see the same machine state
            seconds, how = run_child("ember", model, shape, cache_dir)
            assert how == ["create:from_cache_blob"], how
            warm.append(seconds)
            floor.append(run_child("floor", str(kit))[0])
    result = {"model": label, "shape": shape, "kernels": kernels,
              "cold_ms": statistics.median(cold) * 1e3, "warm_ms": statistics.median(warm) * 1e3,
              "floor_ms": statistics.median(floor) * 1e3}
    result["speedup"] = result["cold_ms"] / result["warm_ms"]
    result["over_floor"] = result["warm_ms"] / result["floor_ms"]
    # Each warm sample against the floor sample taken right after it: robust to slow drifts.
    result["paired"] = statistics.median(w / f for w, f in zip(warm, floor, strict=True))
    return result


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        if sys.argv[2] == "ember":
            child_ember(*sys.argv[3:6])
        else:
            child_floor(sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cold-repeats", type=int, default=3)
    args = parser.parse_args()
    from ember.testing import ppocr_cls_path
    from ember_gpu import opencl

    device = opencl.devices()[0]
    print(f"device: {device.full_name}, driver {device.driver_version}")
    models = [("cnn (ember.testing)", "cnn", "1x3x16x16"),
              ("PaddleOCR text-direction classifier", str(ppocr_cls_path()), "1x3x48x192")]
    print(f"medians of {args.cold_repeats} cold and {args.repeats} warm and floor samples")
    print("| model | input | kernels | cold | warm | floor | cold / warm | warm / floor "
          "| warm / floor, paired |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, model, shape in models:
        r = bench(label, model, shape, args.repeats, args.cold_repeats)
        print(f"| {r['model']} | {r['shape']} | {r['kernels']} | {r['cold_ms']:.0f} ms "
              f"| {r['warm_ms']:.1f} ms | {r['floor_ms']:.1f} ms | {r['speedup']:.0f}x "
              f"| {r['over_floor']:.2f}x | {r['paired']:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
