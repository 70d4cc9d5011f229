"""``ember run``: compile a model for a device, run it once, and summarise its outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import numpy as np

from ember import properties as props
from ember.cli._common import (
    cache_dir_option,
    echo_json,
    json_option,
    resolve_cache_dir,
    row,
    say,
    show,
    stderr,
    table,
    timed,
)
from ember.cli.inputs import (
    concrete_shape,
    load_array,
    parse_assignments,
    parse_shape,
    random_array,
)
from ember.runtime.core import Core

#: Outputs with at most this many values are printed in full.
SHOWN_VALUES = 10


def summarize(name: str, array: np.ndarray) -> dict[str, Any]:
    """Name, shape, dtype, and min / max / mean (and the values of a small output)."""
    summary: dict[str, Any] = {"name": name, "shape": list(array.shape), "dtype": str(array.dtype)}
    if array.size and array.dtype.kind in "biuf":
        values = array.astype(np.float64)
        summary.update(min=float(np.nanmin(values)), max=float(np.nanmax(values)),
                       mean=float(np.nanmean(values)))
    if 0 < array.size <= SHOWN_VALUES:
        summary["values"] = array.ravel().tolist()
    return summary


@click.command()
@click.argument("model")
@click.option("-d", "--device", required=True, help="The device, as `ember devices` names it.")
@click.option("-i", "--input", "input_files", multiple=True, metavar="NAME=FILE.npy",
              help="An input from a .npy file (repeat per input; NAME may be left out when the "
                   "model has one input). Inputs not given are random.")
@click.option("-s", "--shape", "shapes", multiple=True, metavar="NAME=1,3,48,192",
              help="The shape of a random input with dynamic dimensions (a dynamic first "
                   "dimension is 1 otherwise).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of random inputs.")
@cache_dir_option
@json_option
def run(model: str, device: str, input_files: tuple[str, ...], shapes: tuple[str, ...],
        seed: int, cache_dir: Path | None, as_json: bool) -> None:
    """Compile MODEL (a path, or a stored model's name) for DEVICE, run it once, and print each
    output's name, shape and a summary, with the times taken. The compile goes through the model
    cache `ember compile` fills, so a model compiled ahead of time is loaded, not compiled."""
    core = Core()
    read, read_seconds = timed(core.read_model, model)
    files = parse_assignments(input_files, "--input", read.inputs)
    given = {name: parse_shape(text)
             for name, text in parse_assignments(shapes, "--shape", read.inputs).items()}
    if files.keys() & given.keys():
        raise click.BadParameter(f"input {sorted(files.keys() & given.keys())[0]!r} is given "
                                 "both as a file and as a shape", param_hint="--shape")
    rng = np.random.default_rng(seed)
    feed, sources = {}, {}
    for port in read.inputs:
        if port.name in files:
            feed[port.name], sources[port.name] = load_array(files[port.name]), files[port.name]
        else:
            shape = concrete_shape(port, given.get(port.name))
            feed[port.name] = random_array(shape, port.dtype, rng)
            sources[port.name] = f"random (seed {seed})"
    # From the file when there is one: the same cache key as `ember compile`, and a cache hit
    # does not parse the file again.
    source = str(read.path) if read.path else read
    config = {props.CACHE_DIR: str(resolve_cache_dir(cache_dir))}
    with stderr().status(f"compiling {model} for {device}..."):
        compiled, compile_seconds = timed(core.compile_model, source, device, config)
    result, infer_seconds = timed(compiled, feed)
    report = {
        "model": model,
        "path": str(read.path) if read.path else None,
        "device": compiled.get_property(props.EXECUTION_DEVICES)[0],
        "read_ms": read_seconds * 1e3,
        "compile_ms": compile_seconds * 1e3,
        "loaded_from_cache": bool(compiled.get_property(props.LOADED_FROM_CACHE)),
        "infer_ms": infer_seconds * 1e3,
        "inputs": [{"name": p.name, "shape": list(feed[p.name].shape),
                    "dtype": str(feed[p.name].dtype), "source": sources[p.name]}
                   for p in read.inputs],
        "outputs": [summarize(port.name, result[port.name]) for port in compiled.outputs],
    }
    if as_json:
        echo_json(report)
        return
    where = f" ({report['path']})" if report["path"] and report["path"] != model else ""
    say(f"{model}{where} on {report['device']}")
    cached = ", loaded from the cache" if report["loaded_from_cache"] else ""
    say(f"read {report['read_ms']:.1f} ms, compile {report['compile_ms']:.1f} ms{cached}, "
        f"inference {report['infer_ms']:.2f} ms")
    inputs = table("input", "shape", "dtype", "source")
    for entry in report["inputs"]:
        row(inputs, entry["name"], tuple(entry["shape"]), entry["dtype"], entry["source"])
    show(inputs)
    outputs = table("output", "shape", "dtype", "min", "max", "mean", "values")
    for entry in report["outputs"]:
        stats = [f"{entry[k]:.4g}" if k in entry else "-" for k in ("min", "max", "mean")]
        values = " ".join(f"{v:.4g}" if isinstance(v, float) else str(v)
                          for v in entry.get("values", []))
        row(outputs, entry["name"], tuple(entry["shape"]), entry["dtype"], *stats, values)
    show(outputs)
