"""``ember benchmark``: the cost of each step of starting a model, each measured in a fresh process.

Each run starts four processes, one after another, so that no step profits from another's warm
state (imported modules, loaded libraries, filled memory caches):

1. cold: ``import ember`` + ``Core()``, ``read_model``, compile without the cache, the first
   inference, then the median of ``--infer-runs`` more (steady inference);
2. first compile with the cache, into a new empty cache directory (compile, export, store);
3. warm compile from a ``Model`` (read first, not timed) out of that cache;
4. warm compile from the path, out of that cache (no ONNX parsing on a hit).

Steps 2-4 need a device that can export (``EXPORT_IMPORT``); for other devices they are left out.
Children are ``python -c CODE ARGS`` with CODE below; they report one JSON line.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import click
import numpy as np

from ember import properties as props
from ember.cli._common import (
    CommandError,
    echo_json,
    json_option,
    row,
    say,
    show,
    stderr,
    table,
)
from ember.cli.inputs import concrete_shape, parse_assignments, parse_shape
from ember.errors import EmberError, NotSupportedError
from ember.runtime.core import Core

#: (key, label) of every step, in the order they happen.
STEPS = (
    ("import", "import ember + Core()"),
    ("read", "read_model"),
    ("compile", "compile, no cache"),
    ("first_cached", "compile, first with cache"),
    ("warm_model", "compile, warm from Model"),
    ("warm_path", "compile, warm from path"),
    ("first_inference", "first inference"),
    ("steady_inference", "steady inference"),
)
CACHED_STEPS = ("first_cached", "warm_model", "warm_path")
RESULT_PREFIX = "RESULT "

CHILD = r"""
import time
start = time.perf_counter()
import ember
core = ember.Core()
import_seconds = time.perf_counter() - start
import json, sys
args = json.loads(sys.argv[1])

def timed(action, *arguments):
    start = time.perf_counter()
    result = action(*arguments)
    return result, time.perf_counter() - start

