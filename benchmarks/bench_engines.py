"""Steady state and two-stream throughput per model and engine, all in one run.

    .venv/bin/python benchmarks/bench_engines.py [--rounds 7] [--block 30] [--seconds 2]
        [--models ppocr-det ppocr-rec ppocr-cls silero-vad] [--markdown FILE]

Three tables, on PaddleOCR's det/rec/cls and silero-vad (the op18 export), inputs as
``bench_cpu_start.py`` feeds them:

1. **Steady state**, one process per model holding every contender, which take turns a block
   of ``--block`` inferences at a time for ``--rounds`` rounds (a machine whose load changes
   slows them all alike); the figure is the median over rounds of each block's median latency.
   The engines are kept from skewing each other: before each block the process sleeps until the
   threads the previous engine left spinning (onnxruntime's intra-op pool, OpenVINO's workers)
   have gone to sleep, and the order of the contenders turns by one each round, so that none
   always runs after the same one.
   Contenders: Ember CPU through ``InferRequest.infer`` and through ``compiled(inputs)``; Ember
   AUTO after its first compile (the first compile measures and remembers in a CACHE_DIR; the
   one timed is a second compile, which goes straight to the winner); Ember OPENVINO when the
   ``ember-openvino`` plugin is installed; OpenVINO's own CPU plugin at f32 with and without
   ``share_inputs`` when ``openvino`` is installed; bare onnxruntime sessions at EXTENDED and
   ALL. A block runs at least ``--block`` inferences and 0.15 s. Goals, each the median of the
   rounds' ratios: ``InferRequest.infer`` on CPU at most 1.05x the bare onnxruntime call at
   Ember's setting (ALL: the same optimised graph, so the ratio is the call path's cost; the
   ratio to the faster of EXTENDED and ALL is shown beside it); Ember OPENVINO at most 1.05x
   native OpenVINO's faster call; AUTO at most 1.05x the best single Ember device.
2. **Varying width**: the recognition model at widths 160 to 1280, a different width on every
   call, as an OCR pipeline calls it; the mean per call over the cycle, same interleaving.
3. **Two streams**: inferences/s of Ember CPU with ``PERFORMANCE_HINT=THROUGHPUT`` and an
   ``AsyncInferQueue`` sized by ``OPTIMAL_NUMBER_OF_INFER_REQUESTS``, against as many plain
   Python threads each running a one-thread onnxruntime session of its own (at Ember's level,
   ALL), Ember's queue on the OPENVINO device and OpenVINO's own ``AsyncInferQueue`` (both
   THROUGHPUT, f32) when installed. Each contender runs in its own process for ``--seconds``,
   contenders taking turns for ``--rounds``; medians. Goals: Ember's queue at least 0.90x the
   plain threads on every model; on OPENVINO, at least 0.95x OpenVINO's own queue.

Columns whose engine is absent are left out, and the run says so.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import emit
from bench_cpu_start import ENVIRONMENT, INPUTS, MODELS, model_path

NAMES = {"ppocr-det": "ppocr-det", "ppocr-rec": "ppocr-rec", "ppocr-cls": "ppocr-cls",
         "silero-vad": "silero-vad (op18_ifless)"}
WIDTHS = (160, 320, 480, 640, 800, 960, 1280)

CONTENDERS = INPUTS + """
import importlib.util, os, statistics
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
import onnxruntime as ort
import ember
model, rounds, block, varying = sys.argv[1], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
if varying == "1":  # one input per width, fed in turn
    cycle = [{"x": rng.random((1, 3, 48, w)).astype("float32")} for w in json.loads(sys.argv[6])]
else:
    cycle = [feeds]
contenders, notes = {}, {}

def calls(infer):
    state = {"i": 0}
    def one():
        infer(cycle[state["i"] % len(cycle)])
        state["i"] += 1
    return one

core = ember.Core()
cpu = core.compile_model(model, "CPU")
request = cpu.create_infer_request()
contenders["Ember CPU, request.infer"] = calls(request.infer)
contenders["Ember CPU, compiled()"] = calls(cpu)
if "OPENVINO" in core.available_devices:
    ember_ov = core.compile_model(model, "OPENVINO")
    contenders["Ember OPENVINO, compiled()"] = calls(ember_ov)
