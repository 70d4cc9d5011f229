"""What several benchmarks share: pieces of the child programs they time, and writing a report.

Imported by the benchmarks run as scripts (``.venv/bin/python benchmarks/X.py``: this directory
is then first on ``sys.path``); not a test module and not part of any distribution.
"""

from __future__ import annotations

from pathlib import Path

#: A child program's piece: bare onnxruntime started from the ORT-format bytes in ``sys.argv[1]``
#: as the CPU plugin starts a cached model (no optimisation pass, the bytes used in place), run
#: once on ``feeds``. The floor a warm start is measured against.
ORT_FORMAT_FLOOR = """
import os
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
import onnxruntime as ort
data = open(sys.argv[1], "rb").read()
options = ort.SessionOptions()
options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
options.add_session_config_entry("session.load_model_format", "ORT")
options.add_session_config_entry("session.use_ort_model_bytes_directly", "1")
options.log_severity_level = 3
session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
session.run(None, feeds)
cached = True
"""

#: A child program's piece: every callable in ``contenders`` (name -> infer) run in turn, a block
#: of ``block`` inferences each, for ``rounds`` rounds (so that a noisy machine's state is the
#: same for all), after one warm-up block each; ``medians[name]`` holds each round's block median
#: latency in ms.
INTERLEAVED_BLOCKS = """
import statistics, time

def block_median(infer):
    latencies = []
    for _ in range(block):
        start = time.perf_counter()
        infer()
        latencies.append(time.perf_counter() - start)
    return statistics.median(latencies) * 1e3

for infer in contenders.values():
    block_median(infer)  # warm-up: first runs allocate
medians = {name: [] for name in contenders}
for _ in range(rounds):
    for name, infer in contenders.items():
        medians[name].append(block_median(infer))
"""


def emit(text: str, markdown: Path | None) -> None:
    """Print a benchmark's report, and write it to ``markdown`` too when given."""
    print(text)
    if markdown:
        markdown.write_text(text + "\n")