def measure():
    path, device, step = args["model"], args["device"], args["step"]
    if step == "cold":
        out = {"import": import_seconds}
        model, out["read"] = timed(core.read_model, path)
        compiled, out["compile"] = timed(core.compile_model, model, device, {"CACHE_DIR": ""})
        from ember.cli.inputs import random_feed
        feed = random_feed(compiled.inputs, args["shapes"], args["seed"])
        _, out["first_inference"] = timed(compiled, feed)
        runs = sorted(timed(compiled, feed)[1] for _ in range(args["infer_runs"]))
        out["steady_inference"] = runs[len(runs) // 2]
        return out
    source = core.read_model(path) if step == "warm_model" else path
    compiled, seconds = timed(core.compile_model, source, device, {"CACHE_DIR": args["cache"]})
    return {step: seconds, "loaded_from_cache": compiled.get_property("LOADED_FROM_CACHE")}

try:
    result = measure()
except ember.errors.EmberError as error:
    result = {"error": str(error),
              "not_supported": isinstance(error, ember.errors.NotSupportedError)}
print("RESULT " + json.dumps(result))
"""


def run_child(arguments: dict[str, Any]) -> dict[str, Any]:
    """Run one measuring process and return what it reported."""
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("EMBER_CACHE_DIR", "EMBER_CACHE_MAX_SIZE")}
    process = subprocess.run([sys.executable, "-c", CHILD, json.dumps(arguments)],
                             capture_output=True, text=True, env=environment, check=False)
    lines = [line for line in process.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if process.returncode or not lines:
        last = (process.stderr.strip().splitlines() or ["no output"])[-1]
        raise EmberError(f"a benchmark process failed (status {process.returncode}): {last}")
    result = json.loads(lines[-1][len(RESULT_PREFIX):])
    if "error" in result:
        error = NotSupportedError if result["not_supported"] else EmberError
        raise error(result["error"])
    return result


def summarize(samples: dict[str, list[float]], infer_runs: int) -> list[dict[str, Any]]:
    steps = []
    for key, label in STEPS:
        values = samples.get(key)
        if not values:
            continue
        if key == "steady_inference":
            label = f"{label} (median of {infer_runs})"
        ms = np.array(values) * 1e3
        steps.append({"step": key, "label": label, "median_ms": float(np.median(ms)),
                      "min_ms": float(ms.min()), "max_ms": float(ms.max()),
                      "samples_ms": ms.tolist()})
    return steps


@click.command()
@click.argument("model")
@click.option("-d", "--device", required=True, help="The device, as `ember devices` names it.")
@click.option("-n", "--runs", type=click.IntRange(1), default=5, show_default=True,
              help="Measurements of each step (each run starts 4 processes).")
@click.option("--infer-runs", type=click.IntRange(1), default=10, show_default=True,
              help="Inferences after the first, for the steady inference median.")
@click.option("-s", "--shape", "shapes", multiple=True, metavar="NAME=1,3,48,192",
              help="The shape of an input with dynamic dimensions (as for `ember run`).")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path),
              help="Also draw the medians as a bar chart into this PNG (needs matplotlib).")
@json_option
def benchmark(model: str, device: str, runs: int, infer_runs: int, shapes: tuple[str, ...],
              plot: Path | None, as_json: bool) -> None:
    """Time each step of starting MODEL (a path, or a stored model's name) on DEVICE, every
    step in fresh processes, and print the median and spread of each."""
    if plot is not None and find_spec("matplotlib") is None:
        raise CommandError("--plot needs matplotlib: pip install 'ember[plot]' "
                           "(or pip install matplotlib)")
    core = Core()
    read = core.read_model(model)
    can_export = core.get_property(device, props.IMPORT_EXPORT_SUPPORT)
    given = {name: parse_shape(text)
             for name, text in parse_assignments(shapes, "--shape", read.inputs).items()}
    arguments = {"model": str(read.path), "device": device, "seed": 0, "infer_runs": infer_runs,
                 "shapes": {p.name: concrete_shape(p, given.get(p.name)) for p in read.inputs}}
    samples: dict[str, list[float]] = {}
    notes = []
    with stderr().status(f"benchmarking {model} on {device}...") as status:
        for run in range(runs):
            status.update(f"benchmarking {model} on {device}: run {run + 1} of {runs}")
            for key, value in run_child({**arguments, "step": "cold"}).items():
                samples.setdefault(key, []).append(value)
            if can_export:
                notes += _cached_run(arguments, samples)
    if not can_export:
        notes.append(f"{device} cannot export (no EXPORT_IMPORT): it does not use the cache")
    steps = summarize(samples, infer_runs)
    report = {"model": model, "path": str(read.path), "device": device, "runs": runs,
              "steps": steps, "notes": sorted(set(notes))}
    if plot is not None:
        from ember.cli.plot import bar_chart

        bar_chart(report, plot)
    if as_json:
        echo_json(report)
        return
    say(f"{model} on {device}: {runs} runs, each step in fresh processes")
    listing = _table(steps)
    show(listing)
    for note in report["notes"]:
        say(f"note: {note}", style="yellow")
    if plot is not None:
        say(f"plot written to {plot}")


def _cached_run(arguments: dict[str, Any], samples: dict[str, list[float]]) -> list[str]:
    cache = tempfile.mkdtemp(prefix="ember-benchmark-")
    notes = []
    try:
        for step in CACHED_STEPS:
            result = run_child({**arguments, "step": step, "cache": cache})
            samples.setdefault(step, []).append(result[step])
            if step != "first_cached" and not result["loaded_from_cache"]:
                notes.append("warm compiles missed the cache: the model compiles faster than "
                             "it imports, so the cache does not store it")
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return notes


def _table(steps: list[dict[str, Any]]) -> Any:
    listing = table("step", "median ms", "min ms", "max ms", "spread")
    for step in steps:
        spread = step["max_ms"] - step["min_ms"]
        relative = f"±{50 * spread / step['median_ms']:.0f}%" if step["median_ms"] else "-"
        row(listing, step["label"], f"{step['median_ms']:.2f}", f"{step['min_ms']:.2f}",
            f"{step['max_ms']:.2f}", relative)
    return listing