cache_dir = sys.argv[7]  # shared by the run's processes: the varying row's AUTO remembers
first = core.compile_model(model, "AUTO", {"CACHE_DIR": cache_dir})
first(cycle[0])  # as an application does: AUTO times its inputs, not made-up sizes
first.wait_for_target(600)
notes["AUTO measured"] = first.get_property("EMBER_AUTO_CHOICE")
del first  # its models of the devices not chosen, and their thread pools, go with it
auto = ember.Core().compile_model(model, "AUTO", {"CACHE_DIR": cache_dir})
notes["AUTO"] = auto.get_property("EMBER_AUTO_CHOICE")
import threading
for thread in threading.enumerate():  # a slow device's abandoned first inference: let it end
    if thread.name == "ember-auto-measure":  # rather than share the cores with the timing
        thread.join()
contenders["Ember AUTO, compiled()"] = calls(auto)
if importlib.util.find_spec("openvino") is not None:
    import openvino as ov
    ov_compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    ov_request = ov_compiled.create_infer_request()
    contenders["OpenVINO f32, infer"] = calls(ov_request.infer)
    contenders["OpenVINO f32, share_inputs"] = calls(
        lambda x: ov_request.infer(x, share_inputs=True))
for level in ("EXTENDED", "ALL"):
    options = ort.SessionOptions()
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, "ORT_ENABLE_" + level)
    options.log_severity_level = 3
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    contenders[f"onnxruntime {level}"] = calls(lambda x, session=session: session.run(None, x))

def block_median(infer, count):
    latencies = []
    for _ in range(count):
        start = time.perf_counter()
        infer()
        latencies.append(time.perf_counter() - start)
    if len(cycle) > 1:  # the mean over whole cycles: each width weighs the same
        return statistics.fmean(latencies) * 1e3
    return statistics.median(latencies) * 1e3

def settled(infer, count):
    # The engine that ran the block before leaves threads spinning for work (onnxruntime's
    # intra-op pool spins by design, OpenVINO's TBB workers too): they would take the cores from
    # this block. Each engine keeps its own best setting; the block waits for them to sleep.
    time.sleep(SETTLE_SECONDS)
    return block_median(infer, count)

SETTLE_SECONDS = 0.2
# A block lasts at least this long: 30 calls of a 0.1 ms model are 3 ms, too short a sample of
# a machine whose speed changes from one moment to the next.
MIN_BLOCK_SECONDS = 0.15
counts = {}
for name, infer in contenders.items():
    # warm-up: first runs allocate, dynamic shapes build; then the block's length in calls
    latency = block_median(infer, block * len(cycle)) / 1e3
    whole = max(block, int(MIN_BLOCK_SECONDS / max(latency, 1e-6) / len(cycle)) + 1)
    counts[name] = whole * len(cycle)
medians = {name: [] for name in contenders}
order = list(contenders)
for round_ in range(rounds):
    # the order turns each round: no contender always follows the same one
    for name in order[round_ % len(order):] + order[:round_ % len(order)]:
        medians[name].append(settled(contenders[name], counts[name]))
print(json.dumps({"ms": {n: statistics.median(v) for n, v in medians.items()},
                  "rounds": medians, "calls": counts, "notes": notes}))
"""

THROUGHPUT = INPUTS + """
import importlib.util, os, threading
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
model, seconds, who = sys.argv[1], float(sys.argv[3]), sys.argv[4]

def measure(run_batch):
    end = time.perf_counter() + 0.5
    while time.perf_counter() < end:
        run_batch()
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        done += run_batch()
    return done / (time.perf_counter() - start)

if who in ("ember", "ember OPENVINO"):
    import ember
    device = "CPU" if who == "ember" else "OPENVINO"
    compiled = ember.Core().compile_model(model, device, {"PERFORMANCE_HINT": "THROUGHPUT"})
    streams = compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")
    queue = ember.AsyncInferQueue(compiled, 0)
    def batch():
        for _ in range(50):
            queue.start_async(feeds)
        queue.wait_all()
        return 50
