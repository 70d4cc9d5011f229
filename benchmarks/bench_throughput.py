"""Throughput of PP-OCR's text-direction classifier: Ember's AsyncInferQueue against a synchronous
loop, bare onnxruntime with the same threads and sessions, and OpenVINO, side by side.

    make bench      # installs the benchmark-only packages (OpenVINO), then runs this
    .venv/bin/python benchmarks/bench_throughput.py [--rounds 3] [--seconds 3]

Each contender runs in its own process (so that thread pools do not meet), for ``--seconds``
after a warm-up, and the contenders take turns for ``--rounds`` rounds; reported are the median
inferences per second and the spread over the rounds (the machine may be shared). The input is
one 1x3x48x192 image, as PaddleOCR's pipeline feeds the classifier.

- ``ember sync``: the default compile (LATENCY), ``request.infer`` in a loop;
- ``ember async``: ``PERFORMANCE_HINT=THROUGHPUT``, an ``AsyncInferQueue`` sized by
  ``OPTIMAL_NUMBER_OF_INFER_REQUESTS``, with CPU's default ``GRAPH_OPTIMIZATION_LEVEL``
  (EXTENDED) and with ALL (onnxruntime's NCHWc convolutions);
- ``onnxruntime threads``: what Ember's THROUGHPUT does, written by hand: one session with the
  same optimisation level and Ember's threads per stream, one Python thread per stream looping
  ``session.run``;
- ``onnxruntime sync``: one session with onnxruntime's default threads, in a loop;
- ``openvino async``: OpenVINO's CPU plugin, THROUGHPUT, ``AsyncInferQueue(compiled, 0)``, in its
  default precision (bf16 where the CPU has it) and with ``INFERENCE_PRECISION_HINT=f32``.

Goals: ember async >= 1.3x ember sync (requests running on several cores at once are what async
is for), and >= onnxruntime threads (the floor: the same engine driven by hand).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys

COMMON = """
import json, sys, time
import numpy as np
from ember.testing import ppocr_cls_path
SECONDS = float(sys.argv[1])
MODEL = str(ppocr_cls_path())
IMAGE = np.random.default_rng(0).random((1, 3, 48, 192), dtype=np.float32)

def measure(run_one_batch, warm=1.0):
    end = time.perf_counter() + warm
    while time.perf_counter() < end:
        run_one_batch()
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < SECONDS:
        done += run_one_batch()
    print(json.dumps({"per_second": done / (time.perf_counter() - start), **EXTRA}))

EXTRA = {}
"""

CONTENDERS = {
    "ember sync": COMMON + """
import ember
compiled = ember.Core().compile_model(MODEL, "CPU")
request = compiled.create_infer_request()
def batch():
    for _ in range(20):
        request.infer({0: IMAGE})
    return 20
measure(batch)
""",
    "ember async": COMMON + """
import ember
compiled = ember.Core().compile_model(MODEL, "CPU", {"PERFORMANCE_HINT": "THROUGHPUT",
                                                    "GRAPH_OPTIMIZATION_LEVEL": sys.argv[2]})
jobs = compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")
EXTRA["requests"] = jobs
queue = ember.AsyncInferQueue(compiled, jobs)
def batch():
    for _ in range(40):
        queue.start_async({0: IMAGE})
    queue.wait_all()
    return 40
measure(batch)
""",
    "onnxruntime threads": COMMON + """
import threading
import ember
from ember_cpu.streams import plan
from ember_cpu.runtime import onnxruntime
ort = onnxruntime()
streams = plan({"PERFORMANCE_HINT": "THROUGHPUT"})
EXTRA["requests"] = streams.streams
options = ort.SessionOptions()
options.graph_optimization_level = {"EXTENDED": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
                                    "ALL": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}[sys.argv[2]]
options.intra_op_num_threads = streams.threads_per_stream
session = ort.InferenceSession(MODEL, options, providers=["CPUExecutionProvider"])
name = session.get_inputs()[0].name
def batch():
    def loop():
        for _ in range(20):
            session.run(None, {name: IMAGE})
    threads = [threading.Thread(target=loop) for _ in range(streams.streams)]
    for t in threads: t.start()
    for t in threads: t.join()
    return 20 * streams.streams
measure(batch)
""",
    "onnxruntime sync": COMMON + """
from ember_cpu.runtime import onnxruntime
ort = onnxruntime()
session = ort.InferenceSession(MODEL, providers=["CPUExecutionProvider"])
name = session.get_inputs()[0].name
def batch():
    for _ in range(20):
        session.run(None, {name: IMAGE})
    return 20
measure(batch)
""",
}

OPENVINO = COMMON + """
import openvino as ov
import openvino.properties.hint as hints
config = {hints.performance_mode: hints.PerformanceMode.THROUGHPUT}
if sys.argv[2] == "f32":
    config[hints.inference_precision] = ov.Type.f32
core = ov.Core()
compiled = core.compile_model(MODEL, "CPU", config)
EXTRA["requests"] = compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")
EXTRA["precision"] = str(compiled.get_property("INFERENCE_PRECISION_HINT"))
queue = ov.AsyncInferQueue(compiled, 0)
def batch():
    for _ in range(40):
        queue.start_async({0: IMAGE})
    queue.wait_all()
    return 40
measure(batch)
"""


def have_openvino() -> bool:
    probe = subprocess.run([sys.executable, "-c", "import openvino"], capture_output=True)
    return probe.returncode == 0


def run(script: str, seconds: float, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", script, str(seconds), *args],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    jobs = {"ember sync": (CONTENDERS["ember sync"], ())}
    for level in ("EXTENDED", "ALL"):
        jobs[f"ember async ({level})"] = (CONTENDERS["ember async"], (level,))
        jobs[f"onnxruntime threads ({level})"] = (CONTENDERS["onnxruntime threads"], (level,))
    jobs["onnxruntime sync"] = (CONTENDERS["onnxruntime sync"], ())
    if have_openvino():
        jobs["openvino async (default precision)"] = (OPENVINO, ("default",))
        jobs["openvino async (f32)"] = (OPENVINO, ("f32",))
    else:
        print("openvino is not installed (make bench installs it): its rows are left out")
    results: dict[str, list[dict]] = {name: [] for name in jobs}
    for round_ in range(args.rounds):
        for name, (script, extra) in jobs.items():
            results[name].append(run(script, args.seconds, *extra))
        print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr)
    sync = statistics.median(r["per_second"] for r in results["ember sync"])
    print(f"PP-OCR cls, 1x3x48x192, {args.rounds} rounds of {args.seconds:g} s; "
          f"{platform.processor() or platform.machine()}, {_cpus()} CPUs")
    print(f"{'contender':38} {'inferences/s':>12} {'spread':>14} {'x sync':>7}  requests")
    for name, rows in results.items():
        rates = [r["per_second"] for r in rows]
        median = statistics.median(rates)
        extra = rows[-1].get("requests", "")
        precision = rows[-1].get("precision")
        note = f"{extra}" + (f" ({precision})" if precision else "")
        print(f"{name:38} {median:12.0f} {min(rates):6.0f}-{max(rates):<7.0f} "
              f"{median / sync:7.2f}  {note}")


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    main()
