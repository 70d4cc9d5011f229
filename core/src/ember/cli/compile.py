"""``ember compile``: compile ahead of time (like OpenVINO's compile_tool), into a blob file or
into the model cache."""

from __future__ import annotations

from pathlib import Path

import click

from ember import cache as model_cache
from ember import properties as props
from ember.cli._common import (
    cache_dir_option,
    captured_log,
    format_size,
    resolve_cache_dir,
    say,
    stderr,
    timed,
)
from ember.errors import NotSupportedError
from ember.runtime.core import Core
from ember.store.atomic import write_atomically


@click.command("compile")
@click.argument("model")
@click.option("-d", "--device", required=True, help="The device, as `ember devices` names it.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the compiled model to this blob file (Core.import_model reads it).")
@cache_dir_option
def compile_command(model: str, device: str, output: Path | None, cache_dir: Path | None) -> None:
    """Compile MODEL (a path, or a stored model's name) for DEVICE ahead of time.

    With -o, the compiled model is written to FILE (CompiledModel.export_model()). Without -o,
    it is put into the model cache, so that applications using that cache start without
    compiling; with both, both happen. The device must be able to export (EXPORT_IMPORT).
    """
    core = Core()
    if not core.get_property(device, props.IMPORT_EXPORT_SUPPORT):
        raise NotSupportedError(
            f"device {device} cannot export compiled models (no EXPORT_IMPORT), so it can "
            "neither write a blob nor use the model cache")
    use_cache = output is None or cache_dir is not None
    directory = resolve_cache_dir(cache_dir) if use_cache else None
    config = {props.CACHE_DIR: str(directory) if directory else ""}
    before = {e.key for e in model_cache.entries(directory)} if directory else set()
    with stderr().status(f"compiling {model} for {device}..."), \
            captured_log("ember.cache") as cache_log:
        compiled, seconds = timed(core.compile_model, model, device, config)
    loaded = compiled.get_property(props.LOADED_FROM_CACHE)
    verb = "loaded" if loaded else "compiled"
    say(f"{verb} {model} for {compiled.get_property(props.EXECUTION_DEVICES)[0]} "
        f"in {seconds * 1e3:.1f} ms")
    if directory is not None:
        added = [e for e in model_cache.entries(directory) if e.key not in before]
        if loaded:
            say(f"already in the cache {directory}")
        elif added:
            entry = added[0]
            say(f"cached in {directory} as {entry.key[:16]}... ({format_size(entry.size)})")
        else:
            reasons = [m for m in cache_log if m.startswith("not caching")]
            why = f": {reasons[0]}" if reasons else " (see the warnings above)"
            say(f"not cached{why}", style="yellow")
    if output is not None:
        data = compiled.export_model()
        write_atomically(output.expanduser().absolute(), data)
        say(f"wrote {output} ({format_size(len(data))})")