elif who == "threads":
    import onnxruntime as ort
    from ember_cpu.streams import plan
    streams = plan({"PERFORMANCE_HINT": "THROUGHPUT"}).streams
    def session():
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = 1
        options.log_severity_level = 3
        return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    sessions = [session() for _ in range(streams)]
    def batch():
        def loop(s):
            for _ in range(25):
                s.run(None, feeds)
        threads = [threading.Thread(target=loop, args=(s,)) for s in sessions]
        for t in threads: t.start()
        for t in threads: t.join()
        return 25 * streams
else:
    import openvino as ov
    compiled = ov.Core().compile_model(model, "CPU", {"PERFORMANCE_HINT": "THROUGHPUT",
                                                      "INFERENCE_PRECISION_HINT": "f32"})
    streams = compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")
    queue = ov.AsyncInferQueue(compiled, 0)
    def batch():
        for _ in range(50):
            queue.start_async(feeds)
        queue.wait_all()
        return 50
print(json.dumps({"per_second": measure(batch), "streams": streams}))
"""


def child(script: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True,
                         check=True, env=ENVIRONMENT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def model_files(names: list[str]) -> dict[str, tuple[str, str]]:
    found = {}
    for name in names:
        package, relative, inputs = MODELS[NAMES[name]]
        found[name] = (str(model_path(package, relative)), json.dumps(inputs))
    return found


def steady(files: dict[str, tuple[str, str]], rounds: int, block: int,
           cache_dir: str) -> dict[str, dict]:
    results = {}
    for name, (path, spec) in files.items():
        results[name] = child(CONTENDERS, path, spec, str(rounds), str(block), "0", "[]",
                              cache_dir)
        print(f"steady state: {name} done", file=sys.stderr)
    return results


def varying(files: dict[str, tuple[str, str]], rounds: int, cache_dir: str) -> dict | None:
    if "ppocr-rec" not in files:
        return None
    path, spec = files["ppocr-rec"]
    return child(CONTENDERS, path, spec, str(rounds), "2", "1", json.dumps(WIDTHS), cache_dir)


def throughput(files: dict[str, tuple[str, str]], rounds: int, seconds: float,
               openvino: bool, ember_openvino: bool) -> dict[str, dict[str, list[float]]]:
    who = (["ember", "threads"] + ["ember OPENVINO"] * (openvino and ember_openvino)
           + ["openvino"] * openvino)
    results: dict[str, dict[str, list[float]]] = {name: {w: [] for w in who} for name in files}
    for _ in range(rounds):
        for name, (path, spec) in files.items():
            for contender in who:
                rate = child(THROUGHPUT, path, spec, str(seconds), contender)["per_second"]
                results[name][contender].append(rate)
    return results


def have(module: str) -> bool:
    probe = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True)
    return probe.returncode == 0


def table(results: dict[str, dict], title: str) -> list[str]:
    rows = list(next(iter(results.values()))["ms"])
    lines = [title, "", "| model | " + " | ".join(rows) + " |",
             "| --- |" + " ---: |" * len(rows)]
    for name, result in results.items():
        lines.append(f"| {name} | " + " | ".join(f"{result['ms'][r]:.3f}" for r in rows) + " |")
    return lines


def paired(result: dict, mine: str, others: list[str]) -> str:
    """``mine`` over the fastest of ``others``, round by round (the rounds ran the contenders
    back to back): the median of the rounds' ratios and their interquartile range."""
    rounds = result["rounds"]
    ratios = sorted(value / min(rounds[o][i] for o in others)
                    for i, value in enumerate(rounds[mine]))
    if len(ratios) < 2:
        return f"{ratios[0]:.3f}x"
    first, _, third = statistics.quantiles(ratios, n=4)
    return f"{statistics.median(ratios):.3f}x ({first:.2f}-{third:.2f})"


def goals(results: dict[str, dict]) -> list[str]:
    lines = ["", "Each ratio is the median of the rounds' ratios (a round runs every contender "
             "back to back), with its interquartile range.", "",
             "| model | request.infer / onnxruntime ALL, Ember's setting (<= 1.05) | "
             "request.infer / fastest onnxruntime | "
             "Ember OPENVINO / OpenVINO f32, faster call (<= 1.05) | "
             "AUTO / best Ember device (<= 1.05) | AUTO chose |",
             "| --- | ---: | ---: | ---: | ---: | --- |"]
    for name, result in results.items():
        ms = result["ms"]
        devices = [k for k in ms if k.startswith("Ember") and "compiled()" in k
                   and "AUTO" not in k]
        native = [k for k in ms if k.startswith("OpenVINO f32")]
        versus_openvino = (paired(result, "Ember OPENVINO, compiled()", native)
                           if "Ember OPENVINO, compiled()" in ms and native else "n/a")
        choice = result["notes"].get("AUTO measured") or result["notes"].get("AUTO", "")
        bare = [k for k in ms if k.startswith("onnxruntime")]
        request = "Ember CPU, request.infer"
        cells = [paired(result, request, ["onnxruntime ALL"]), paired(result, request, bare),
                 versus_openvino, paired(result, "Ember AUTO, compiled()", devices), choice]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--block", type=int, default=30, help="inferences per block")
    parser.add_argument("--seconds", type=float, default=2.0, help="per throughput cell")
    parser.add_argument("--models", nargs="*", default=list(NAMES))
    parser.add_argument("--skip", nargs="*", default=[], choices=["steady", "varying",
                                                                  "throughput"])
    parser.add_argument("--markdown", type=Path, help="also write the tables to this file")
    args = parser.parse_args()
    files = model_files(args.models)
    cache = tempfile.TemporaryDirectory()
    openvino = have("openvino")
    lines = []
    if not openvino:
        lines.append("(openvino is not installed: its columns are left out)")
    if not have("ember_openvino"):
        lines.append("(ember-openvino is not installed: the Ember OPENVINO column is left out)")
    if "steady" not in args.skip:
        results = steady(files, args.rounds, args.block, cache.name)
        lines += ["", *table(results, f"Steady state, ms: median over {args.rounds} rounds of "
                                      f"a block's median latency (a block: at least "
                                      f"{args.block} inferences and 0.15 s)."),
                  *goals(results)]
    if "varying" not in args.skip:
        result = varying(files, args.rounds, cache.name)
        if result is not None:
            lines += ["", *table({"ppocr-rec, widths " + "-".join(map(str, WIDTHS[::6])): result},
                                 "Recognition at a new width every call, ms per call (mean "
                                 "over the cycle).")]
    if "throughput" not in args.skip:
        rates = throughput(files, args.rounds, args.seconds, openvino, have("ember_openvino"))
        who = list(next(iter(rates.values())))
        versus = "ember OPENVINO" in who
        lines += ["", f"Two streams, inferences/s: median of {args.rounds} rounds of "
                  f"{args.seconds:g} s per process.", "",
                  "| model | " + " | ".join(who) + " | ember / threads (>= 0.90) | "
                  + "ember OPENVINO / openvino (>= 0.95) | " * versus + "spread |",
                  "| --- |" + " ---: |" * (len(who) + 2 + versus)]
        for name, cells in rates.items():
            medians = {w: statistics.median(v) for w, v in cells.items()}
            spread = f"{min(cells['ember']):.0f}-{max(cells['ember']):.0f} / " \
                     f"{min(cells['threads']):.0f}-{max(cells['threads']):.0f}"
            ratios = f" | {medians['ember'] / medians['threads']:.3f}x"
            if versus:
                ratios += f" | {medians['ember OPENVINO'] / medians['openvino']:.3f}x"
            lines.append(f"| {name} | " + " | ".join(f"{medians[w]:.0f}" for w in who)
                         + ratios + f" | {spread} |")
    text = "\n".join(lines)
    emit(text, args.markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
